"""Named Hounsfield-unit thresholds and score bands of the scoring stage, each cited to its source.

Every threshold used in reading the lungs and scoring opacity lives here (the trial's
response cut-offs are in :mod:`imaging.trial.constants`), so that results can record
exactly which settings produced them and a reader can check each against its paper.
All values in HU unless stated otherwise.
"""

from __future__ import annotations

__all__ = [
    "HU_AIR",
    "HU_WATER",
    "HU_LUNG_THRESHOLD",
    "HU_GGO_MIN",
    "HU_GGO_MAX",
    "HU_CONSOLIDATION_MIN",
    "HU_CONSOLIDATION_MAX",
    "HU_HIGH_OPACITY_MIN",
    "HU_OPACITY_MIN",
    "LCTA_BANDS_HU",
    "AERATION_BANDS_HU",
    "CHAGANTI_SEVERITY_BOUNDS_PCT",
    "CHAGANTI_MIN_AFFECTED_PCT",
    "VISUAL_SCORE_BOUNDS_PCT",
    "DISPLAY_WINDOW_HU",
    "LUNG_WORKING_SPACING_MM",
    "HU_BONE_MIN",
    "HU_AIRWAY_START",
    "HU_AIRWAY_MIN",
    "AIRWAY_MAX_ML",
    "LUNG_MIN_COMPONENT_ML",
    "NOT_A_CHEST_MAX_LUNG_ML",
    "LUNG_VOLUME_PLAUSIBLE_ML",
    "VESSEL_MAX_RADIUS_MM",
    "HU_VESSEL_MIN",
    "THICK_SLICE_MM",
    "COARSE_PIXEL_MM",
    "HU_CONTRAST_SUSPECTED",
    "FOV_CUTOFF_FRACTION",
    "HU_ABDOMINAL_ORGAN_MIN",
    "HU_FAT_BAND",
    "DOME_AIRLESS_FRACTION",
    "DOME_FAT_FRACTION",
    "LUNG_REPAIR_DORSAL_MEDIAL_FRACTION",
    "LUNG_REPAIR_GROW_MM",
    "HU_REPAIR_GROW_BAND",
    "HU_ENVELOPE_GGO_BAND",
    "LUNG_ENVELOPE_GROW_MM",
    "LUNG_ENVELOPE_CAGE_MARGIN_MM",
    "LUNG_ENVELOPE_RIB_DISTANCE_MM",
    "LUNG_ENVELOPE_RIB_Z_MM",
    "LUNG_ENVELOPE_BRIDGE_MM",
    "LUNG_ENVELOPE_PV_LAYER_MM",
    "LUNG_ENVELOPE_MIN_THICKNESS_MM",
    "LUNG_ENVELOPE_MIN_ML",
    "VESSEL_REGROW_MM",
    "HU_GAS_MAX",
    "HU_MEDIASTINUM_WINDOW",
    "OPACITY_RIM_TRIM_NET_PX",
    "LUNG_COMPONENT_MIN_AERATED_FRACTION",
    "PATIENT_SHELL_MAX_MM",
    "TRACHEA_AREA_MM2",
    "HEAD_AIR_ABOVE_APEX_MM",
    "AIRWAY_KEPT_ABOVE_APEX_MM",
    "LUNGS_PART_OF_VOLUME_MAX_FRACTION",
]

#: Air, HU (definition of the Hounsfield scale).
HU_AIR: float = -1000.0
#: Water, HU (definition of the Hounsfield scale).
HU_WATER: float = 0.0

#: Voxels below this are air-like candidates for lung parenchyma when building the
#: initial lung mask (classical lung segmentation, e.g. Hu, Hoffman & Reinhardt,
#: IEEE TMI 2001 use an optimal threshold near -400 to -500 HU).
HU_LUNG_THRESHOLD: float = -400.0

#: Ground-glass opacity band, HU: "ground-glass opacity (-700 to -300 HU)"
#: (Chaganti et al., Radiology: AI 2020, PMC7392373; also the infiltrated band of
#: 3D Slicer Lung CT Analyzer, -750..-400).
HU_GGO_MIN: float = -700.0
HU_GGO_MAX: float = -300.0

#: Consolidation band, HU (the "collapsed" band of 3D Slicer Lung CT Analyzer,
#: -400..0, extended to +50 to include dense consolidation, as in issue text and
#: Chaganti et al. who count high opacity from -200 HU).
HU_CONSOLIDATION_MIN: float = -300.0
HU_CONSOLIDATION_MAX: float = 50.0

