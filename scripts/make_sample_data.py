"""Generate the bundled synthetic trial in ``sample_data/`` (deterministic from a seed).

Twelve patients (six MSC, six placebo) imaged on days 0, 7 and 21; the MSC arm clears
faster on average, with real spread between patients, and the cohort mixes common
(6-24 % of lung involved at baseline) and severe (32-50 %) cases.  Layout, like a
PACS export::

    sample_data/
      arms.csv                      patient_id, arm (kept apart: scoring stays blind)
      truth.csv                     one row per visit: the chosen series and its truth
      studies/<patient>/<StudyInstanceUID>/<SeriesInstanceUID>/0001.dcm ...

Every study holds the 5 mm STANDARD-kernel axial series the truth refers to; some
also hold a scout (localizer), a 10 mm thick reconstruction or a 5 mm LUNG-kernel
reconstruction of the same acquisition, so that the series chooser has work to do
(by the rules of :mod:`imaging.io.selection` the 5 mm STANDARD series is the one to score).
Images: 112 × 112 pixels of 3.1 mm, 50 slices of 5 mm, noise 7 HU, JPEG 2000 lossless
(about 20 MB in all).

Usage::

    python scripts/make_sample_data.py                # writes ./sample_data
    python scripts/make_sample_data.py --out /tmp/trial --truth-only
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from imaging.common.files import atomic_write_text  # noqa: E402

__all__ = ["SEED", "VISIT_DAYS", "PatientPlan", "plan_trial", "visit_phantoms", "truth_rows", "write_trial", "main"]

#: Seed of the committed sample trial.
SEED: int = 20200214
#: Visit days after baseline.
VISIT_DAYS: tuple[int, ...] = (0, 7, 21)
SHAPE: tuple[int, int, int] = (50, 112, 112)
SPACING_MM: tuple[float, float, float] = (5.0, 3.1, 3.1)
NOISE_HU: float = 7.0
ARMS: tuple[str, str] = ("MSC", "placebo")
TRUTH_COLUMNS: tuple[str, ...] = (
    "patient_id", "study_date", "visit_day", "study_uid", "series_uid", "target_percent_opacity",
    "lung_volume_ml", "right_lung_volume_ml", "left_lung_volume_ml", "ggo_volume_ml",
    "consolidation_volume_ml", "percent_opacity", "percent_consolidation",
)


@dataclass(frozen=True)
class PatientPlan:
    """One patient's course: arm, baseline date and target severity per visit."""

    index: int
    patient_id: str
    arm: str
    severe: bool
    baseline_date: date
    percent_opacity: tuple[float, ...]  # per visit
    consolidation_fraction: tuple[float, ...]  # per visit

    def study_date(self, visit: int) -> str:
        return (self.baseline_date + timedelta(days=VISIT_DAYS[visit])).isoformat()


def plan_trial(seed: int = SEED) -> list[PatientPlan]:
    """The trial design: who is in which arm and how each patient's disease evolves.

    Placebo: day 7 at 0.85-1.25 × baseline (some progress), day 21 at 0.45-0.90 ×.
    MSC: day 7 at 0.60-1.00 ×, day 21 at 0.15-0.55 ×.  Consolidation gives way to
    ground-glass as lesions resolve.
    """
    rng = np.random.default_rng([seed, 0])
    arms = np.array([ARMS[0]] * 6 + [ARMS[1]] * 6)
    rng.shuffle(arms)
    severe = np.zeros(12, bool)
    for arm in ARMS:  # two severe cases per arm
        idx = np.flatnonzero(arms == arm)
        severe[rng.choice(idx, size=2, replace=False)] = True
    plans = []
    for i in range(12):
        base = float(rng.uniform(32, 50) if severe[i] else rng.uniform(6, 24))
        if arms[i] == "MSC":
            r7, r21 = rng.uniform(0.60, 1.00), rng.uniform(0.15, 0.55)
        else:
            r7, r21 = rng.uniform(0.85, 1.25), rng.uniform(0.45, 0.90)
        cf0 = float(rng.uniform(0.35, 0.5) if severe[i] else rng.uniform(0.15, 0.35))
        cf = (cf0, cf0 * float(rng.uniform(0.7, 1.0)), cf0 * float(rng.uniform(0.3, 0.7)))
        po = tuple(round(min(v, 90.0), 2) for v in (base, base * r7, base * r21))
        plans.append(PatientPlan(
            index=i, patient_id=f"P{i + 1:02d}", arm=str(arms[i]), severe=bool(severe[i]),
            baseline_date=date(2020, 2, 3) + timedelta(days=int(rng.integers(0, 21))),
            percent_opacity=po, consolidation_fraction=tuple(round(c, 3) for c in cf),
        ))
    return plans


