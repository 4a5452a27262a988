"""Synthetic chest CT phantoms with known lungs and opacities (tests, sample data, validation).

Modules
-------
make
    :func:`~imaging.phantom.make.make_phantom`: a whole phantom with its truth masks.
anatomy
    Body, ribs, heart, lungs and airways of the phantom.
vessels
    The pulmonary vessel tree drawn into the lungs.

Depends on :mod:`imaging.common` and :mod:`imaging.io`.
"""
