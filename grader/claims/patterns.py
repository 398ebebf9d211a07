"""What first-layer filter patterns look like, and whether a Q2 filter claim matches them.

Q2 visualizes first-layer filters by gradient ascent (grader.explain.filters): per channel, the
48x48 image the ascent reached (`FilterPatterns.patterns`, raw pixels 0..255). Students describe
them ("the first layer's filters respond to simple lines: horizontal, vertical, diagonal, or
spots"), and grader.claims.extract turns that into a FILTER_PATTERN claim whose subject names
patterns from {"horizontal", "vertical", "diagonal", "lines", "spots", "color",
"several_orientations"}. This module measures each pattern (`measure_patterns`) and checks such a
claim against the measures (`verify_pattern_claim`). numpy and scipy only.

Measures, one per pattern:

- coherence: of the structure tensor J = <grad I grad I^T> averaged over the whole pattern
  (Bigun & Granlund 1987, "Optimal orientation detection of linear symmetry", ICCV; Jähne,
  "Digital Image Processing", chapter "Simple neighborhoods"): (l1 - l2) / (l1 + l2) with
  l1 >= l2 its eigenvalues, Jähne's coherency c_c, NOT squared. 1 for a pure grating, near 0 for an
  isotropic pattern (noise, dots, a plaid). First-layer ascent patterns tile the image with one
  texture, so one tensor for the whole pattern is the pattern's dominant orientation.
  Gradients are Sobel derivatives (as in skimage.feature.structure_tensor), averaged over the
  interior (one pixel in from the border, where the Sobel kernel needs no padding).
- angle: orientation of the stripes / edges, degrees in [0, 180), counter-clockwise from the
  image's horizontal as displayed (row 0 at the top): 0 = horizontal lines (intensity varies from
  row to row), 90 = vertical lines, 45 = lines rising to the right. It is the dominant gradient
  direction plus 90 degrees. NaN when the pattern has no gradient at all; for a pattern that is
  not oriented (low coherence) it is computed but means little: read `orientation` instead.
- orientation: "horizontal" (angle within 22.5 degrees of 0), "vertical" (within 22.5 of 90),
  "diagonal" (otherwise) for an oriented pattern; "none" for every other kind.
- blob: a spot measure, the scale-normalized determinant of the Hessian (Lindeberg 1998,
  "Feature detection with automatic scale selection", IJCV; the DoH of skimage.feature.blob_doh):
  at each scale s in BLOB_SCALES, sqrt of the mean of s^4 * max(det H_s, 0) over the strongest
  BLOB_TOP_SHARE of interior pixels, over the pattern's standard deviation; the largest over the
  scales. det H > 0 only at round extrema, so stripes score ~0 (one curvature is zero) and a
  uniform pattern 0; an isolated dot ~1.2..1.8, a grid of dots ~0.85..1.05, a plaid ~0.73,
  white noise ~0.45..0.53. Averaging the top pixels, not taking the single maximum, keeps one
  extreme noise pixel from counting as a spot while every dot of a dot pattern counts.
- contrast: standard deviation of the pattern over 255 (0 = uniform).
- kind: "flat" when contrast < FLAT_CONTRAST (colour / brightness only), else "oriented" when
  coherence >= ORIENTED_COHERENCE, else "spots" when blob >= BLOB_SPOTS, else "texture"
  (unoriented, not spot-like: noise, irregular texture). A pattern with a non-finite pixel is not
  measured: its numbers are NaN and its kind "invalid".

Known limits: noise smoothed over a pixel or more is a field of random blobs and often scores
as spots (blob 0.6..0.8); plaids of period 3 and checkerboards of period 3..4 pixels are finer
than the smallest blob scale and come out as texture; stripes of period 2 (alternate pixels) have no
Sobel gradient (the central difference cancels) and come out as texture too (the ascent's
1-pixel jitter suppresses such patterns); a single dot of sigma ~1 pixel or less on a uniform
background has a standard deviation below FLAT_CONTRAST and is called flat; one tensor per
pattern gives one orientation, so a pattern holding two regions of different orientations gets
their energy-weighted mix (low coherence).

The thresholds were calibrated on synthetic 48x48 patterns (tests/test_pattern_measures.py makes
the same kinds): sinusoidal gratings (periods 3..12 pixels, any angle, with and without noise),
Gaussian dots (one, or grids of spacing 4..16 and size 0.8..3), plaids and checkerboards
(periods 4..12), white and Gaussian-smoothed noise (40 seeds each), uniform images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from grader.claims.verdicts import CONTRADICTED, NOT_CHECKABLE, SUPPORTED

# ---------------------------------------------------------------- thresholds (calibrated)

# A pattern is oriented when coherence (l1 - l2) / (l1 + l2) >= 0.5, i.e. l1 >= 3 * l2: the
# dominant gradient direction carries at least three times the energy of the one across it.
# Calibration: pure gratings 1.0 at every angle and period 3..12; a grating plus white noise of
# its own standard deviation 0.64..0.66; a grating plus a crossing one of half its amplitude 0.60;
# white noise <= 0.07 over 40 seeds (noise smoothed by a sigma-2 Gaussian <= 0.25); grids of
# dots, single dots, plaids and checkerboards < 0.01.
ORIENTED_COHERENCE = 0.5
# Orientation bins: horizontal within 22.5 degrees of 0, vertical within 22.5 of 90, else
# diagonal (the four directions 0, 45, 90, 135 each get a 45-degree bin). Sobel's angle error is
# at most ~6 degrees for gratings of period >= 3 pixels, so only angles near a bin edge move.
BIN_HALF_WIDTH_DEG = 22.5
# A pattern is spots when it is not oriented and blob >= 0.6. Calibration: grids of Gaussian
# dots (spacing 4..16, sigma 0.8..3) 0.84..1.05, isolated dots (sigma 1.5..5) 1.19..1.82, plaids
# of period 4..12 and checkerboards of period 6..12 0.72..0.74; white noise <= 0.53 over 40 seeds;
# gratings <= 0.31 (and oriented anyway).
BLOB_SPOTS = 0.6
# The scales (Gaussian sigma, pixels) the blob measure tries: dots 1.5..8 pixels across.
BLOB_SCALES = (1.0, math.sqrt(2.0), 2.0, 2.0 * math.sqrt(2.0), 4.0)
# The share of interior pixels whose blob responses are averaged (about 40 of 44x44 pixels).
BLOB_TOP_SHARE = 0.02
# A pattern is flat (brightness / colour only) when its standard deviation is below 2% of the
# pixel range, ~5 gray levels: below the 8-level noise the ascent starts from
# (grader.explain.ascent), so a pattern the ascent left as it started is not called flat, and a
# uniform image (0) or one with a faint 2-level ripple (~0.006) is.
FLAT_CONTRAST = 0.02

# ---------------------------------------------------------------- claim rules (named)

# A named kind ("horizontal", "vertical", "diagonal", "spots", "color") is present when at least
# this share of the patterns (and at least one) has it. Students list the kinds they saw ("simple
# lines: horizontal, vertical, diagonal, or spots"): each named kind need only be a visible
# minority, one pattern in sixteen (one in a figure of 8 or 16, three of 48), not a single stray
# pattern in a large grid. (One in eight was tried first: on the lightning_ckpt example, 5 clearly
# vertical patterns of 48 left "horizontal and vertical lines" unsettled, though a reader of the
# grid sees them.)
PRESENT_SHARE = 1 / 16
# "lines" ("the filters detect edges") speaks of the filters in general: supported when at least
# a quarter of the patterns are oriented (any bin).
LINES_SHARE = 1 / 4
# "several_orientations" is supported when at least this many bins are present (as above).
SEVERAL_BINS = 2

ORIENTATIONS = ("horizontal", "vertical", "diagonal")
KINDS = ("oriented", "spots", "flat", "texture")
INVALID = "invalid"
PATTERN_NAMES = frozenset({*ORIENTATIONS, "lines", "spots", "color", "several_orientations"})


_BORDER = 1  # pixels left out of every average: the Sobel / Hessian responses there need padding


@dataclass(frozen=True)
class PatternMeasures:
    """The measures of K patterns, one entry per pattern (see the module docstring).

    coherence, angle, blob, contrast: (K,) float64; orientation, kind: (K,) str arrays.
    """

    coherence: np.ndarray
    angle: np.ndarray
    orientation: np.ndarray
    blob: np.ndarray
    contrast: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)


@dataclass(frozen=True)
class PatternVerdict:
    """Whether a filter-pattern claim matches the patterns.

    verdict: "supported" | "contradicted" | "not checkable".
    values: the counts a reader needs ({"patterns": K, "oriented": n, "horizontal": n, ...,
        "needed": the count a kind needs to be present, "oriented_share": x}).
    measure: what was measured, in words.
    """

    verdict: str
    values: dict[str, float]
    measure: str


# ---------------------------------------------------------------- measuring


def measure_patterns(patterns: np.ndarray) -> PatternMeasures:
    """Measure (K, H, W) patterns (raw pixels; any offset and scale): coherence, angle, blob,
    contrast and kind per pattern, as the module docstring defines them."""
    patterns = np.asarray(patterns, dtype=np.float64)
    if patterns.ndim != 3 or min(patterns.shape[1:], default=0) < 2 * _BORDER + 3:
        raise ValueError(f"patterns must be (K, H, W) with H, W >= {2 * _BORDER + 3}, not {patterns.shape}")
    rows = [_measure_one(pattern) for pattern in patterns]
    numbers = np.array([row[:4] for row in rows], dtype=np.float64).reshape(-1, 4)
    coherence, angle, blob, contrast = (np.ascontiguousarray(column) for column in numbers.T)
    kinds = [row[4] for row in rows]
    orientations = [orientation_bin(a) if k == "oriented" else "none" for a, k in zip(angle, kinds)]
    kind = np.array(kinds, dtype=object).astype(str).reshape(-1)
    orientation = np.array(orientations, dtype=object).astype(str).reshape(-1)
    return PatternMeasures(coherence=coherence, angle=angle, orientation=orientation, blob=blob,
                           contrast=contrast, kind=kind)


def _measure_one(pattern: np.ndarray) -> tuple[float, float, float, float, str]:
    """(coherence, angle, blob, contrast, kind) of one pattern."""
    if not np.all(np.isfinite(pattern)):
        return math.nan, math.nan, math.nan, math.nan, INVALID
    contrast = float(pattern.std()) / 255.0
    coherence, angle = structure_orientation(pattern)
    blob = blob_strength(pattern)
    return coherence, angle, blob, contrast, classify(coherence, blob, contrast)


def structure_tensor(pattern: np.ndarray) -> tuple[float, float, float]:
    """(Jxx, Jxy, Jyy): the structure tensor <g g^T> of a 2-D pattern averaged over its interior,
    x to the right (columns), y UP (against the rows), Sobel gradients (Bigun & Granlund 1987)."""
    image = np.asarray(pattern, dtype=np.float64)
    inner = (slice(_BORDER, -_BORDER), slice(_BORDER, -_BORDER))
    gx = ndimage.sobel(image, axis=1, mode="reflect")[inner]
    gy = -ndimage.sobel(image, axis=0, mode="reflect")[inner]
    return float(np.mean(gx * gx)), float(np.mean(gx * gy)), float(np.mean(gy * gy))


def structure_orientation(pattern: np.ndarray) -> tuple[float, float]:
    """(coherence, stripe angle in degrees) of one pattern; (0, NaN) when it has no gradient.

    coherence = (l1 - l2) / (l1 + l2) = sqrt((Jxx - Jyy)^2 + 4 Jxy^2) / (Jxx + Jyy) (Jähne's
    coherency); the dominant gradient direction is 0.5 * atan2(2 Jxy, Jxx - Jyy) and the stripes
    run across it, so angle = that + 90 degrees, in [0, 180)."""
    jxx, jxy, jyy = structure_tensor(pattern)
    energy = jxx + jyy
    if not energy > 1e-12:
        return 0.0, math.nan
    coherence = min(1.0, math.hypot(jxx - jyy, 2.0 * jxy) / energy)
    gradient_deg = 0.5 * math.degrees(math.atan2(2.0 * jxy, jxx - jyy))
    return coherence, (gradient_deg + 90.0) % 180.0


def orientation_bin(angle: float) -> str:
    """"horizontal" (within BIN_HALF_WIDTH_DEG of 0 or 180), "vertical" (of 90), else "diagonal";
    "none" for NaN."""
    if not math.isfinite(angle):
        return "none"
    angle %= 180.0
    if min(angle, 180.0 - angle) < BIN_HALF_WIDTH_DEG:
        return "horizontal"
    if abs(angle - 90.0) < BIN_HALF_WIDTH_DEG:
        return "vertical"
    return "diagonal"


def blob_strength(pattern: np.ndarray) -> float:
    """The scale-normalized determinant-of-Hessian spot measure (Lindeberg 1998): over the scales
    BLOB_SCALES, the largest sqrt(mean of the top BLOB_TOP_SHARE of s^4 max(det H_s, 0)) over
    the pattern's standard deviation. 0 for a uniform pattern."""
    image = np.asarray(pattern, dtype=np.float64)
    spread = float(image.std())
    if not spread > 1e-9:
        return 0.0
    centred = (image - image.mean()) / spread
    return max(_top_blob_response(centred, scale) for scale in BLOB_SCALES)


