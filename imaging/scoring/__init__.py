"""Scoring one scan: lungs, opacity inside them, and the scan's scores.

Modules
-------
constants
    Every HU threshold and score band of this stage, each cited to its source.
lungs
    :func:`~imaging.scoring.lungs.segment_lungs` (classical lung mask) and lung zones.
opacity
    :func:`~imaging.scoring.opacity.density_bands`: ground-glass and consolidation by HU.
scores
    :func:`~imaging.scoring.scores.score_scan` -> :class:`ScanScore` (mL, percents, flags).

Depends on :mod:`imaging.common` and :mod:`imaging.io`; the learned model is in ``models``.
"""