#: Any opacity: lesion voxels denser than this are "opacity" for density-band PO.
HU_OPACITY_MIN: float = HU_GGO_MIN

#: High opacity (PHO): lesion voxels denser than -200 HU (Chaganti et al., 2020).
HU_HIGH_OPACITY_MIN: float = -200.0

#: 3D Slicer Lung CT Analyzer default density bands, HU (Lung CT Analyzer extension
#: for 3D Slicer, Bauer et al.; defaults from its documentation; ../shared/DESIGN.md).
LCTA_BANDS_HU: dict[str, tuple[float, float]] = {
    "emphysema": (-1050.0, -950.0),
    "inflated": (-950.0, -750.0),
    "infiltrated": (-750.0, -400.0),
    "collapsed": (-400.0, 0.0),
    "vessels": (0.0, 3000.0),
}

#: Aeration bands, HU (Gattinoni et al., Am J Respir Crit Care Med 2001;
#: used in COVID-19 quantitative CT by Lanza et al., Radiology 2020).
AERATION_BANDS_HU: dict[str, tuple[float, float]] = {
    "hyperinflated": (-1000.0, -900.0),
    "well_aerated": (-900.0, -500.0),
    "poorly_aerated": (-500.0, -100.0),
    "non_aerated": (-100.0, 100.0),
}

#: Chaganti et al. 2020 lobe/zone severity 0-4 by percent of the zone affected:
#: 0 = 0 %, 1 = 1-25 %, 2 = 26-50 %, 3 = 51-75 %, 4 = 76-100 %.  Upper bounds, %.
CHAGANTI_SEVERITY_BOUNDS_PCT: tuple[float, ...] = (0.0, 25.0, 50.0, 75.0, 100.0)
#: Below this percent a zone scores 0 on the Chaganti scale, whose lowest affected band is
#: 1-25 % (whole percents): a measured 0.2 % (vessel stubs, a nodule) is not involvement.
#: Without it every zone of a healthy chest scored 1 (lidc_idri_0001: total 5 of 24).
CHAGANTI_MIN_AFFECTED_PCT: float = 1.0

#: Visual CT severity score 0-5 per lobe/zone (Shu et al. 2020; Pan et al. 2020):
#: 0 = 0 %, 1 = <5 %, 2 = 5-25 %, 3 = 26-49 %, 4 = 50-75 %, 5 = >75 %.  Upper bounds, %.
VISUAL_SCORE_BOUNDS_PCT: tuple[float, ...] = (0.0, 5.0, 25.0, 50.0, 75.0, 100.0)

#: HU window in which half of the COVID-19 CT source volumes were already stored as
#: 8-bit images (Ma et al., Med Phys 2021, Zenodo 3757476): used to map HU into the
#: display range the opacity network was trained on.
DISPLAY_WINDOW_HU: tuple[float, float] = (-1250.0, 250.0)

# --------------------------------------------------------------------------------------
# Lung segmentation, vessel suppression and scan quality (imaging.scoring.lungs, imaging.scoring.opacity,
# imaging.scoring.scores).  Geometric values in mm or mL as named.
# --------------------------------------------------------------------------------------

#: In-plane/through-plane spacing (mm) at which the classical lung mask is computed before
#: upsampling to the input grid (block averaging by whole factors).  On 0.7 mm scans this
#: is 3 x 3 blocks: 9x fewer voxels to label and repair (lidc_idri_0001 segments in about
#: 1 s, scripts/benchmark.py scoring); cip_ct64 Dice 0.987 against its reference.
LUNG_WORKING_SPACING_MM: float = 2.0

#: Bone, HU: voxels above this are bone (ribs, spine) and are never added to the lung by
#: the concavity repair (cortical bone > 250 HU; Hounsfield scale tables, e.g. Buzug,
#: *Computed Tomography*, Springer 2008, table 1.1).  2 mm block means of thin ribs fall
#: below cortical values, hence a conservative 150.
HU_BONE_MIN: float = 150.0

