"""Synthetic chest CT phantoms with known lungs and opacities (tests, sample data, validation).

Modules
-------
make
    :func:`~imaging.phantom.make.make_phantom`: a whole phantom with its truth masks
    (:class:`~imaging.phantom.make.Phantom`); :func:`~imaging.phantom.make.make_anatomy`.
anatomy
    Geometry of the chest: one patient's :class:`~imaging.phantom.anatomy.Anatomy`, the
    :class:`~imaging.phantom.anatomy.Pose` of one visit, and the implicit fields that
    place body, ribs, heart, lungs and airways.
vessels
    The pulmonary vessel and bronchial trees grown into the lungs, and their rendering.
constants
    Nominal HU of the phantom's tissues and the default work spacing.
grid
    The work grid the anatomy is painted on, and its upsampling to the full matrix.
body
    HU of everything but the lung parenchyma.
lungs
    HU inside the lungs: parenchyma, bronchi, vessels, blended in at the pleura.
lesions
    The COVID-19-like lesions: where (disease propensity and thresholds) and how dense.
scanner
    Image formation: partial-volume blur, upsampling, noise, reconstruction circle.
truth
    The lung and lesion labels on the full matrix.
real_lungs
    :func:`~imaging.phantom.real_lungs.healthy_lungs`: reference lungs of a near-healthy
    *real* scan (threshold, components, airway growth; independent of the scoring code).
hybrid
    :func:`~imaging.phantom.hybrid.insert_lesions`: COVID-19-like lesions inserted into a
    real scan, with their truth (real anatomy, known answer).

``make`` reads like the method; the modules from ``constants`` to ``truth`` are its
steps, in order.

Depends on :mod:`imaging.common` and :mod:`imaging.io`.
"""
