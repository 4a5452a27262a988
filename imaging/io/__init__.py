"""Reading: find DICOM series in a folder, choose each study's chest CT, read it as HU; writers.

Modules
-------
series
    :func:`~imaging.io.series.find_series`: discover series and describe each one.
selection
    The stated rules that choose one series per study (:class:`SelectionRules`).
headers, fastheader
    Reading the DICOM header fields the toolkit needs, quickly.
slices
    Slice ordering and stack geometry from ImagePositionPatient / ImageOrientationPatient.
load
    :func:`~imaging.io.load.load_scan`: a folder, DICOM series or NIfTI file -> ``CTVolume``.
writers
    Write volumes as DICOM series or NIfTI (used by the phantoms and the sample data).

Depends only on :mod:`imaging.common`.
"""