#: Airway lumen, HU: region growing of trachea and bronchi starts at -900 HU and is
#: lowered in steps until the grown airway stays below AIRWAY_MAX_ML (explosion control,
#: Mori et al., J Comput Assist Tomogr 1996; van Rikxoort et al., Med Phys 2009).
HU_AIRWAY_START: float = -900.0
HU_AIRWAY_MIN: float = -995.0
#: Largest plausible trachea + bronchi lumen, mL (adult trachea ~ 30 mL, main and lobar
#: bronchi ~ 20 mL; anatomical dead space ~ 150 mL includes mouth and pharynx).
AIRWAY_MAX_ML: float = 150.0

#: Trachea cross-section, mm²: an axial air component of this area (10-32 mm across) near
#: the body midline on the upper slices seeds the airway (adult trachea 13-25 mm across,
#: Breatnach et al., AJR 1984); above the lungs a slice whose only air is one such
#: component is the neck (the end of the chest, :mod:`imaging.scoring.lung_chest`).
TRACHEA_AREA_MM2: tuple[float, float] = (80.0, 800.0)
#: Tissue thinner than this, mm, is not the patient (measured, not cited): the shell of a
#: hollow carbon-fibre table (walls 1.5-3 mm, up to ~5 mm wide after the scanner's blur
#: on 4 mm slices) and of cushions, whose enclosed air would otherwise be "air inside the
#: body" (a PET/CT attenuation CT read as 4.9 L of lungs; the thinnest chest wall, skin to
#: pleura, is over 10 mm).
PATIENT_SHELL_MAX_MM: float = 6.0
#: Air reaching more than this above the lung apices, mm, is a neck and head in the volume
#: (a chest CT starts a few cm above the apices; the pharynx lies 7-10 cm, the nasal
#: cavity and sinuses 15-20 cm above them): the air above the apices is then cut off.
HEAD_AIR_ABOVE_APEX_MM: float = 60.0
#: When the air above the apices is cut off, this much of it is kept, mm, so the airway
#: search (step 3) finds the trachea above the lungs as on a chest CT.
AIRWAY_KEPT_ABOVE_APEX_MM: float = 20.0
#: An air-filled component inside the body is a lung candidate when at least this big, mL
#: (smaller pockets: bowel gas, oesophagus, fragments).
LUNG_MIN_COMPONENT_ML: float = 30.0
#: Below this total lung volume the scan is not a chest (no lungs to score), mL.  An adult
#: lung is > 1 L at any inspiration level; an abdominal scan that catches the lung bases
#: shows tens of mL.
NOT_A_CHEST_MAX_LUNG_ML: float = 300.0
#: Gas, HU: an air component lying wholly in the lower third of the lungs' height whose
#: mean is below this is bowel/stomach gas (pure air, -1000 HU), not lung parenchyma
#: (about -850 HU with vessels and partial volume).
HU_GAS_MAX: float = -950.0
#: Plausible total lung volume range, mL (issue 4: "2.5-8 L"; adult CT lung volumes at
#: full inspiration, e.g. Coxson et al., Am J Respir Crit Care Med 1999).
LUNG_VOLUME_PLAUSIBLE_ML: tuple[float, float] = (2500.0, 8000.0)

#: Abdominal organ, HU: a hole or bay of the axial lung outline lying below the lung's
#: air (top of the diaphragm dome) is liver/spleen when its median is at least this
#: (unenhanced liver 55-65 HU, spleen 45-50 HU; e.g. Hofer, *CT Teaching Manual*),
#: and consolidation (typically -100..+20 HU median with air bronchograms) otherwise.
HU_ABDOMINAL_ORGAN_MIN: float = 20.0
#: Fat, HU (adipose tissue about -100; e.g. Hofer, *CT Teaching Manual*).
HU_FAT_BAND: tuple[float, float] = (-150.0, -60.0)
#: A hole or bay under the lung's air whose median is below HU_ABDOMINAL_ORGAN_MIN is
#: still an organ dome (spleen or liver with the fat round it, cut obliquely) when at
#: least DOME_AIRLESS_FRACTION of it is airless (>= HU_CONSOLIDATION_MIN) and at least
#: DOME_FAT_FRACTION is fat (HU_FAT_BAND): lung holds no fat, and consolidation keeps some
#: air or ground-glass.  Measured (README "scoring"): lidc_idri_0001's spleen-dome holes
#: are 98-99 % airless with 27-85 % fat; phantom consolidation holes 48-91 % airless.
DOME_AIRLESS_FRACTION: float = 0.95
DOME_FAT_FRACTION: float = 0.25

