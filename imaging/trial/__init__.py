"""The trial: scores and arms tables, change from baseline, statistics, the report.

Modules
-------
In the order :func:`~imaging.trial.compare.compare_arms` uses them.

constants
    Radiographic response cut-offs, with their sources.
tables
    Reading the scores and arms tables; the checks and warnings every module shares.
dates
    Study dates read without guessing (ISO, DICOM, or one explicit format).
visits
    Each scan's day since baseline and visit (:func:`~imaging.trial.visits.prepare_scans`).
arms
    The arms table, its strata, the reference arm and the join of arms to scans.
change
    Change from baseline: one row per patient, visit and metric.
response
    :class:`~imaging.trial.response.ResponseCriteria`: improved / stable / progressed.
stats
    The statistical tests and confidence intervals (pure numpy/scipy/statsmodels), one
    import for the families in ``stats_result`` (the result type, descriptives),
    ``stats_rank`` (Mann-Whitney, Hodges-Lehmann), ``stats_difference`` (bootstrap
    median difference, Welch's t), ``stats_categorical`` (χ², Fisher) and
    ``stats_models`` (ANCOVA, mixed model).
arm_tests
    Descriptives, per-visit tests and the mixed model, in all patients and per stratum.
comparison
    :class:`~imaging.trial.comparison.Comparison`: the result tables, settings and notes.
compare
    :func:`~imaging.trial.compare.compare_arms`: arm against arm, per visit and over time.
report
    :func:`~imaging.trial.report.write_report`: figures, tables and the HTML/Markdown report.

Depends only on :mod:`imaging.common`: a researcher can bring their own scores table.
"""
