"""Where the parts of an aligned 48x48 face lie, so that "the model looks at the eyes, not the hair"
can be checked by how much of an attribution map's mass falls on each part.

The bundled synthetic faces come with part masks (grader.data.faceset.PART_NAMES). Real FER2013
faces do not, but they are registered: the dataset's release (Goodfellow et al. 2013, the ICML
2013 challenge) describes its faces as "automatically registered so that the face is more or
less centered and occupies about the same amount of space in each image". This module draws
that shared frame as a few simple shapes, the *canonical layout*, and `part_regions` uses the
masks where a set has them and the layout elsewhere, saying which parts came from where
(`PartRegions.from_masks`).

Coordinates are those of grader.scoring.measures: pixels of a 48-pixel face measured from the
image's top-left corner, pixel (r, c) centred at (r + 0.5, c + 0.5); the vertical midline is
column 24.0, so every shape is mirror-symmetric. Other sides scale the geometry.

How the geometry was chosen
---------------------------
The anchors are FER2013's alignment as the face ellipse of measures.py states it (eyes around
row 18, mouth around row 36, brows a few rows above the eyes, face ellipse centred at (26.5, 24.0)
with semi-axes 17 rows and 15 columns) and the proportions of an average face (eyes about a
quarter of the face width off the midline, the nose between the eyes and the mouth, the mouth
about as wide as the distance between the pupils). The synthetic generator
(grader.data.synth) draws its faces a little larger and lower than that: averaged over 2000
faces its eyes lie at row 21.2, its brows at 13.8, its nose at 27.3 and its mouth at 38.5.
The sizes and the exact rows were then tuned on 2000 synthetic faces (seed 2013, eval split) with
the rows kept between FER2013's anchors and the synthetic means, and with each part's band made
tall enough to hold both: a layout fitted to the generator alone would sit about two rows too low
on FER2013. The face region is measures.py's face ellipse unchanged, not the synthetic (larger)
face, so that the claims and the rubric's measures share one face. The price shows in the table:
the face's recall on synthetic faces is low because their faces are bigger than FER2013's.
Every inner part is clipped to the face ellipse, and made disjoint from the others (in the order
brows, eyes, nose, mouth: a pixel two shapes share goes to the earlier).

Measured agreement (bench/layout_agreement.py; 2000 synthetic faces, seed 2013, eval split):
per face IoU and recall (the share of the mask's pixels inside the layout region), averaged;
"best fixed" is the IoU of the best region any one fixed shape can reach, the synthetic masks'
own pixel frequency thresholded at its best level (fitted on the same 2000 faces, so an upper
bound): the IoUs are low because the faces move (pose, scale), not because the shapes are simple.

    part    IoU    recall  best fixed  mask px  layout px
    face    0.727  0.744   0.838       1058.7   802
    brows   0.323  0.520   0.342         75.4    92
    eyes    0.391  0.693   0.419         73.7   110
    nose    0.510  0.752   0.518         47.9    60
    mouth   0.343  0.581   0.367         46.0    62

Fitted to the generator alone (eyes at row 21, mouth at 38.5) the IoUs were 0.330 (brows), 0.417
(eyes), 0.516 (nose) and 0.368 (mouth): keeping FER2013's rows costs 0.01 to 0.03 of IoU. The
face's IoU and recall are low by design: measures.py's ellipse, not the larger synthetic face.

Limits: one frame for every face, so a face turned, tilted or scaled away from the registration
(the synthetic faces are rotated by up to 0.22 rad and scaled by +-9%) puts some of its parts
off the layout; forehead, cheeks, chin and hair have no ground truth anywhere and are the
layout's guess only. FER2013's tight crops show the upper forehead above the face ellipse, where
the layout's hair region lies: on real faces "hair" means "above and beside the face", and a map
that lights the top of the forehead counts there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.data.faceset import PART_NAMES

CANONICAL_PARTS: tuple[str, ...] = (
    "background", "face", "brows", "eyes", "nose", "mouth", "forehead", "cheeks", "chin", "hair",
)
"""Parts of the canonical layout; the first six are also PART_NAMES, the labels of part masks."""

MASK_PARTS: tuple[str, ...] = PART_NAMES
"""Parts that part masks label (background, face, brows, eyes, nose, mouth)."""

LAYOUT_ONLY_PARTS: tuple[str, ...] = ("forehead", "cheeks", "chin", "hair")
"""Parts no mask labels: they always come from the canonical layout."""

INNER_PARTS: tuple[str, ...] = ("brows", "eyes", "nose", "mouth")
"""The inner face parts: disjoint from each other in the layout, as in the masks."""

LAYOUT_SOURCE: dict[bool, str] = {True: "on the part masks", False: "on the canonical layout"}
"""How evidence names where a part's region came from, by whether it came from masks."""

