"""The batch run's settings: its arguments checked, its scorer named, its resume settings.

:func:`run_settings` checks every argument of :func:`imaging.pipeline.batch.score_studies`
before anything is read or written (folders, workers, scheduler, scorer options, the
pseudonym key and the pseudonym mode of an existing output folder) and returns one
:class:`RunSettings`: what the run does and the settings hash that names its stored
results.  The scorer travels to worker processes by name (``module:qualname``,
:func:`scorer_name`), so the parent never imports torch.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imaging.common.environment import software_version
from imaging.common.errors import InvalidArgumentError
from imaging.common.files import check_output_folder, is_within
from imaging.pipeline.store import settings_hash

__all__ = ["RunSettings", "run_settings", "scorer_name", "check_score_options", "DEFAULT_SCORER", "ARTIFACT_KINDS"]

#: Artefact kinds a task can write.
ARTIFACT_KINDS = ("masks", "qc", "seg")

#: Why ``score_studies`` refuses to run inside a starting worker process.
MAIN_GUARD_HINT = (
    "score_studies was called while a worker process was starting: worker processes are spawned and re-run "
    "the calling script, so a script that calls score_studies with workers > 1 must do so under "
    '`if __name__ == "__main__":`'
)

#: Default scorer (imported in the worker, so torch is never imported by the parent).
DEFAULT_SCORER = "imaging.scoring.scores:score_scan"


# --------------------------------------------------------------------------- the run's settings

@dataclass(frozen=True)
class RunSettings:
    """What one run of :func:`~imaging.pipeline.batch.score_studies` does, checked.

    Attributes
    ----------
    root, out : Path, Path or None
        The input tree (only read) and the output folder (``None``: nothing written).
    workers : int
        Parallel scans (>= 1).
    scheduler : None, str or distributed.Client
        As given to ``score_studies``.
    scorer : str
        The scorer as ``module:qualname``.
    options : dict
        The scorer's keyword options.
    software_version : str
        Version of the software and model weights (part of every resume key).
    key, key_fingerprint : bytes or None, str or None
        The pseudonym key and its fingerprint (``None``: pseudonyms off).
    settings_hash : str
        Hash of scorer, options and key fingerprint: names the stored results.
    artifacts : tuple of str
        The artefact kinds asked for (:data:`ARTIFACT_KINDS`).
    """

    root: Path
    out: Path | None
    workers: int
    scheduler: Any
    scorer: str
    options: dict[str, Any]
    software_version: str
    key: bytes | None
    key_fingerprint: str | None
    settings_hash: str
    artifacts: tuple[str, ...]

    @property
    def pseudonyms(self) -> bool:
        """Whether patient IDs become keyed pseudonyms (and paths and free text are hidden)."""
        return self.key is not None

    def pseudonym(self, patient_id: str | None) -> str | None:
        """The patient ID as written in the outputs: its keyed pseudonym, or itself (``None`` when empty)."""
        if self.key is None:
            return patient_id or None
        from imaging.pipeline.pseudonym import pseudonymize

        return pseudonymize(patient_id, self.key)


def run_settings(root: str | os.PathLike[str], *, out: str | os.PathLike[str] | None, workers: int | None,
                 scheduler: Any, scorer: Callable[..., Any] | None, score_options: Mapping[str, Any] | None,
                 pseudonym_key: bytes | str | os.PathLike[str] | None, masks: bool, qc: bool,
                 dicom_seg: bool) -> RunSettings:
    """Check the arguments of ``score_studies`` and derive the run's settings; nothing is written.

    Raises
    ------
    NoDicomFoundError
        ``root`` does not exist.
    InvalidArgumentError
        Called while a worker process starts, ``out`` overlaps ``root``, bad ``workers``,
        a bad scorer option, a bad key, or ``out`` written with other pseudonym settings.
    TypeError
        ``scheduler`` of the wrong type.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise InvalidArgumentError(MAIN_GUARD_HINT)
    root_path, out_path = _check_folders(root, out)
    n_workers = _check_workers(workers)
    _check_scheduler(scheduler)
    options = _check_options(scorer, score_options)
    key = _load_pseudonym_key(pseudonym_key, out_path)
    s_name = scorer_name(scorer)
    version = software_version()
    key_fp = None if key is None else _fingerprint(key)
    settings: dict[str, Any] = {"scorer": s_name, "options": _jsonable(options)}
    if key_fp is not None:  # pseudonyms change the stored rows (no descriptions, no paths): never resume across
        settings["pseudonym_key"] = key_fp
    if out_path is not None:
        _check_pseudonym_mode(out_path, key_fp)
    return RunSettings(
        root=root_path, out=out_path, workers=n_workers, scheduler=scheduler, scorer=s_name, options=options,
        software_version=version, key=key, key_fingerprint=key_fp, settings_hash=settings_hash(settings),
        artifacts=tuple(k for k, on in zip(ARTIFACT_KINDS, (masks, qc, dicom_seg)) if on))


