"""Measures of explanation maps: small pure numpy functions that the rubric's metrics call.

Maps are stacks (N, H, W), one per image; every measure returns one value per image unless it
says otherwise. Only `perturbation_curves` asks the model anything, through `ModelProtocol`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from grader.claims.layout import FACE_CENTRE, FACE_SEMI_AXES
from grader.data.faceset import PART_NAMES
from grader.numerics import softmax
from grader.protocol import ModelProtocol

# The central face ellipse, in pixels of a 48-pixel face measured from the image's top-left
# corner (pixel (r, c) is centred at (r + 0.5, c + 0.5)): centred on pixel row 26, exactly
# between columns 23 and 24 so that it is mirror-symmetric, 17 rows high and 15 columns wide.
FACE_ELLIPSE_CENTRE: tuple[float, float] = FACE_CENTRE
FACE_ELLIPSE_SEMI_AXES: tuple[float, float] = FACE_SEMI_AXES
# (Defined once, in grader.claims.layout, whose canonical face is this ellipse.)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of each pair of maps, flattened, with average ranks for ties:
    (N,) float64 in [-1, 1].

    The model parameter randomization test of Adebayo et al. 2018 ("Sanity checks for saliency
    maps") compares maps this way; pass |map| for their absolute-value comparison. A constant map
    gives 0.0: it ranks no pixel above another, so it can neither agree nor disagree.
    """
    if a.shape != b.shape:
        raise ValueError(f"the two stacks of maps differ in shape: {a.shape} and {b.shape}")
    ranks_a, ranks_b = (_average_ranks(m.reshape(len(m), -1)) for m in (a, b))
    return np.clip((_unit_rows(ranks_a) * _unit_rows(ranks_b)).sum(axis=1), -1.0, 1.0)


def parts_region(masks: np.ndarray) -> np.ndarray:
    """(N, 48, 48) bool: True on the inner face parts (brows, eyes, nose, mouth) of part masks."""
    return masks >= PART_NAMES.index("brows")


def face_ellipse(side: int = 48) -> np.ndarray:
    """(side, side) bool: a fixed central ellipse that holds a FER2013 face's inner features, for
    real faces that come without part masks.

    FER2013 faces are registered and centred (Goodfellow et al. 2013): the eyes lie around row 18
    and the mouth around row 36 of 48, the brows a few rows above the eyes. The ellipse (see
    FACE_ELLIPSE_CENTRE and FACE_ELLIPSE_SEMI_AXES) spans rows 10 to 42 and columns 9 to 38,
    brows to chin with a margin for pose, and covers 802 of 2304 pixels (35%). Other sides scale it.
    """
    rows, cols = (np.mgrid[0:side, 0:side] + 0.5) * (48 / side)
    (row0, col0), (half_rows, half_cols) = FACE_ELLIPSE_CENTRE, FACE_ELLIPSE_SEMI_AXES
    return ((rows - row0) / half_rows) ** 2 + ((cols - col0) / half_cols) ** 2 <= 1.0