# All geometry is in pixels of a 48-pixel face (see the module docstring for the conventions).
SIDE = 48
MIDLINE = 24.0  # the vertical midline, between columns 23 and 24, as in measures.py

# The face: the central face ellipse that grader.scoring.measures also uses (it imports these;
# tests/test_face_layout.py checks the two masks agree).
FACE_CENTRE: tuple[float, float] = (26.5, 24.0)
FACE_SEMI_AXES: tuple[float, float] = (17.0, 15.0)

# Brows: one ellipse per side, "a few rows above the eyes" (measures.py: eyes near row 18, so
# about row 14) and where the synthetic brows lie (row 13.8 on average). Centred above the eyes,
# from above the inner eye corner to past the outer one, leaving the glabella (columns 23 and 24)
# free; 6 rows tall so that raised (AU1+2) and lowered (AU4) brows stay inside. The face ellipse
# clips their outer ends (synthetic brows reach past it, which costs them recall).
BROW_ROW = 14.0
BROW_OFFSET = 6.5
BROW_SEMI_AXES: tuple[float, float] = (3.0, 5.5)  # (rows, columns)

# Eyes: one ellipse per side. FER2013's eyes lie around row 18 (measures.py), the synthetic ones
# at 21.2: the ellipses span rows 16 to 24 (above row 17 they give way to the brows), holding
# both. Pupils 6.5 columns off the midline (the interpupillary distance is about 0.45 of the face
# width, 30 columns on the face ellipse); 9 columns wide, the eye with its lids and corners.
EYE_ROW = 20.0
EYE_OFFSET = 6.5
EYE_SEMI_AXES: tuple[float, float] = (4.0, 4.5)

# Nose: a rectangle on the midline from the bridge between the eyes (where it gives way to them)
# to the nostrils, 2.5 rows above the mouth ellipse's top; 6 columns wide, the nostrils' span.
NOSE_TOP = 22.0
NOSE_BOTTOM = 32.0
NOSE_HALF_WIDTH = 3.0

# Mouth: an ellipse on the midline. FER2013's mouth lies around row 36 (measures.py), the
# synthetic one at 38.5: the ellipse spans rows 34.5 to 40.5, holding both and an open jaw (AU26).
# 14 columns wide, a little more than the interpupillary distance, for smiles and stretched lips.
MOUTH_ROW = 37.5
MOUTH_SEMI_AXES: tuple[float, float] = (3.0, 7.0)

# Forehead, cheeks, chin: the rest of the face ellipse above the brows, beside the nose and the
# mouth from below the eyes, and below the mouth. The temples beside the eyes and the philtrum
# between nose and mouth stay plain face, in no named part.
FOREHEAD_BOTTOM = BROW_ROW - BROW_SEMI_AXES[0]
CHEEK_TOP = EYE_ROW + EYE_SEMI_AXES[0]
CHEEK_BOTTOM = MOUTH_ROW + MOUTH_SEMI_AXES[0]
CHIN_TOP = CHEEK_BOTTOM

# Hair: outside the face ellipse but inside a head ellipse that reaches higher and wider, above
# the eyes (hair beside the cheeks and below is rare in FER2013's tight crops, and ears are there).
HEAD_CENTRE: tuple[float, float] = (24.5, 24.0)
HEAD_SEMI_AXES: tuple[float, float] = (23.0, 20.0)
HAIR_BOTTOM = EYE_ROW


@dataclass(frozen=True)
class PartRegions:
    """Per part name, an (N, 48, 48) bool region; `from_masks` names the parts read off part masks
    (the others are the canonical layout's)."""

    regions: dict[str, np.ndarray]
    from_masks: frozenset[str]

    def source(self, part: str) -> str:
        """'on the part masks' or 'on the canonical layout', for the evidence's wording."""
        return LAYOUT_SOURCE[part in self.from_masks]


@dataclass(frozen=True)
class PartAgreement:
    """How well one canonical region matches the masks: the mean over faces of IoU and of recall
    (the share of the mask's pixels that the region covers), over `faces` faces that have the part."""

    iou: float
    recall: float
    faces: int


