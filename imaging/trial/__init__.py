"""The trial: scores and arms tables, change from baseline, statistics, the report.

Modules
-------
constants
    Radiographic response cut-offs, with their sources.
tables
    Reading and checking the scores, arms and visits tables.
stats
    The statistical tests and confidence intervals (pure numpy/scipy/statsmodels).
compare
    :func:`~imaging.trial.compare.compare_arms`: arm against arm, per visit and over time.
report
    :func:`~imaging.trial.report.write_report`: figures, tables and the HTML/Markdown report.

Depends only on :mod:`imaging.common`: a researcher can bring their own scores table.
"""
