"""The opacity network's validation refuses a wrong setting before measuring (needs torch).

The measurements themselves run in ``python scripts/validate.py opacity`` (minutes).
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")


def test_lesion_threshold_out_of_range_is_refused():
    from imaging.validation.network import use_network

    with pytest.raises(ValueError, match="--lesion-threshold must be in"):
        use_network(lesion_threshold=1.5)