def _top_blob_response(image: np.ndarray, scale: float) -> float:
    """sqrt of the mean of the strongest BLOB_TOP_SHARE of scale^4 max(det H, 0) at one scale."""
    def derivative(order: tuple[int, int]) -> np.ndarray:
        return ndimage.gaussian_filter(image, scale, order=order, mode="reflect")

    hrr, hcc, hrc = derivative((2, 0)), derivative((0, 2)), derivative((1, 1))
    det = np.maximum(hrr * hcc - hrc * hrc, 0.0) * scale**4
    inner = det[_BORDER + 1:-_BORDER - 1, _BORDER + 1:-_BORDER - 1].ravel()
    top = max(1, round(BLOB_TOP_SHARE * inner.size))
    return float(np.sqrt(np.partition(inner, -top)[-top:].mean()))


def classify(coherence: float, blob: float, contrast: float) -> str:
    """The kind of one pattern from its measures: flat, oriented, spots or texture (in that order
    of precedence, thresholds FLAT_CONTRAST, ORIENTED_COHERENCE, BLOB_SPOTS)."""
    if contrast < FLAT_CONTRAST:
        return "flat"
    if coherence >= ORIENTED_COHERENCE:
        return "oriented"
    if blob >= BLOB_SPOTS:
        return "spots"
    return "texture"