def _check_folders(root: str | os.PathLike[str], out: str | os.PathLike[str] | None) -> tuple[Path, Path | None]:
    """``root`` exists; ``out`` can be created and does not overlap ``root``."""
    from imaging.common.errors import NoDicomFoundError

    root_path = Path(root)
    if not root_path.exists():
        raise NoDicomFoundError(f"root {str(root_path)!r} does not exist")
    out_path = None if out is None else check_output_folder(out)
    if out_path is not None and (is_within(out_path, root_path) or is_within(root_path, out_path)):
        raise InvalidArgumentError(f"out {str(out_path)!r} overlaps root {str(root_path)!r}: choose an output folder outside "
                         "the input tree (the input is never written to)")
    return root_path, out_path


def _check_workers(workers: int | None) -> int:
    """The number of parallel scans (default: every core)."""
    n_workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if n_workers < 1:
        raise InvalidArgumentError(f"workers must be >= 1, got {workers}")
    return n_workers


def _check_scheduler(scheduler: Any) -> None:
    if scheduler is not None and not (isinstance(scheduler, str) or hasattr(scheduler, "submit")):
        raise TypeError(f"scheduler must be None, 'local', an address or a distributed.Client, got {scheduler!r}")


def _check_options(scorer: Callable[..., Any] | None, score_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The scorer's options as a dict, checked (a bad option would fail every scan)."""
    if score_options is not None and not isinstance(score_options, Mapping):
        raise InvalidArgumentError(f"score_options must be a mapping, got {type(score_options).__name__}")
    options = dict(score_options or {})
    check_score_options(scorer, options)  # a bad option would fail every scan: refuse it before the run
    return options


# --------------------------------------------------------------------------- the scorer and its options

def scorer_name(scorer: Callable[..., Any] | None) -> str:
    """``module:qualname`` of a scorer (the default when ``None``)."""
    if scorer is None:
        return DEFAULT_SCORER
    module = getattr(scorer, "__module__", None)
    qualname = getattr(scorer, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise TypeError(f"scorer must be a top-level function importable by worker processes, got {scorer!r}")
    return f"{module}:{qualname}"


def _resolve_scorer(name: str) -> Callable[..., Any]:
    import importlib

    module_name, _, qualname = name.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


#: Options of the default scorer whose values come from a fixed list (checked up front):
#: name -> (module, attribute) holding the tuple of accepted values ...
_CHOICES_FROM: dict[str, tuple[str, str]] = {
    "lung_method": ("imaging.scoring.lungs", "LUNG_METHODS"),
    "opacity_method": ("imaging.scoring.scores", "_OPACITY_METHODS"),
    "on_not_chest": ("imaging.scoring.scores", "_ON_NOT_CHEST"),
}
#: ... or name -> the accepted values themselves.
_FIXED_CHOICES: dict[str, tuple[str, ...]] = {"zone_thirds": ("height", "volume")}  # imaging.scoring.lungs.lung_zones


def _default_choices(name: str) -> tuple[str, ...] | None:
    """Accepted values of an enumerated option of the default scorer (None: not enumerated)."""
    import importlib

    if name in _CHOICES_FROM:
        module, attribute = _CHOICES_FROM[name]
        return tuple(getattr(importlib.import_module(module), attribute))
    return _FIXED_CHOICES.get(name)


def check_score_options(scorer: Callable[..., Any] | None, options: Mapping[str, Any], *,
                        what: str = "score_options") -> None:
    """Refuse options the scorer cannot take, before a batch starts.

    Every name must be a keyword parameter of the scorer (unless it takes
    ``**kwargs``).  For the default scorer (:func:`imaging.score_scan`) the values of
    the enumerated options (``lung_method``, ``opacity_method``, ``on_not_chest``,
    ``zone_thirds``) must be among the accepted ones, numbers must be numbers and
    flags booleans; otherwise every scan of the batch would fail with the same error.

    Parameters
    ----------
    scorer : callable or None
        The scorer (``None``: the default, :func:`imaging.score_scan`).
    options : mapping
        Keyword options name -> value.
    what : str
        How the options are named in messages (``"--option"`` on the command line).

    Raises
    ------
    InvalidArgumentError
        An unknown option name or a value the scorer refuses; the message names the
        option, its value and what is accepted.

    Examples
    --------
    >>> check_score_options(None, {"lung_method": "classical", "ggo_min_hu": -700})
    >>> check_score_options(None, {"lung_method": "bogus"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    imaging.common.errors.InvalidArgumentError: score_options lung_method='bogus' is not accepted; choose one of auto, ...
    """
    import inspect

    if not isinstance(options, Mapping):
        raise InvalidArgumentError(f"{what} must be a mapping of option name -> value, got {type(options).__name__}")
    name = scorer_name(scorer)
    func = _resolve_scorer(DEFAULT_SCORER) if scorer is None else scorer
    if not callable(func):
        raise InvalidArgumentError(f"scorer must be callable, got {func!r}")
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # no introspectable signature (a builtin): nothing to check
        return
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    volume_param = positional[0].name if positional else None  # the volume: never an option
    accepted = {p.name: p for p in params
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != volume_param}
    for key in options:
        if not isinstance(key, str) or (key not in accepted and (not takes_any or key == volume_param)):
            raise InvalidArgumentError(
                f"{what} {key!r} is not an option of {name} (its options: {', '.join(accepted) or 'none'})")
    if func is not _resolve_scorer(DEFAULT_SCORER):
        return  # other scorers check their own values
    for key, value in options.items():
        choices = _default_choices(key)
        if choices is not None:
            if value not in choices:
                raise InvalidArgumentError(f"{what} {key}={value!r} is not accepted; choose one of {', '.join(choices)}")
            continue
        default = accepted[key].default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise InvalidArgumentError(f"{what} {key}={value!r} must be true or false")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidArgumentError(f"{what} {key}={value!r} must be a finite number")


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples and paths made plain JSON values (recursively)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# --------------------------------------------------------------------------- pseudonyms

def _check_pseudonym_mode(out: Path, key_fp: str | None) -> None:
    """Refuse an OUT written by a run with other pseudonym settings: its files (masks, SEG,
    stored records) would keep the other run's IDs and paths beside the new ones."""
    manifest = out / "manifest.json"
    try:
        before = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a new OUT (or no readable manifest: nothing to compare with)
    if not isinstance(before, dict):
        return
    # manifests written before the fingerprint was recorded: pseudonymized ones have no root
    old_fp = before.get("pseudonym_key_fingerprint", None if before.get("root") else "unknown key")
    if old_fp != key_fp:
        was = "without pseudonyms" if old_fp is None else f"with pseudonym key {old_fp}"
        now = "without pseudonyms" if key_fp is None else f"with pseudonym key {key_fp}"
        raise InvalidArgumentError(
            f"output folder {str(out)!r} holds the outputs of a run {was}; this run is {now}. Its files "
            "(masks, DICOM SEG, stored results) would keep the other run's identifiers: write to a new, "
            "empty output folder")


def _fingerprint(key: bytes) -> str:
    from imaging.pipeline.pseudonym import key_fingerprint

    return key_fingerprint(key)


def _load_pseudonym_key(pseudonym_key: Any, out: Path | None) -> bytes | None:
    if pseudonym_key is None:
        return None
    if isinstance(pseudonym_key, (bytes, bytearray)):
        from imaging.pipeline.pseudonym import MIN_KEY_BYTES

        if len(pseudonym_key) < MIN_KEY_BYTES:
            raise InvalidArgumentError(f"pseudonym_key must be at least {MIN_KEY_BYTES} bytes, got {len(pseudonym_key)}")
        return bytes(pseudonym_key)
    from imaging.pipeline.pseudonym import load_key

    return load_key(pseudonym_key, out=out)

