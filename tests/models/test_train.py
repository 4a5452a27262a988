"""The training loop (models.train): a three-step run on the real slices writes a checkpoint
that records its whole-scan split and loads for inference.  Training itself is a script
(scripts/train_opacity.py), never a test."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.inference import load_model, predict_classes  # noqa: E402
from models.train import TrainConfig, block_indices, train  # noqa: E402
from tests.conftest import shared_path  # noqa: E402


def test_three_step_run_writes_a_loadable_checkpoint_with_a_whole_scan_split(tmp_path):
    root = shared_path("covid19_ct_slices")
    out = tmp_path / "w.pt"
    config = TrainConfig(data_root=str(root), out=str(out), log=str(tmp_path / "log.jsonl"),
                         steps=3, batch=2, base=4, levels=2, crop=64, use_phantom=False,
                         synthetic_bank=4, eval_every_s=1e9, warmup=1, threads=1)
    train(config)
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    info = ckpt["training"]
    assert info["steps"] == 3 and info["final"] is True
    assert ckpt["config"]["base"] == 4 and ckpt["config"]["levels"] == 2
    train_b, val_b = set(info["train_blocks"]), set(info["validation_blocks"])
    assert val_b and train_b and not train_b & val_b
    blocks = [tuple(b) for b in info["blocks"]]
    tr, va = block_indices(blocks, sorted(train_b)), block_indices(blocks, sorted(val_b))
    assert not set(tr.tolist()) & set(va.tolist())  # no slice on both sides of the split
    assert len(tr) + len(va) == 1614  # every slice of the data set is on one side
    assert info["history"] and "val_infection_dice" in info["history"][-1]
    net = load_model(out)
    classes = predict_classes(np.full((1, 40, 48), -800, dtype=np.int16), model=net, lesion_min_prob=0.5)
    assert classes.shape == (1, 40, 48) and set(np.unique(classes)) <= {0, 1, 2}
    assert (tmp_path / "log.jsonl").read_text(encoding="utf-8").strip()  # progress was logged


@pytest.mark.parametrize("bad", [{"steps": 0}, {"steps": -1}, {"threads": 0}, {"synthetic_fraction": 2.0},
                                 {"out": "."}])
def test_settings_that_cannot_train_are_refused_before_any_work(tmp_path, bad):
    """steps=0 / -1 used to save an untrained network (exit 0); threads=0 failed in torch;
    an out folder failed only at the final save, after the whole run."""
    fields = {"data_root": str(tmp_path / "nodata"), "out": str(tmp_path / "w.pt"),
              "log": str(tmp_path / "log.jsonl"), "steps": 3, **bad}
    if fields["out"] == ".":
        fields["out"] = str(tmp_path)
    with pytest.raises(ValueError, match=next(iter(bad))):
        train(TrainConfig(**fields))
    assert not (tmp_path / "log.jsonl").exists() and not (tmp_path / "w.pt").exists()


def test_a_missing_init_checkpoint_is_refused_before_the_data_is_read(tmp_path):
    with pytest.raises(FileNotFoundError, match="init checkpoint .*absent.pt"):
        train(TrainConfig(data_root=str(tmp_path / "nodata"), out=str(tmp_path / "w.pt"),
                          log=str(tmp_path / "log.jsonl"), steps=3, init=str(tmp_path / "absent.pt")))
    assert not (tmp_path / "log.jsonl").exists()