# ---------------------------------------------------------------- checking a claim


def verify_pattern_claim(subject: tuple[str, ...], negated: tuple[str, ...],
                         measures: PatternMeasures) -> PatternVerdict:
    """Check a FILTER_PATTERN claim (grader.claims.extract) against measured patterns.

    Each named part is judged on its own (`_part_verdict`): a kind is supported when present in
    at least max(1, ceil(PRESENT_SHARE * K)) patterns ("lines": LINES_SHARE of them oriented;
    "several_orientations": SEVERAL_BINS orientation bins present), contradicted when no pattern
    has it ("color": no flat and no texture pattern; "several_orientations": fewer than two bins
    with any pattern), else not checkable. A negated part is the reverse: supported when its kind
    is absent, contradicted when it is present. The claim: contradicted when any part is,
    supported when every part is, else not checkable; also not checkable with no parts, no
    patterns, or a pattern that could not be measured (non-finite pixels).
    """
    unknown = sorted((set(subject) | set(negated)) - PATTERN_NAMES)
    if unknown:
        raise ValueError(f"unknown pattern names {unknown}; known: {sorted(PATTERN_NAMES)}")
    counts = _counts(measures)
    measure = _measure_text(counts)
    if counts["patterns"] == 0 or counts[INVALID] > 0 or not (subject or negated):
        return PatternVerdict(NOT_CHECKABLE, _values(counts), measure)
    verdicts = [_part_verdict(name, counts) for name in subject]
    verdicts += [_negation(_part_verdict(name, counts)) for name in negated]
    if CONTRADICTED in verdicts:
        verdict = CONTRADICTED
    elif all(v == SUPPORTED for v in verdicts):
        verdict = SUPPORTED
    else:
        verdict = NOT_CHECKABLE
    return PatternVerdict(verdict, _values(counts), measure)


