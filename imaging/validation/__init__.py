"""Validation: measure the toolkit against data with known answers, and time it.

``scripts/validate.py`` and ``scripts/benchmark.py`` are thin command lines over these
modules, which write the tables of ``docs/validation.md``; a researcher can call the same
functions on their own scans, masks and truth tables.

Modules
-------
metrics
    :func:`~imaging.validation.metrics.dice`, percents, errors of measured percents against truth.
lungs
    Lung masks against a reference mask (Dice, volumes, lung-third agreement), scores of a
    real chest per lung method, a scan that is not a chest.
phantoms
    :func:`~imaging.validation.phantoms.score_phantoms`: phantoms at several severities
    scored against their truth.
truth
    :func:`~imaging.validation.truth.score_against_truth`: a trial folder with ``truth.csv``
    scored with lung × opacity method pairs.
network
    The opacity network (``models``, imported lazily): held-out COVID scans, a healthy
    chest, ``cip_ct64``, phantoms, and its speed.
real_anatomy
    Lesions inserted into real chests (:mod:`imaging.phantom.hybrid`) scored against their
    truth: percent opacity error, lung Dice, lesion inside the lung mask; review pictures
    of the reference lungs.
lidc_reads
    The LIDC-IDRI radiologists' nodule outlines (read XML) rasterised onto the volume;
    the voxels two readers outlined against the score's opacity and lung masks.
memory
    Time and peak resident memory of a step (Linux ``/proc``).
speed
    :func:`~imaging.validation.speed.measure_stages`: time and peak memory of each scoring stage.
lungmask
    lungmask's R231 network on the same scan, in its own environment, for comparison.
reading
    :func:`~imaging.io.load.load_scan` against SimpleITK's reader; the header scan.
markdown
    Markdown tables and generated sections (between markers) of a document.
report
    The Markdown of each kind of result.

Depends on :mod:`imaging.common`, :mod:`imaging.io`, :mod:`imaging.phantom`,
:mod:`imaging.scoring` and, lazily, ``models``.
"""
