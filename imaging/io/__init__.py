"""Reading: find DICOM series in a folder, choose each study's chest CT, read it as HU; writers.

Modules
-------
series
    :func:`~imaging.io.series.find_series`: walk a folder, group the files into studies
    and series, describe and choose -> :class:`~imaging.io.series.SeriesCatalog`.
series_info
    What is known of one series (:class:`~imaging.io.series_info.SeriesInfo`) and one
    study (:class:`~imaging.io.series_info.StudySelection`).
describe
    :func:`~imaging.io.describe.describe_series`: one series' headers -> geometry,
    counts and problems, in named steps.
selection
    The stated rules that choose one series per study (:class:`SelectionRules`).
headers, fastheader
    Reading the DICOM header fields the toolkit needs, quickly.
pixel_element
    Where a file's pixel bytes lie, and whether it was cut short before their end.
slices
    Slice ordering and stack geometry from ImagePositionPatient / ImageOrientationPatient.
load
    :func:`~imaging.io.load.load_scan`: a folder, DICOM series or NIfTI file -> ``CTVolume``.
decode
    Compressed pixel data: the fastest installed decoder, many files at once in worker
    processes.
writers
    Write volumes as DICOM series or NIfTI (used by the phantoms and the sample data).

Depends only on :mod:`imaging.common`.
"""