def _counts(measures: PatternMeasures) -> dict[str, int]:
    """How many patterns of each kind and orientation bin (and in all, and the count needed)."""
    kinds = list(measures.kind)
    orientations = list(measures.orientation)
    counts = {"patterns": len(kinds), INVALID: kinds.count(INVALID)}
    counts.update({kind: kinds.count(kind) for kind in KINDS})
    counts.update({name: orientations.count(name) for name in ORIENTATIONS})
    counts["needed"] = _needed(len(kinds), PRESENT_SHARE)
    counts["lines_needed"] = _needed(len(kinds), LINES_SHARE)
    return counts


def _needed(total: int, share: float) -> int:
    """At least `share` of `total` patterns, and at least one."""
    return max(1, math.ceil(share * total - 1e-9))


def _part_verdict(name: str, counts: dict[str, int]) -> str:
    """The verdict on one named pattern kind (rules in verify_pattern_claim's docstring)."""
    if name == "lines":
        return _presence(counts["oriented"], counts["lines_needed"])
    if name == "several_orientations":
        present = sum(counts[o] >= counts["needed"] for o in ORIENTATIONS)
        seen = sum(counts[o] > 0 for o in ORIENTATIONS)
        if present >= SEVERAL_BINS:
            return SUPPORTED
        return CONTRADICTED if seen < SEVERAL_BINS else NOT_CHECKABLE
    if name == "color":
        if counts["flat"] >= counts["needed"]:
            return SUPPORTED
        # texture (unoriented, not spots) may be what a student calls "texture" / "brightness"
        return CONTRADICTED if counts["flat"] + counts["texture"] == 0 else NOT_CHECKABLE
    return _presence(counts[name], counts["needed"])


