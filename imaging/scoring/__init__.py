"""Scoring one scan: lungs, opacity inside them, and the scan's scores.

Modules
-------
constants
    Every HU threshold and score band of this stage, each cited to its source.
lungs
    :func:`~imaging.scoring.lungs.segment_lungs`: the lung methods (classical, learned,
    hybrid, union), their notes, and the learned model's route.
lungs_learned
    Lungs of a 2.5-D network trained on real anatomy with inserted lesions
    (:mod:`models.lung25d`), from a checkpoint; used by validation, not yet a method.
lungs_classical
    The classical lung mask: its pipeline, the lung components and the airway removal.
lung_grid
    The ~2 mm working grid of the classical mask (block means, upsampling) and the air
    inside the body.
lung_chest
    The chest part of a longer scan (whole-body, PET/CT): the patient without the table,
    no head air above the lungs nor bowel gas below them.
lung_sides
    :func:`~imaging.scoring.lung_sides.split_lungs` (right / left) and the body's midline.
lung_repair
    Dense disease put back into the classical mask: holes and bays, the envelope repair.
lung_zones
    :func:`~imaging.scoring.lung_zones.lung_zones`: thirds and ventral / dorsal halves.
opacity
    :func:`~imaging.scoring.opacity.density_bands`: ground-glass and consolidation by HU.
scores
    :func:`~imaging.scoring.scores.score_scan`, step by step -> :class:`ScanScore`.
scan_score
    :class:`~imaging.scoring.scan_score.ScanScore` (mL, percents, zone scores) and its
    table row.
quality_flags
    The quality flags of a score and the not-a-chest message.
mask_files
    :func:`~imaging.scoring.mask_files.save_masks` and the masks' file stems.

Depends on :mod:`imaging.common` and :mod:`imaging.io`; the learned model is in ``models``.
"""