def mass_share(maps: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Per image the share of the map's absolute mass inside `region` (H, W) or (N, H, W):
    (N,) float64 in [0, 1]; an all-zero map has no mass to place and gives 0.0."""
    mass = np.abs(maps.astype(np.float64))
    inside = (mass * np.broadcast_to(region, maps.shape)).sum(axis=(1, 2))
    total = mass.sum(axis=(1, 2))
    return np.divide(inside, total, out=np.zeros_like(total), where=total > 0)


def pointing_game(maps: np.ndarray, region: np.ndarray, tolerance: int = 2) -> np.ndarray:
    """Per image, whether the map's strongest pixel (largest |map|, the first in row-major order
    on ties) lies within `tolerance` pixels (Chebyshev distance) of `region`: (N,) bool.

    The pointing game of Zhang et al. 2016/2018 ("Top-down neural attention by excitation
    backprop") counts a hit within 15 pixels of the object, on images 224 pixels a side at the
    network's input, about 7% of the side; 2 pixels on a 48-pixel face is 4%, a little stricter,
    because a face's parts lie close together and a wider margin would cover most of the face.
    An all-zero map points nowhere: a miss.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be 0 or more pixels, got {tolerance}")
    region = np.broadcast_to(region, maps.shape)
    magnitude = np.abs(maps).reshape(len(maps), -1)
    rows, cols = np.unravel_index(magnitude.argmax(axis=1), maps.shape[1:])
    hits = np.zeros(len(maps), dtype=bool)
    for i, (row, col) in enumerate(zip(rows, cols)):
        window = region[i, max(0, row - tolerance):row + tolerance + 1, max(0, col - tolerance):col + tolerance + 1]
        hits[i] = magnitude[i].max() > 0 and window.any()
    return hits


def pixel_order(maps: np.ndarray) -> np.ndarray:
    """(N, H*W) int64: per image the flat pixel indices from the highest signed map value to the
    lowest; ties keep row-major order (a stable sort), so the order is reproducible."""
    # float64 first: negating an unsigned map would wrap around instead of reversing the order.
    return np.argsort(-maps.reshape(len(maps), -1).astype(np.float64), axis=1, kind="stable").astype(np.int64)


def random_pixel_order(n: int, seed: int, side: int = 48) -> np.ndarray:
    """(n, side*side) int64: an independent random permutation of the pixels per image, the same
    for the same seed (the random baseline the deletion and insertion curves are compared with)."""
    rng = np.random.default_rng(seed)
    return rng.permuted(np.tile(np.arange(side * side, dtype=np.int64), (n, 1)), axis=1)


def perturbation_curves(model: ModelProtocol, images: np.ndarray, targets: np.ndarray, order: np.ndarray,
                        mode: Literal["deletion", "insertion"], steps: int = 16, baseline: float = 128.0,
                        batch: int = 512) -> np.ndarray:
    """The deletion or insertion curve of each image (Petsiuk et al. 2018, "RISE: Randomized input
    sampling for explanation of black-box models"): (N, steps + 1) float64, the softmax probability
    of `targets[i]` after each step, step 0 included.

    Deletion starts from the image and sets the pixels to `baseline` (mid-gray) in `order`;
    insertion starts from an all-`baseline` image and puts the image's pixels back in `order`.
    Step k has changed round(k * H*W / steps) pixels, so any number of steps works. All perturbed
    images go to the model together, `batch` per request: one request carries a whole batch.
    """
    n, height, width = images.shape
    if targets.shape != (n,) or order.shape != (n, height * width):
        raise ValueError(f"for {n} images of {height}x{width} pixels, targets must be shaped ({n},) and order "
                         f"({n}, {height * width}); got {targets.shape} and {order.shape}")
    if not (np.sort(order, axis=1) == np.arange(height * width)).all():
        raise ValueError(f"each row of order must be a permutation of the {height * width} pixel indices")
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', not {mode!r}")
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be 1 or more, got steps={steps} and batch={batch}")
    counts = np.rint(np.linspace(0, height * width, steps + 1)).astype(np.int64)
    rank = np.argsort(order, axis=1)  # rank[i, p]: when pixel p of image i is changed
    flat = images.reshape(n, -1).astype(np.float32)
    curves = np.empty(n * (steps + 1))
    # Built one request at a time, so memory stays at `batch` images however many there are.
    for start in range(0, len(curves), batch):
        image, step = np.divmod(np.arange(start, min(start + batch, len(curves))), steps + 1)
        changed = rank[image] < counts[step, None]
        if mode == "insertion":
            changed = ~changed
        pixels = np.where(changed, np.float32(baseline), flat[image]).reshape(-1, height, width)
        curves[start:start + len(image)] = softmax(model.logits(pixels))[np.arange(len(image)), targets[image]]
    return curves.reshape(n, steps + 1)


def curve_auc(curves: np.ndarray) -> np.ndarray:
    """(N,) the area under each curve over x from 0 to 1 (trapezoid rule), as RISE reports it."""
    dx = 1.0 / max(curves.shape[1] - 1, 1)
    # np.trapezoid written out: it is numpy 2 only, and the project still supports numpy 1.26.
    return ((curves[:, 1:] + curves[:, :-1]) / 2).sum(axis=1) * dx


def pattern_diversity(patterns: np.ndarray) -> float:
    """The mean over all pairs i < j of 1 - |Pearson correlation| of the flattened patterns (K, H, W):
    0 when every pattern repeats (or negates) the others, near 1 for independent noise.

    Used on Q2's filter visualizations: a negated pattern counts as the same feature, and a constant
    pattern shows no feature at all, so its |correlation| with anything counts as 1. K < 2 gives 0.0.
    """
    if len(patterns) < 2:
        return 0.0
    return float(np.mean(pairwise_diversity(patterns)[np.triu_indices(len(patterns), k=1)]))


def pairwise_diversity(patterns: np.ndarray) -> np.ndarray:
    """(K, K): 1 - |Pearson correlation| of each pair of flattened patterns (K, H, W), 0 on the
    diagonal and for any pair with a constant pattern (see pattern_diversity)."""
    rows = patterns.reshape(len(patterns), -1).astype(np.float64)
    similarity = np.clip(np.abs(_unit_rows(rows) @ _unit_rows(rows).T), 0.0, 1.0)
    constant = _is_constant(rows)
    similarity[constant | constant[:, None]] = 1.0
    np.fill_diagonal(similarity, 1.0)
    return 1.0 - similarity


def is_informative(array: np.ndarray) -> bool:
    """True when the array holds something to look at: non-empty, all finite, and not constant."""
    array = np.asarray(array)
    return bool(array.size > 0 and np.isfinite(array).all() and array.max() > array.min())


def _is_constant(rows: np.ndarray) -> np.ndarray:
    # Compared exactly: a mean subtracted from a constant row can leave rounding noise behind.
    return rows.max(axis=1) == rows.min(axis=1)


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    """Each row centred and scaled to unit length, so that dot products are Pearson correlations;
    constant rows become all zeros."""
    centred = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    return np.divide(centred, norms, out=np.zeros_like(centred), where=~_is_constant(rows)[:, None])


def _average_ranks(rows: np.ndarray) -> np.ndarray:
    """Ranks 1..P within each row of (N, P), tied values sharing their mean rank
    (scipy.stats.rankdata's 'average', vectorized over rows)."""
    n, p = rows.shape
    order = np.argsort(rows, axis=1, kind="stable")
    ordered = np.take_along_axis(rows, order, axis=1)
    starts = np.ones((n, p), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    # A run of ties never crosses rows, since every row starts a new run.
    first = np.flatnonzero(starts)
    lengths = np.diff(np.append(first, n * p))
    mean_rank = first % p + (lengths + 1) / 2
    ranks = np.empty((n, p))
    np.put_along_axis(ranks, order, np.repeat(mean_rank, lengths).reshape(n, p), axis=1)
    return ranks
