"""The documented rules that choose, per study, the one series to score.

A study off a scanner holds several series: scout (localizer) images, thick and thin
reconstructions, soft-tissue and lung kernels, coronal and sagittal reformats, dose
reports.  :func:`choose_series` applies :class:`SelectionRules` in this order and
records, for every series, why it was chosen or passed over:

1. **Readable**: no blocking problem (mixed image sizes or orientations, duplicated
   positions of different instances, a missing slice, truncated files, colour pixels,
   an unusable RescaleSlope/RescaleIntercept or one missing in some files only, a
   missing or non-positive PixelSpacing).
2. **Modality** equals ``rules.modality`` (``CT``).
3. **Original acquisition**: ImageType has none of ``rules.excluded_image_types``
   (localizer/scout, reformats such as MPR, MIP, MINIP, REFORMATTED, CSA MPR or CSA
   RESAMPLED, projections and volume renderings, dose reports and screen saves) and,
   when ``rules.require_original``, its first value is ``ORIGINAL``.
4. **Orientation** equals ``rules.orientation`` (``axial``).
5. **Enough slices**: at least ``rules.min_slices``.
6. **PRIMARY before SECONDARY** (``rules.prefer_primary``): ImageType value 2
   ``SECONDARY`` alone does not make a reformat: archives and anonymisers re-tag the
   original axial images they export as ``ORIGINAL\\SECONDARY\\AXIAL``.  Such a series
   is passed over when a PRIMARY (not SECONDARY) series of the study is eligible, and
   chosen otherwise; the reason says so.
7. Among the series left: **thinnest** slice thickness inside
   ``rules.thickness_range_mm`` (when none is inside, the thinnest of all is taken and
   the reason says so), then the **kernel** earliest in ``rules.kernel_preference``
   (case-insensitive substring match; unlisted kernels rank last), then more slices,
   then the lower SeriesNumber.

The user can override the choice per study (``find_series(overrides=...)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from imaging.common.errors import InvalidArgumentError
from imaging.io.series_info import SeriesInfo

__all__ = ["SelectionRules", "DEFAULT_KERNEL_PREFERENCE", "choose_series", "series_rank", "is_secondary"]

#: Smooth ("standard", soft-tissue) kernels first: sharp lung kernels add noise that
#: widens the lung density histogram and biases density-band volumes (Boedeker et al.,
#: Radiology 2004, emphysema index vs. kernel).  Substrings, matched case-insensitively.
DEFAULT_KERNEL_PREFERENCE: tuple[str, ...] = (
    "STANDARD", "SOFT", "B30", "B31", "BR36", "BR38", "B35", "I30", "I31", "FC08", "FC18", "FC03",
    "BODY", "B40", "B41", "BR40", "I40", "FC13",
)

#: ImageType values that mark a series as not an original axial acquisition.  ``SECONDARY``
#: is not among them: on its own it marks an archive's re-export, not a reformat (rule 6).
DEFAULT_EXCLUDED_IMAGE_TYPES: tuple[str, ...] = (
    "LOCALIZER", "SCOUT", "TOPOGRAM", "REFORMATTED", "MPR", "MIP", "MINIP", "PROJECTION IMAGE",
    "VOLUME", "VOLUME RENDERING", "CSA MPR", "CSA RESAMPLED", "DOSE INFO", "SCREEN SAVE",
)


@dataclass(frozen=True)
class SelectionRules:
    """Rules for choosing the series to score in each study (see module docstring).

    Parameters
    ----------
    modality : str
        Required DICOM Modality.
    orientation : {'axial', 'coronal', 'sagittal', 'oblique'}
        Required slice orientation.
    min_slices : int
        Fewest slices for a series to count as a volume of the chest (a 300 mm chest at
        10 mm slices still gives 30).
    thickness_range_mm : (float, float)
        Preferred SliceThickness range, mm; the thinnest inside it is chosen.
    kernel_preference : tuple of str
        Kernel substrings in order of preference (ties on thickness only).
    excluded_image_types : tuple of str
        ImageType values that disqualify a series.
    require_original : bool
        Require ImageType value 1 to be ``ORIGINAL`` (when ImageType is present).
    prefer_primary : bool
        Pass over a series whose ImageType value 2 is ``SECONDARY`` when a series of the
        study that is not is eligible (add ``"SECONDARY"`` to ``excluded_image_types``
        to never choose one).

    Examples
    --------
    >>> SelectionRules(min_slices=40, kernel_preference=("LUNG",)).min_slices
    40
    """

    modality: str = "CT"
    orientation: str = "axial"
    min_slices: int = 20
    thickness_range_mm: tuple[float, float] = (0.5, 5.0)
    kernel_preference: tuple[str, ...] = DEFAULT_KERNEL_PREFERENCE
    excluded_image_types: tuple[str, ...] = DEFAULT_EXCLUDED_IMAGE_TYPES
    require_original: bool = True
    prefer_primary: bool = True

    def __post_init__(self) -> None:
        if self.orientation not in ("axial", "coronal", "sagittal", "oblique"):
            raise InvalidArgumentError(f"orientation must be axial, coronal, sagittal or oblique, got {self.orientation!r}")
        if int(self.min_slices) < 1:
            raise InvalidArgumentError(f"min_slices must be >= 1, got {self.min_slices}")
        lo, hi = (float(v) for v in self.thickness_range_mm)
        if not 0 <= lo <= hi:
            raise InvalidArgumentError(f"thickness_range_mm must be (low, high) with 0 <= low <= high, got {self.thickness_range_mm}")
        object.__setattr__(self, "thickness_range_mm", (lo, hi))
        object.__setattr__(self, "kernel_preference", tuple(str(k).upper() for k in self.kernel_preference))
        object.__setattr__(self, "excluded_image_types", tuple(str(k).upper() for k in self.excluded_image_types))
        object.__setattr__(self, "modality", str(self.modality).upper())

    def kernel_rank(self, kernel: str | None) -> int:
        """Position of ``kernel`` in the preference list (``len`` when unlisted)."""
        k = (kernel or "").upper()
        for i, pattern in enumerate(self.kernel_preference):
            if pattern in k:
                return i
        return len(self.kernel_preference)


def _thickness(s: SeriesInfo) -> float:
    value = s.slice_thickness_mm or s.slice_spacing_mm
    return float(value) if value else float("inf")


def series_rank(s: SeriesInfo, rules: SelectionRules) -> tuple:
    """Sort key among eligible series: thinner, preferred kernel, more slices, lower number."""
    return (
        round(_thickness(s), 2),
        rules.kernel_rank(s.kernel),
        -s.n_slices,
        s.series_number if s.series_number is not None else 1 << 62,
        s.series_uid,
    )


def rejection(s: SeriesInfo, rules: SelectionRules) -> str | None:
    """Why ``s`` cannot be chosen under ``rules`` (None when it is eligible)."""
    if s.blocking:
        return "cannot be read as a volume: " + "; ".join(s.blocking)
    if not s.modality:
        return f"Modality missing: cannot confirm {rules.modality}"
    if s.modality != rules.modality:
        return f"modality {s.modality}, not {rules.modality}"
    bad = [t for t in s.image_type if t in rules.excluded_image_types]
    image_type = "\\".join(s.image_type)
    if bad:
        kind = "localizer/scout" if set(bad) & {"LOCALIZER", "SCOUT", "TOPOGRAM"} else "derived/reformatted"
        return f"{kind} (ImageType {image_type})"
    if rules.require_original and s.image_type and s.image_type[0] != "ORIGINAL":
        return f"not an original acquisition (ImageType {image_type})"
    if s.orientation != rules.orientation:
        return f"orientation {s.orientation}, not {rules.orientation}"
    if s.n_slices < rules.min_slices:
        return f"{s.n_slices} slices, fewer than min_slices={rules.min_slices}: not a chest volume"
    return None


def _describe(s: SeriesInfo) -> str:
    thick = _thickness(s)
    thick_s = f"{thick:g} mm" if thick != float("inf") else "unknown thickness"
    return f"{s.n_slices} slices, {thick_s}, kernel {s.kernel or 'unknown'}"


def choose_series(
    series: Sequence[SeriesInfo],
    rules: SelectionRules,
    *,
    override: str | None = None,
) -> tuple[SeriesInfo | None, dict[str, str]]:
    """Choose the series to score among one study's series.

    Parameters
    ----------
    series : sequence of SeriesInfo
        All series of one study.
    rules : SelectionRules
    override : str, optional
        SeriesInstanceUID the user chose; it wins over the rules.

    Returns
    -------
    chosen : SeriesInfo or None
        None when no series passes the rules (every reason says why).
    reasons : dict
        series_uid -> why it was chosen or passed over.

    Raises
    ------
    ValueError
        When ``override`` names no series of this study.
    """
    if override is not None:
        return _chosen_by_override(series, override)
    reasons: dict[str, str] = {}
    eligible = []
    for s in series:
        why = rejection(s, rules)
        if why is None:
            eligible.append(s)
        else:
            reasons[s.series_uid] = f"passed over: {why}"
    eligible = _primary_first(eligible, rules, reasons)
    if not eligible:
        return None, reasons
    lo, hi = rules.thickness_range_mm
    in_range = [s for s in eligible if lo <= _thickness(s) <= hi]
    pool = in_range or eligible
    chosen = min(pool, key=lambda s: series_rank(s, rules))
    how = (f"thinnest in {lo:g}-{hi:g} mm, then kernel preference" if in_range
           else f"no series within {lo:g}-{hi:g} mm, thinnest available taken")
    reasons[chosen.series_uid] = (f"chosen: {rules.modality} {rules.orientation} original, {_describe(chosen)}; {how}"
                                  + _secondary_note(chosen))
    for s in eligible:
        if s is not chosen:
            reasons[s.series_uid] = "passed over: " + (
                _ranked_below(s, chosen, rules) if s in pool
                else f"thickness {_thickness(s):g} mm outside {lo:g}-{hi:g} mm"
            )
    return chosen, reasons


def is_secondary(s: SeriesInfo) -> bool:
    """True when ImageType value 2 is ``SECONDARY`` (e.g. ``ORIGINAL\\SECONDARY\\AXIAL``)."""
    return len(s.image_type) > 1 and s.image_type[1] == "SECONDARY"


def _primary_first(eligible: list[SeriesInfo], rules: SelectionRules, reasons: dict[str, str]) -> list[SeriesInfo]:
    """Rule 6: the eligible series left once SECONDARY ones yield to a PRIMARY one (reasons recorded)."""
    primary = [s for s in eligible if not is_secondary(s)]
    if not rules.prefer_primary or not primary or len(primary) == len(eligible):
        return eligible
    for s in eligible:
        if is_secondary(s):
            reasons[s.series_uid] = (
                f"passed over: SECONDARY (ImageType {_image_type(s)}), and this study has an eligible "
                "PRIMARY series, which is preferred"
            )
    return primary


def _secondary_note(chosen: SeriesInfo) -> str:
    """What the reason adds when the chosen series is SECONDARY (an archive's re-export)."""
    if not is_secondary(chosen):
        return ""
    return (f"; ImageType {_image_type(chosen)}: SECONDARY but not a reformat (an archive's re-export of "
            "the original images), chosen as this study has no eligible PRIMARY series")


def _image_type(s: SeriesInfo) -> str:
    return "\\".join(s.image_type)


def _chosen_by_override(series: Sequence[SeriesInfo], override: str) -> tuple[SeriesInfo, dict[str, str]]:
    """The series the user named, and a reason for every series of the study."""
    match = [s for s in series if s.series_uid == override]
    if not match:
        raise InvalidArgumentError(
            f"override series_uid {override!r} is not in this study; its series are "
            f"{[s.series_uid for s in series]}"
        )
    chosen = match[0]
    reasons = {
        s.series_uid: f"chosen by user override ({_describe(s)})" if s is chosen else f"passed over: user chose {override}"
        for s in series
    }
    return chosen, reasons


def _ranked_below(s: SeriesInfo, chosen: SeriesInfo, rules: SelectionRules) -> str:
    """Why eligible ``s`` ranks below ``chosen`` (the first key of :func:`series_rank` that differs)."""
    a, b = series_rank(s, rules), series_rank(chosen, rules)
    if a[0] != b[0]:
        why = f"thicker ({_thickness(s):g} mm vs {_thickness(chosen):g} mm)"
    elif a[1] != b[1]:
        why = f"kernel {s.kernel or 'unknown'} ranks below {chosen.kernel or 'unknown'} in kernel_preference"
    elif a[2] != b[2]:
        why = f"fewer slices ({s.n_slices} vs {chosen.n_slices})"
    else:
        why = f"same thickness, kernel and slices; higher SeriesNumber ({s.series_number} vs {chosen.series_number})"
    return f"eligible, but {why}"


def parse_overrides(items: Sequence[str] | None) -> Mapping[str, str]:
    """``["STUDY_UID=SERIES_UID", ...]`` (command-line form) to a dict."""
    out: dict[str, str] = {}
    for item in items or ():
        study, sep, series = item.partition("=")
        if not sep or not study or not series:
            raise InvalidArgumentError(f"override must be STUDY_UID=SERIES_UID, got {item!r}")
        out[study.strip()] = series.strip()
    return out