#: Repair of dense disease at the lung edge (imaging.scoring.lungs, step 5).  A dorsal concavity
#: of the axial lung outline is filled when its centre lies no more than this fraction of
#: the lung's width medial to the lung's centre (paravertebral consolidation is kept; the
#: spine and aorta bays lie farther medially and are closed on their central side).
LUNG_REPAIR_DORSAL_MEDIAL_FRACTION: float = 0.35
#: Filled concavities are then grown in-plane at most this far (mm) through voxels in
#: HU_REPAIR_GROW_BAND, to reach the chest wall past the straight hull chord.
LUNG_REPAIR_GROW_MM: float = 15.0
#: Consolidation-like HU band for that growth: above subcutaneous/extrapleural fat
#: (-100 HU) and below muscle (40-60 HU), so the growth stops at the chest wall.
HU_REPAIR_GROW_BAND: tuple[float, float] = (-60.0, 20.0)

#: Envelope repair (imaging.scoring.lungs, step 6): disease between the aerated lung and the
#: rib cage.  Dense ground-glass above the lung threshold and below fat (GGO -700..-300
#: HU, Chaganti et al., Radiology: AI 2020; fat -100 HU): voxels in this band, or in
#: HU_REPAIR_GROW_BAND, are grown into from the lung.
HU_ENVELOPE_GGO_BAND: tuple[float, float] = (-400.0, -150.0)
#: Farthest the envelope repair grows from the threshold lung (3-D geodesic), mm.
LUNG_ENVELOPE_GROW_MM: float = 25.0
#: The growth stays this far inside the rib cage (per-slice convex hull of bone), mm:
#: intercostal muscle and extrapleural fat lie on the hull.
LUNG_ENVELOPE_CAGE_MARGIN_MM: float = 4.0
#: The cage is the hull of the lung and the bone within this distance of it, mm: the
#: ribs lie on the pleura (plus intercostal muscle and extrapleural fat, about 1 cm, and
#: room for the disease the lung has lost), the shoulder girdle lies farther out.
LUNG_ENVELOPE_RIB_DISTANCE_MM: float = 30.0
#: ... of the lung on any slice within this distance, mm (a consolidated slice's aerated
#: lung may lie far from its ribs; its neighbours' does not).
LUNG_ENVELOPE_RIB_Z_MM: float = 10.0
#: Largest partial-volume layer (between aerated lung and consolidation, HU between the
#: bands) that the growth may cross, mm.
LUNG_ENVELOPE_BRIDGE_MM: float = 5.0
#: Envelope repair: a partial-volume voxel (between HU_ENVELOPE_GGO_BAND and
#: HU_REPAIR_GROW_BAND) within this distance, mm in-plane, of both a ground-glass-band and
#: a consolidation-band voxel is grown through (the layer between a lesion's ground-glass
#: halo and its consolidated core).  Measured with the organ-dome rule (README
#: "scoring"): phantom mean |PO error| 6.7 -> 4.6 points, lidc_idri_0001 PO 0.25 -> 0.49 %,
#: cip_ct64 Dice 0.978 -> 0.975.  0 disables.
LUNG_ENVELOPE_PV_LAYER_MM: float = 3.0
#: Added regions thinner than twice this (in-plane opening radius), mm, are dropped:
#: partial-volume slivers along the pleura and intercostal spaces, not consolidation.
LUNG_ENVELOPE_MIN_THICKNESS_MM: float = 2.5
#: Added 3-D components smaller than this are dropped, mL.
LUNG_ENVELOPE_MIN_ML: float = 1.0

#: Vessel suppression (imaging.scoring.opacity): opacity candidates are opened slice by slice with
#: a disk of this radius, mm, which removes every structure narrower than 2 x radius:
#: intrapulmonary vessels beyond the hilum (segmental arteries 5-8 mm, subsegmental
#: < 5 mm; e.g. Fleischner glossary, Hansell et al., Radiology 2008), fissures, bronchial
#: walls and the partial-volume rim.  Pneumonia patches are larger and keep a core.
#: Chosen on lidc_idri_0001 and phantoms (README "scoring"): 3 mm left healthy phantoms
#: at 3.4-3.9 % PO, 5 mm at 0.5-0.8 %.
VESSEL_MAX_RADIUS_MM: float = 5.0
#: The surviving cores then regrow this far (mm, in-plane) back into the candidates,
#: restoring lesion edges the opening trimmed while adding at most short vessel stubs.
#: Chosen on phantoms with their true lungs and lidc_idri_0001 (README "scoring"):
#: 5 mm under-read 10-60 % phantoms by 2.0-2.7 points, 10 mm by 1.0-1.9 (healthy
#: phantom +0.84 -> +1.00), lidc_idri_0001 PO 0.89 -> 0.95 %; 20 mm took LIDC over 1 %.
VESSEL_REGROW_MM: float = 10.0
#: Voxels denser than this inside the lung are vessels, calcification or bone, never
#: opacity (Lung CT Analyzer "vessels" band starts at 0 HU; dense consolidation reaches
#: +50 HU, so the cut is the top of the consolidation band).
HU_VESSEL_MIN: float = HU_CONSOLIDATION_MAX

