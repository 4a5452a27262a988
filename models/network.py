"""A small 2D U-Net for chest CT opacity segmentation.

The network takes one display-normalised axial slice, ``(N, 1, 256, 256)`` float32 in
[0, 1] (see :func:`models.preprocess.hu_to_display`), and returns per-pixel logits for
three classes ``(N, 3, 256, 256)``: 0 background, 1 lung without lesion, 2 lesion
(ground-glass and consolidation together). Lungs are classes 1 + 2.

To fit the speed budget (a 512 x 512 x 300 scan in under 15 s on 2 CPU cores) the first
convolution has stride 2: the encoder-decoder works at 128 x 128 and the logits are
upsampled bilinearly to the input size. COVID-19 lesions and lungs are large structures,
so the resolution lost is small compared with the expert masks' own precision.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["UNet2D", "N_CLASSES", "CLASS_NAMES"]

#: Number of output classes of the network.
N_CLASSES: int = 3
#: Meaning of each output channel.
CLASS_NAMES: tuple[str, ...] = ("background", "lung", "lesion")


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet2D(nn.Module):
    """2D U-Net with a stride-2 stem.

    Parameters
    ----------
    base : int
        Channels of the first level; level ``k`` has ``base * 2**k`` channels.
    levels : int
        Number of resolution levels of the encoder (>= 2).
    in_channels : int
        Input channels (1: one display-normalised slice).
    n_classes : int
        Output classes.

    Examples
    --------
    >>> net = UNet2D(base=4, levels=3)
    >>> net(torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 3, 64, 64])
    """

    def __init__(
        self, *, base: int = 16, levels: int = 4, in_channels: int = 1, n_classes: int = N_CLASSES
    ) -> None:
        super().__init__()
        if base < 1:
            raise ValueError(f"base must be >= 1, got {base!r}")
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels!r}")
        self.config = {"base": base, "levels": levels, "in_channels": in_channels,
                       "n_classes": n_classes}
        ch = [base * 2**k for k in range(levels)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, ch[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(ch[0]),
            nn.ReLU(inplace=True),
        )
        self.enc = nn.ModuleList([_block(ch[0], ch[0])] + [
            _block(ch[k - 1], ch[k]) for k in range(1, levels)
        ])
        self.up = nn.ModuleList([
            nn.ConvTranspose2d(ch[k], ch[k - 1], 2, stride=2) for k in range(levels - 1, 0, -1)
        ])
        self.dec = nn.ModuleList([
            _block(2 * ch[k - 1], ch[k - 1]) for k in range(levels - 1, 0, -1)
        ])
        self.head = nn.Conv2d(ch[0], n_classes, 1)
        self.multiple = 2**levels  # input side must be divisible by this

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, n_classes, H, W)`` for input ``(N, C, H, W)``; H, W divisible by
        ``self.multiple``."""
        size = x.shape[-2:]
        h = self.stem(x)
        skips = []
        for k, enc in enumerate(self.enc):
            if k > 0:
                h = F.max_pool2d(h, 2)
            h = enc(h)
            skips.append(h)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1])):
            h = dec(torch.cat([up(h), skip], dim=1))
        return F.interpolate(self.head(h), size=size, mode="bilinear", align_corners=False)