def visit_phantoms(plan: PatientPlan, seed: int = SEED) -> Iterable["object"]:
    """The patient's phantoms, one per visit, in visit order (deterministic per patient)."""
    from imaging.phantom.make import make_phantom

    rng = np.random.default_rng([seed, 1, plan.index])
    first = make_phantom(
        shape=SHAPE, spacing_mm=SPACING_MM, percent_opacity=plan.percent_opacity[0],
        consolidation_fraction=plan.consolidation_fraction[0], crazy_paving=plan.severe and plan.index % 2 == 0,
        noise_hu=NOISE_HU, rng=rng,
    )
    yield first
    for visit in range(1, len(VISIT_DAYS)):
        yield first.follow_up(percent_opacity=plan.percent_opacity[visit],
                              consolidation_fraction=plan.consolidation_fraction[visit], rng=rng)


def _uids(plan: PatientPlan, visit: int, seed: int) -> dict[str, str]:
    from pydicom.uid import generate_uid

    def uid(*parts: object) -> str:
        return generate_uid(entropy_srcs=["chestct sample trial", str(seed), plan.patient_id, str(visit)] + [str(p) for p in parts])

    return {"study": uid("study"), "localizer": uid("series", 1), "primary": uid("series", 2),
            "thick": uid("series", 3), "lung": uid("series", 4)}


def _extras(plan: PatientPlan, visit: int) -> set[str]:
    """Which extra series a study holds (a fixed, documented pattern)."""
    extras = set()
    if (plan.index + visit) % 3 == 0:
        extras.add("localizer")
    if visit == 0 and plan.index in (1, 5, 9):
        extras.add("thick")
    if visit == 2 and plan.index == 7:
        extras.add("lung")
    return extras


def truth_rows(plans: Sequence[PatientPlan], seed: int = SEED) -> list[dict[str, object]]:
    """Truth table rows of the given patients (no DICOM written)."""
    rows = []
    for plan in plans:
        for visit, phantom in enumerate(visit_phantoms(plan, seed)):
            rows.append(_truth_row(plan, visit, phantom, seed))
    return rows


def _truth_row(plan: PatientPlan, visit: int, phantom: "object", seed: int) -> dict[str, object]:
    u = _uids(plan, visit, seed)
    row: dict[str, object] = {
        "patient_id": plan.patient_id, "study_date": plan.study_date(visit), "visit_day": VISIT_DAYS[visit],
        "study_uid": u["study"], "series_uid": u["primary"], "target_percent_opacity": plan.percent_opacity[visit],
    }
    row.update(phantom.truth())  # type: ignore[attr-defined]
    return row


def _csv_text(rows: Sequence[dict[str, object]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items() if k in columns})
    return buf.getvalue()


