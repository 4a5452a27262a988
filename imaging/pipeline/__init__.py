"""The batch run: many studies scored into one output folder, resumable, with its outputs.

Modules
-------
batch
    :func:`~imaging.pipeline.batch.score_studies`: choose, read, score, write, resume.
qc
    QC pictures of each scan (lung and opacity outlines on representative slices).
dicomseg
    DICOM SEG objects of the masks, on the source grid.
pseudonym
    Keyed pseudonyms for patient IDs.

Depends on :mod:`imaging.scoring`, :mod:`imaging.io` and :mod:`imaging.common`.
"""