def canonical_part_masks(side: int = SIDE) -> dict[str, np.ndarray]:
    """A (side, side) bool mask per name in CANONICAL_PARTS, from the geometry constants above.

    face contains brows, eyes, nose, mouth, forehead, cheeks and chin; those seven are pairwise
    disjoint; hair and background lie outside the face; background is everything not face or hair.
    """
    rows, cols = _pixel_centres(side)
    face = _ellipse(rows, cols, FACE_CENTRE, FACE_SEMI_AXES)
    brows = _pair(rows, cols, BROW_ROW, BROW_OFFSET, BROW_SEMI_AXES) & face
    eyes = _pair(rows, cols, EYE_ROW, EYE_OFFSET, EYE_SEMI_AXES) & face & ~brows
    nose = (rows >= NOSE_TOP) & (rows < NOSE_BOTTOM) & (np.abs(cols - MIDLINE) < NOSE_HALF_WIDTH)
    nose &= face & ~brows & ~eyes
    mouth = _ellipse(rows, cols, (MOUTH_ROW, MIDLINE), MOUTH_SEMI_AXES) & face & ~nose
    plain = face & ~(brows | eyes | nose | mouth)
    forehead = plain & (rows < FOREHEAD_BOTTOM)
    cheeks = plain & (rows >= CHEEK_TOP) & (rows < CHEEK_BOTTOM) & (np.abs(cols - MIDLINE) >= NOSE_HALF_WIDTH)
    chin = plain & (rows >= CHIN_TOP)
    hair = _ellipse(rows, cols, HEAD_CENTRE, HEAD_SEMI_AXES) & ~face & (rows < HAIR_BOTTOM)
    parts = {"background": ~(face | hair), "face": face, "brows": brows, "eyes": eyes, "nose": nose,
             "mouth": mouth, "forehead": forehead, "cheeks": cheeks, "chin": chin, "hair": hair}
    return {name: parts[name] for name in CANONICAL_PARTS}


def part_regions(masks: np.ndarray | None, count: int) -> PartRegions:
    """(count, 48, 48) bool regions per name in CANONICAL_PARTS.

    With part masks ((count, 48, 48) labels as PART_NAMES): background, brows, eyes, nose and mouth
    are their labels, face is every label but background (the face with its parts); hair is the
    layout's hair where the mask says background, forehead, cheeks and chin the layout's where the
    mask says plain face. Without masks, every part is the canonical layout's, the same for every face.
    """
    layout = canonical_part_masks(SIDE)
    if masks is None:
        regions = {name: np.repeat(region[None], count, axis=0) for name, region in layout.items()}
        return PartRegions(regions, frozenset())
    masks = np.asarray(masks)
    if masks.shape != (count, SIDE, SIDE):
        raise ValueError(f"masks must be ({count}, {SIDE}, {SIDE}) part labels, got {masks.shape}")
    label = {name: masks == PART_NAMES.index(name) for name in PART_NAMES}
    regions = {
        "background": label["background"], "face": ~label["background"],
        **{name: label[name] for name in INNER_PARTS},
        **{name: layout[name][None] & label["face"] for name in ("forehead", "cheeks", "chin")},
        "hair": layout["hair"][None] & label["background"],
    }
    return PartRegions({name: regions[name] for name in CANONICAL_PARTS}, frozenset(MASK_PARTS))


def layout_agreement(masks: np.ndarray) -> dict[str, PartAgreement]:
    """Per part in ("face", "brows", "eyes", "nose", "mouth"), how well the canonical layout matches
    (N, 48, 48) part masks: mean IoU and mean recall over the faces whose mask has the part."""
    masks = np.asarray(masks)
    layout = canonical_part_masks(masks.shape[-1])
    truth_of = {"face": masks != PART_NAMES.index("background"),
                **{name: masks == PART_NAMES.index(name) for name in INNER_PARTS}}
    return {name: _agreement(layout[name], truth) for name, truth in truth_of.items()}


def _agreement(region: np.ndarray, truth: np.ndarray) -> PartAgreement:
    truth = truth.reshape(len(truth), -1)
    region = region.reshape(1, -1)
    both = (truth & region).sum(axis=1)
    either = (truth | region).sum(axis=1)
    size = truth.sum(axis=1)
    present = size > 0
    if not present.any():
        return PartAgreement(float("nan"), float("nan"), 0)
    iou = both[present] / either[present]
    recall = both[present] / size[present]
    return PartAgreement(float(iou.mean()), float(recall.mean()), int(present.sum()))


def _pixel_centres(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each pixel's centre, in pixels of a 48-pixel face."""
    rows, cols = (np.mgrid[0:side, 0:side] + 0.5) * (SIDE / side)
    return rows, cols


def _ellipse(rows: np.ndarray, cols: np.ndarray, centre: tuple[float, float],
             semi_axes: tuple[float, float]) -> np.ndarray:
    (row0, col0), (half_rows, half_cols) = centre, semi_axes
    return ((rows - row0) / half_rows) ** 2 + ((cols - col0) / half_cols) ** 2 <= 1.0


def _pair(rows: np.ndarray, cols: np.ndarray, row: float, offset: float,
          semi_axes: tuple[float, float]) -> np.ndarray:
    """Two ellipses mirrored about the midline (left and right brow, left and right eye)."""
    return (_ellipse(rows, cols, (row, MIDLINE - offset), semi_axes)
            | _ellipse(rows, cols, (row, MIDLINE + offset), semi_axes))