def _thick(volume: "object", factor: int = 2) -> "object":
    """A thicker reconstruction: the mean of each ``factor`` consecutive slices."""
    from imaging.common.volume import CTVolume

    hu = volume.hu  # type: ignore[attr-defined]
    n = (hu.shape[0] // factor) * factor
    thick = hu[:n].astype(np.float32).reshape(n // factor, factor, *hu.shape[1:]).mean(axis=1)
    sz, sy, sx = volume.spacing_mm  # type: ignore[attr-defined]
    x0, y0, z0 = volume.origin_mm  # type: ignore[attr-defined]
    return CTVolume(np.rint(thick).astype(np.int16), (sz * factor, sy, sx), (x0, y0, z0 + sz * (factor - 1) / 2),
                    np.eye(3), volume.info)  # type: ignore[attr-defined]


def _sharp(volume: "object") -> "object":
    """A sharp (lung) kernel look: unsharp masking in-plane, which also raises the noise."""
    from scipy import ndimage as ndi

    hu = volume.hu.astype(np.float32)  # type: ignore[attr-defined]
    blurred = ndi.gaussian_filter(hu, (0, 1.0, 1.0))
    sharp = np.clip(hu + 1.2 * (hu - blurred), -1024, 3071)
    return volume.with_hu(np.rint(sharp).astype(np.int16))  # type: ignore[attr-defined]


def write_trial(out: Path, *, seed: int = SEED, truth_only: bool = False) -> dict[str, object]:
    """Generate the whole trial under ``out``; returns a summary (counts, size in bytes)."""
    from pydicom.uid import JPEG2000Lossless

    from imaging.io.writers import write_dicom_series, write_localizer

    plans = plan_trial(seed)
    out.mkdir(parents=True, exist_ok=True)
    staging = out / ".tmp-studies"
    old = out / ".tmp-old-studies"
    for leftover in (staging, old):  # a killed earlier run; `old` would block the swap below
        if leftover.exists():
            shutil.rmtree(leftover)
    rows = []
    n_series = 0
    for plan in plans:
        for visit, phantom in enumerate(visit_phantoms(plan, seed)):
            rows.append(_truth_row(plan, visit, phantom, seed))
            if truth_only:
                continue
            u = _uids(plan, visit, seed)
            study_dir = staging / plan.patient_id / u["study"]
            common = dict(patient_id=plan.patient_id, study_uid=u["study"], study_date=plan.study_date(visit),
                          transfer_syntax=JPEG2000Lossless)
            vol = phantom.volume  # type: ignore[attr-defined]
            extras = _extras(plan, visit)
            if "localizer" in extras:
                write_localizer(vol, study_dir / u["localizer"], series_uid=u["localizer"], series_number=1, **common)
                n_series += 1
            write_dicom_series(vol, study_dir / u["primary"], series_uid=u["primary"], series_number=2,
                               series_description="CHEST 5.0 STANDARD", kernel="STANDARD", slice_thickness_mm=5.0, **common)
            n_series += 1
            if "thick" in extras:
                write_dicom_series(_thick(vol), study_dir / u["thick"], series_uid=u["thick"], series_number=3,
                                   series_description="CHEST 10.0 STANDARD", kernel="STANDARD", slice_thickness_mm=10.0, **common)
                n_series += 1
            if "lung" in extras:
                write_dicom_series(_sharp(vol), study_dir / u["lung"], series_uid=u["lung"], series_number=4,
                                   series_description="CHEST 5.0 LUNG", kernel="LUNG", slice_thickness_mm=5.0, **common)
                n_series += 1
    atomic_write_text(out / "truth.csv", _csv_text(rows, TRUTH_COLUMNS))
    if truth_only:
        return {"scans": len(rows)}
    atomic_write_text(out / "arms.csv", _csv_text([{"patient_id": p.patient_id, "arm": p.arm} for p in plans], ("patient_id", "arm")))
    final = out / "studies"
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    if old.exists():
        shutil.rmtree(old)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"scans": len(rows), "series": n_series, "bytes": size}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "sample_data", help="output folder (default: sample_data/)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--truth-only", action="store_true", help="write truth.csv only (no DICOM)")
    args = parser.parse_args(argv)
    try:
        summary = write_trial(args.out, seed=args.seed, truth_only=args.truth_only)
    except (OSError, ValueError) as exc:
        print(f"make_sample_data: {exc}", file=sys.stderr)
        return 1
    print(f"make_sample_data: {summary} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