def _presence(count: int, needed: int) -> str:
    """Supported at `needed` patterns or more, contradicted at none, else not checkable."""
    if count >= needed:
        return SUPPORTED
    return CONTRADICTED if count == 0 else NOT_CHECKABLE


def _negation(verdict: str) -> str:
    """The verdict on "not X" from the verdict on X."""
    return {SUPPORTED: CONTRADICTED, CONTRADICTED: SUPPORTED}.get(verdict, NOT_CHECKABLE)


def _values(counts: dict[str, int]) -> dict[str, float]:
    """The counts as the verdict's values, with the share of oriented patterns."""
    values = {key: float(value) for key, value in counts.items()}
    total = counts["patterns"]
    values["oriented_share"] = counts["oriented"] / total if total else math.nan
    return values


def _measure_text(counts: dict[str, int]) -> str:
    """What was measured, for a reader of the verdict."""
    return (f"{counts['patterns']} first-layer ascent patterns: structure-tensor coherence >= "
            f"{ORIENTED_COHERENCE} is oriented (horizontal / vertical within {BIN_HALF_WIDTH_DEG} "
            f"degrees, else diagonal), scale-normalized determinant-of-Hessian blob >= {BLOB_SPOTS} "
            f"is spots, contrast (std / 255) < {FLAT_CONTRAST} is flat; a kind is present in >= "
            f"{counts['needed']} patterns, lines in >= {counts['lines_needed']}")