#: Slices thicker than this (mm) make density quantification unreliable (partial volume);
#: thin-section CT is <= 1.5-3 mm (Fleischner glossary, Hansell et al., Radiology 2008).
THICK_SLICE_MM: float = 3.0
#: In-plane pixels larger than this (mm) leave the vessel suppression (an opening with a
#: disk of VESSEL_MAX_RADIUS_MM) only a 3 x 3-pixel disk, too small to remove vessels:
#: measured on healthy phantoms (60 slices at 5 mm, seeds 11-12, classical lungs, density
#: bands; 2026-11-26), PO read +0.2..+2.7 points with pixels of 0.9-3.3 mm and +5.3..+6.0
#: with 3.4-4.5 mm.  Clinical chest CT has 0.5-1 mm pixels; larger ones mean a
#: down-sampled export (the bundled sample data has 3.1 mm).
COARSE_PIXEL_MM: float = VESSEL_MAX_RADIUS_MM / 1.5
#: Median HU of mediastinal blood pool/soft tissue above this suggests IV contrast
#: (unenhanced blood 30-50 HU; enhanced aorta/heart > 150 HU).
HU_CONTRAST_SUSPECTED: float = 100.0
#: Voxels counted for that median: soft tissue and (enhanced) blood, excluding
#: mediastinal fat (< -50 HU) and cortical bone / dense contrast (> 600 HU).
HU_MEDIASTINUM_WINDOW: tuple[float, float] = (-50.0, 600.0)
#: Lungs are "cut off by the field of view" when more than this fraction of their largest
#: axial cross-section lies on the first/last slice or on the in-plane image border.
FOV_CUTOFF_FRACTION: float = 0.05

#: models.inference (HU input): dense (>= HU_CONSOLIDATION_MIN) predicted-lesion voxels
#: within this many network-input pixels (256 x 256 grid, ~1.4 mm for a 360-mm field) of
#: the predicted extrapulmonary background are dropped before the GGO / consolidation split.
#: Measured, not cited: on phantoms (seeds 101-104, 5 x 1.4 x 1.4 mm) the network's lesion
#: boundary runs 1-2 such pixels into the pleural / chest-wall fat (-160..-70 HU), which
#: counted as consolidation; with the TRUE lesion masks the plain -300 HU split is within
#: 9 % of the truth volumes; the trim took consolidation error from +58/+30/+13 % to
#: +33/+3/-1 % for the first weights (models/weights/MODEL_CARD.md).
OPACITY_RIM_TRIM_NET_PX: int = 2
#: models.inference (HU input): a connected region (per axial slice) that the network calls
#: lung is kept only when at least this fraction of it is aerated (HU < HU_LUNG_THRESHOLD).
#: Measured, not cited: on lidc_idri_0001 the first weights called liver, spleen, kidneys,
#: bowel and neck soft tissue lung + lesion (aerated fraction ~0); 0.2 dropped them (lung
#: volume 5,072 -> 3,833 mL, opacity 8.4 -> 3.6 %) while keeping >= 98.8 % of the
#: predicted lesion on phantoms with 5-30 % opacity (models/weights/MODEL_CARD.md).
LUNG_COMPONENT_MIN_AERATED_FRACTION: float = 0.2
#: A scan whose lungs span less than this fraction of its slices holds much more than a
#: chest (whole-body or PET/CT attenuation CT, chest-abdomen-pelvis): flagged
#: ``lungs_in_part_of_volume``, the score is of its chest part.  A chest CT's lungs span
#: most of its slices (the four real chest scans of the test data: 80-87 %; about 70 %
#: when the upper abdomen is covered too); a whole-body scan's about a quarter.
LUNGS_PART_OF_VOLUME_MAX_FRACTION: float = 0.5
