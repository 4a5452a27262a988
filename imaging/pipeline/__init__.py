"""The batch run: many studies scored into one output folder, resumable, with its outputs.

Modules
-------
batch
    :func:`~imaging.pipeline.batch.score_studies`: choose, read, score, write, resume (the method, step by step).
settings
    The run's arguments checked and its settings (scorer, options, pseudonym key, settings hash).
scan_task
    One scan's task: made per chosen series, run in a worker (read, score, write masks / QC / SEG).
scheduling
    Where the tasks run (this process, a process pool or Dask) and which stored results a rerun keeps.
store
    Resume keys, one JSON record per scanned series under ``OUT/results``, and the run lock.
tables
    The manifest, the scores table and the run's summary.
run_log
    The run's log file, and paths under ROOT written relative (or hidden) in messages.
qc
    QC pictures of each scan (lung and opacity outlines on representative slices) and their thumbnails.
qc_names
    Names a person can read for the QC files under ``OUT/qc`` (scan and patient labels).
course_panels
    The small pictures of one scan (same lung levels in every visit) its patient's course is made of.
course_pictures
    Every patient's course on one page: one column per visit, assembled from the panels.
gallery
    The run's QC gallery ``OUT/qc/index.html``: every scan on one offline page, sortable and filterable.
dicomseg
    DICOM SEG objects of the masks, on the source grid.
pseudonym
    Keyed pseudonyms for patient IDs.

Depends on :mod:`imaging.scoring`, :mod:`imaging.io` and :mod:`imaging.common`.
"""
