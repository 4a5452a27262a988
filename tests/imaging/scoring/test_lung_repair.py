"""Hole filling of a lung mask: vessels in, the top of an organ's dome out."""

from __future__ import annotations

import numpy as np

from imaging.scoring.lung_repair import fill_holes_except_domes


def test_holes_are_filled_but_not_an_organ_dome_seen_through_the_lung_base():
    spacing = (2.5, 1.0, 1.0)
    hu = np.full((6, 40, 40), -850.0)  # aerated lung ...
    hu[:2] = 50.0  # ... above the liver
    lungs = np.zeros(hu.shape, bool)
    lungs[2:, 5:35, 5:35] = True
    dome = (2, slice(15, 25), slice(15, 25))  # the dome cap, seen as a hole in the lowest lung slice
    vessel = (4, slice(18, 21), slice(18, 21))  # a vessel, with lung under it
    hu[dome] = 40.0
    hu[vessel] = 40.0
    lungs[dome] = False
    lungs[vessel] = False
    filled = fill_holes_except_domes(lungs, hu, spacing)
    assert filled[vessel].all()
    assert not filled[dome].any()
    assert (filled & ~lungs).sum() == 9  # nothing else added
