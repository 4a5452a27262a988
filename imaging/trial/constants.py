"""Named cut-offs of the trial stage (radiographic response), each with its source.

Values are in units of the response metric (percentage points for percent opacity).
"""

from __future__ import annotations

__all__ = [
    "RESPONSE_ABSOLUTE_CHANGE",
    "RESPONSE_IMPROVED_RELATIVE_PCT",
    "RESPONSE_PROGRESSED_RELATIVE_PCT",
    "RESPONSE_MIN_ABSOLUTE_CHANGE",
]

#: Radiographic response per visit (imaging.trial.compare), in units of the response metric
#: (percentage points for percent opacity).  Improved: change <= -RESPONSE_ABSOLUTE_CHANGE,
#: or relative change <= -RESPONSE_IMPROVED_RELATIVE_PCT with |change| >=
#: RESPONSE_MIN_ABSOLUTE_CHANGE; progressed mirrors it with RESPONSE_PROGRESSED_RELATIVE_PCT;
#: otherwise stable.  No guideline defines these for quantitative CT opacity: the relative
#: cut-offs borrow RECIST 1.1's -30 % / +20 % (Eisenhauer et al., Eur J Cancer 2009) by
#: analogy, and the absolute floors keep tiny baselines from swinging categories.
#: Not validated: set them for each trial and report them (the report does).
RESPONSE_ABSOLUTE_CHANGE: float = 5.0
RESPONSE_IMPROVED_RELATIVE_PCT: float = 30.0
RESPONSE_PROGRESSED_RELATIVE_PCT: float = 20.0
RESPONSE_MIN_ABSOLUTE_CHANGE: float = 1.0
