"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci & Kasneci, ICML 2022, "A Consistent and
Efficient Evaluation Strategy for Attribution Methods"), beside the gray-fill deletion and insertion
curves of grader.scoring.measures.

Gray fill leaves the shape of the removed pixels in the image (a gray patch in the form of the map's
top pixels): the model may react to the shape, and so the curve measures the mask as much as the
pixels it hides (Rong et al.'s "class information leakage"). ROAD fills each removed pixel from its
neighbours instead, by noisy linear imputation, and removes pixels in two orders: most relevant
first (MoRF: the probability should fall fast) and least relevant first (LeRF: it should stay up).

The summary per image is AUC(LeRF) - AUC(MoRF). Rong et al. show the two curves side by side and
call an attribution good when its MoRF curve falls fast and its LeRF curve stays high; the difference
of the two areas is the one number that asks for both, Blücher, Vielhaben & Strodthoff's symmetric
relevance gain (TMLR 2024, "Decoupling pixel flipping and occlusion strategy for consistent XAI
benchmarks": SRG = AUC(least influential first) - AUC(most influential first)). It lies in -1..1:
positive when the map's order separates what the model uses from what it does not, near 0 for an
order that is no better than chance, negative for an order the wrong way round.

numpy and scipy only (and threadpoolctl, scikit-learn's dependency, to keep LAPACK on one thread),
no torch: the model is asked through ModelProtocol.logits alone.

Cost, measured on the grading machine (2 cores, busy): imputing 3 maps x 7 faces x 2 orders x 15
fractions (630 images, 725,760 removed pixels) takes 0.35 s of one core, about 0.25 s of it in
LAPACK's banded Cholesky itself (dpbsv, one call an image: putting several images in one call would
change the blocked factorization's order of operations, and so the last bits); Quantus 0.6.0's
imputation (a lil_matrix and spsolve per image) takes about 6 ms of one core an image, 3.7 s for the
same 630.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np
from scipy.linalg import lapack
from scipy.ndimage import correlate
from threadpoolctl import ThreadpoolController

from grader.numerics import softmax
from grader.protocol import ModelProtocol
from grader.scoring.measures import curve_auc, pixel_order

ROAD_FRACTIONS: tuple[float, ...] = tuple(k / 16 for k in range(16))
"""The removal fractions of every ROAD curve: 0 (the face itself), then 1/16 of the pixels more a
step (144 of 2304) up to 15/16, the grid of the gray-fill curves (PERTURBATION_STEPS), so that the
two kinds of curve can be read point by point. All pixels removed is left out: with no pixel kept the
imputation has nothing to interpolate from (its linear system is singular)."""
ROAD_NOISE = 0.01 * 255
"""Standard deviation of the Gaussian noise added to each imputed pixel, in gray levels (0..255):
2.55. Rong et al. and their reference code (github.com/tleemann/road_evaluation, also Quantus's
default) add noise of standard deviation 0.01 on pixels scaled to 0..1, that is 1% of the pixel range;
the same share of our 0..255 range. Its purpose is to hide where the pixels were removed (an exactly
linear fill is smoother than any photograph, and its smoothness would trace the mask); 2.55 levels is
about the pixel noise of an 8-bit camera image, far below the contrast of a face's features."""
ROAD_SEED = 0
"""The noise's seed: the same images, maps and fractions give the same curves to the last bit."""
ORDERS = ("morf", "lerf")
SYSTEMS_AT_ONCE = 64
"""How many images' systems noisy_linear_imputation lays out together (the results do not depend on it)."""

WEIGHTS = np.array([[1 / 12, 1 / 6, 1 / 12],
                    [1 / 6, 0.0, 1 / 6],
                    [1 / 12, 1 / 6, 1 / 12]])
"""The 8-neighbourhood of the noisy linear imputation (Rong et al. sec. 4.2), centred on the pixel:
the four direct neighbours weigh 1/6 and the four diagonal ones 1/12 (together 1)."""
DIRECTIONS = ((0, 1), (1, -1), (1, 0), (1, 1))
"""The neighbours that come later in row-major order (right, below left, below, below right), as
(rows, columns) steps: each pair of removed neighbours is one entry above the diagonal, found from
the earlier pixel. Four, so that _band_entries can split a flat index by bit operations."""


def noisy_linear_imputation(images: np.ndarray, removed: np.ndarray, noise: float = ROAD_NOISE,
                            seed: int = ROAD_SEED, draws: np.ndarray | None = None) -> np.ndarray:
    """Each image (S, H, W) with its `removed` pixels (S, H, W) bool filled in (Rong et al. 2022,
    sec. 4.2): float64, the kept pixels unchanged.

    Every removed pixel is the weighted mean of its neighbours inside the image (WEIGHTS, the
    weights renormalized at the border), kept neighbours at their value and removed ones at their
    own imputed value: one sparse linear system per image, built for all images at once. Numbered in
    row-major order, each system is a band matrix (width + 1 wide), and it is symmetric positive
    definite (a removed region never lacks a kept neighbour while one pixel is kept), so LAPACK's
    banded Cholesky (dpbsv) solves it exactly, in about a millisecond for 2000 unknowns.
    Then Gaussian noise of standard deviation `noise` (gray levels) is added to the imputed pixels:
    `noise` times `draws` (S, H, W) standard normal values, by default one field drawn from `seed`;
    the result is clipped to 0..255. An image with every pixel removed is refused: there is nothing
    to impute from.
    """
    images = np.asarray(images, dtype=np.float64)
    removed = np.asarray(removed, dtype=bool)
    if images.ndim != 3 or removed.shape != images.shape:
        raise ValueError(f"images must be (S, H, W) and removed the same shape, got {images.shape} and "
                         f"{removed.shape}")
    if removed.reshape(len(removed), -1).all(axis=1).any():
        raise ValueError("an image with every pixel removed has nothing to impute from")
    n = len(images)
    filled = images.copy()
    if not removed.any():
        return filled
    # The systems of a few images at a time: the vectorized layout's temporaries (several int64 arrays
    # as long as the entries) then stay in the cache instead of costing page faults (6% of the time).
    parts = [slice(start, start + SYSTEMS_AT_ONCE) for start in range(0, n, SYSTEMS_AT_ONCE)]
    solution = np.concatenate([_linear_solution(images[part], removed[part]) for part in parts])
    if noise:
        if draws is None:
            draws = np.random.default_rng(seed).standard_normal(images.shape)
        if np.shape(draws) != images.shape:
            raise ValueError(f"draws must be shaped like the images {images.shape}, got {np.shape(draws)}")
        solution = solution + noise * np.asarray(draws)[removed]
    filled[removed] = np.clip(solution, 0.0, 255.0)
    return filled


def _linear_solution(images: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The imputed values of the removed pixels without noise (S, H, W) -> (removed.sum(),), in the
    order of images[removed]: each image's sparse system in band storage, solved by dpbsv."""
    n, height, width = images.shape
    # The unknowns, numbered image by image and in row-major order within an image: two neighbours
    # are then at most width + 1 unknowns apart, so each image's system is a band matrix.
    starts = np.concatenate([[0], np.cumsum(removed.reshape(n, -1).sum(axis=1))])
    # The diagonal: the weights of a pixel's neighbours inside the image; the right-hand side: the
    # weighted sum of its kept neighbours' values.
    diagonal = np.broadcast_to(correlate(np.ones((height, width)), WEIGHTS, mode="constant"), removed.shape)[removed]
    rhs = correlate(np.where(removed, 0.0, images), WEIGHTS[None], mode="constant")[removed]
    # The band matrices are laid out together (vectorized); only the LAPACK calls go image by image.
    positions, values, at, bands = _band_entries(removed, starts)
    solution = np.empty(starts[-1])
    # One buffer for every image's band matrix: a fresh 0.8 MB array an image costs more in page faults.
    storage = np.empty(int(((bands + 1) * np.diff(starts)).max()))
    with _blas_threads().limit(limits=1, user_api="blas"):  # OpenBLAS's threads make these small solves 30x slower
        for image in np.flatnonzero(np.diff(starts)):
            begin, end, band = starts[image], starts[image + 1], bands[image]
            upper = storage[:(band + 1) * (end - begin)]  # upper band storage, column after column
            upper[:] = 0.0
            upper[band::band + 1] = diagonal[begin:end]
            upper[positions[at[image]:at[image + 1]]] = values[at[image]:at[image + 1]]
            solution[begin:end] = _solve_band(upper.reshape((band + 1, end - begin), order="F"), rhs[begin:end])
    return solution


def _band_entries(removed: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The entries above the diagonal of every image's system, image after image: each pair of removed
    neighbours (to the right, below left, below, below right), the earlier one (row-major) the row r,
    the later one the column c, valued -WEIGHTS of the direction.

    Returns positions (each entry's place in its image's upper band storage, an F-ordered
    (band + 1, unknowns) array flattened: row band + r - c of column c, (c + 1) * band + r), values,
    at (image i's entries are at[i]:at[i + 1]) and bands (each image's half bandwidth, the largest
    c - r; 0 when no two removed pixels touch)."""
    n, height, width = removed.shape
    # pairs[i, y, x, d]: pixel (y, x) of image i and its neighbour in direction d are both removed.
    pairs = np.zeros((n, height, width, len(DIRECTIONS)), dtype=bool)
    for d, (d_row, d_col) in enumerate(DIRECTIONS):
        first = (slice(None), slice(0, height - d_row), slice(max(0, -d_col), width - max(0, d_col)))
        later = (slice(None), slice(d_row, height), slice(max(0, d_col), width + min(0, d_col)))
        pairs[(*first, d)] = removed[first] & removed[later]
    found = np.flatnonzero(pairs)
    pixel, direction = found >> 2, found & 3  # divmod by the 4 directions, without a division
    # An unknown's number within its image: the removed pixels before it, in row-major order.
    variable = (np.cumsum(removed.reshape(n, -1), axis=1) - 1).ravel()
    rows = variable[pixel]
    cols = variable[pixel + np.array([d_row * width + d_col for d_row, d_col in DIRECTIONS])[direction]]
    at = np.concatenate([[0], np.cumsum(pairs.reshape(n, -1).sum(axis=1))])
    bands = np.zeros(n, dtype=np.int64)
    touching = at[1:] > at[:-1]
    if touching.any():  # reduceat over the images with entries: each run of entries is one image's
        bands[touching] = np.maximum.reduceat(cols - rows, at[:-1][touching])
    positions = (cols + 1) * np.repeat(bands, np.diff(at)) + rows
    values = -np.array([WEIGHTS[1 + d_row, 1 + d_col] for d_row, d_col in DIRECTIONS])
    return positions, values[direction], at, bands


def _solve_band(upper: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """The solution of one symmetric positive definite system in upper band storage (an F-ordered
    (band + 1, unknowns) array, overwritten by its Cholesky factor), by LAPACK's banded Cholesky (dpbsv)."""
    _, solution, info = lapack.dpbsv(upper, rhs, lower=0, overwrite_ab=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"the imputation's system is not positive definite (LAPACK dpbsv info {info})")
    return solution


@cache
def _blas_threads() -> ThreadpoolController:
    """A ThreadpoolController of the BLAS libraries (numpy's and scipy's, both loaded by this module's
    imports), made once: `threadpool_limits` looks for them again each time, about 10 ms on a busy machine."""
    return ThreadpoolController()


def removal_counts(fractions: Sequence[float], pixels: int) -> np.ndarray:
    """How many pixels each fraction removes: floor(fraction * pixels), as Quantus's ROAD and the
    reference code count them. Fractions must rise from 0 and stay below 1."""
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or len(fractions) < 2 or fractions[0] < 0 or fractions[-1] >= 1 \
            or (np.diff(fractions) <= 0).any():
        raise ValueError("fractions must be two or more rising values from 0 up to below 1, got "
                         f"{fractions.tolist()}")
    return np.floor(fractions * pixels + 1e-9).astype(np.int64)


def road_curves(model: ModelProtocol, images: np.ndarray, targets: np.ndarray, rankings: Mapping[str, np.ndarray],
                fractions: Sequence[float] = ROAD_FRACTIONS, noise: float = ROAD_NOISE, seed: int = ROAD_SEED,
                batch: int = 512, imputed: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The ROAD curves of every map: "<name>_morf" and "<name>_lerf" -> (N, len(fractions)) float64,
    the softmax probability of `targets[i]` with the first floor(fraction * H*W) pixels of the
    order removed by noisy linear imputation (`noisy_linear_imputation`).

    rankings: name -> (N, H, W), the higher the more relevant (a result's `ranking()`). MoRF removes
    in `pixel_order` (highest first, ties in row-major order); LeRF in exactly the reverse order, so
    that LeRF at fraction f keeps what MoRF removes at 1 - f. Every map and both orders share one noise
    field per image and fraction (common random numbers: two maps differ by their orders alone).
    A fraction of 0 is the face itself, asked once per face for all maps. All other images of all maps
    go to the model together, `batch` per request, imputed one request at a time, so memory stays at
    `batch` images. The curves' points are evenly spaced when the fractions are (ROAD_FRACTIONS), as
    `road_difference` assumes.

    imputed: every map's perturbed faces made ahead by `road_images` with the same fractions, noise
    and seed (the probes make them on a helper thread while the model answers other requests); the
    same numbers as imputing them here, since each face's imputation is its own.
    """
    images = np.asarray(images)
    n, height, width = images.shape
    if targets.shape != (n,) or any(np.shape(r) != images.shape for r in rankings.values()):
        raise ValueError(f"for {n} images of {height}x{width} pixels, targets must be shaped ({n},) and every "
                         f"ranking {images.shape}")
    if batch < 1:
        raise ValueError(f"batch must be 1 or more, got {batch}")
    counts = removal_counts(fractions, height * width)
    steps = np.flatnonzero(counts > 0)
    names = list(rankings)
    if not names:
        return {}
    if imputed is not None and any(np.shape(imputed.get(name)) != (len(ORDERS), len(steps), *images.shape)
                                   for name in names):
        raise ValueError(f"imputed must hold every map's faces shaped {(len(ORDERS), len(steps), *images.shape)}")
    # rank[m, i, p]: when pixel p of image i is removed in map m's MoRF order (only to impute here).
    rank = np.stack([_removal_ranks(rankings[name]) for name in names]) if imputed is None else None
    # One row per perturbed image, (map, order, step, image) in that nesting, after the n faces; a
    # step is its place in `steps`.
    grid = np.stack(np.meshgrid(np.arange(len(names)), np.arange(len(ORDERS)), np.arange(len(steps)), np.arange(n),
                                indexing="ij"), axis=-1).reshape(-1, 4)
    made = None if imputed is None else np.stack([imputed[name] for name in names])
    probabilities = np.empty(n + len(grid))
    for start in range(0, n + len(grid), batch):
        rows = np.arange(start, min(start + batch, n + len(grid)))
        faces, (m, order, step, image) = rows[rows < n], grid[rows[rows >= n] - n].T
        filled = made[m, order, step, image] if made is not None else \
            _impute(images, rank[m, image], order, counts[steps[step]], steps[step], image, noise, seed)
        pixels = np.concatenate([images[faces].astype(np.float32), filled])
        labels = np.concatenate([targets[faces], targets[image]])
        probabilities[rows] = softmax(model.logits(pixels))[np.arange(len(rows)), labels]
    perturbed = probabilities[n:].reshape(len(names), len(ORDERS), len(steps), n)
    curves = {}
    for m, name in enumerate(names):
        for o, order_name in enumerate(ORDERS):
            curve = np.repeat(probabilities[:n, None], len(counts), axis=1)  # the faces, where nothing is removed
            curve[:, steps] = perturbed[m, o].T
            curves[f"{name}_{order_name}"] = curve
    return curves


def road_images(images: np.ndarray, ranking: np.ndarray, fractions: Sequence[float] = ROAD_FRACTIONS,
                noise: float = ROAD_NOISE, seed: int = ROAD_SEED) -> np.ndarray:
    """One map's perturbed faces as `road_curves` asks the model for them: (2, S, N, H, W) float32,
    MoRF then LeRF, for each fraction above 0 (S of them), each face with that share of its pixels
    removed in the ranking's order and imputed. `road_curves(..., imputed=...)` takes them."""
    images = np.asarray(images)
    if np.shape(ranking) != images.shape or images.ndim != 3:
        raise ValueError(f"the ranking must be shaped like the (N, H, W) images {images.shape}, got "
                         f"{np.shape(ranking)}")
    counts = removal_counts(fractions, images.shape[1] * images.shape[2])
    steps = np.flatnonzero(counts > 0)
    order, step, image = np.stack(np.meshgrid(np.arange(len(ORDERS)), np.arange(len(steps)), np.arange(len(images)),
                                              indexing="ij"), axis=-1).reshape(-1, 3).T
    filled = _impute(images, _removal_ranks(ranking)[image], order, counts[steps[step]], steps[step], image, noise,
                     seed)
    return filled.reshape(len(ORDERS), len(steps), *images.shape)


def _removal_ranks(ranking: np.ndarray) -> np.ndarray:
    """(N, H*W): when each pixel of each image is removed in the ranking's MoRF order."""
    return np.argsort(pixel_order(np.asarray(ranking)), axis=1)


def _impute(images: np.ndarray, ranks: np.ndarray, order: np.ndarray, count: np.ndarray, step: np.ndarray,
            image: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """Rows of perturbed faces, float32 (R, H, W): row r is face image[r] with its count[r] first
    (order 0, MoRF) or last (order 1, LeRF) pixels by ranks[r] removed and imputed, with the noise of
    (step[r], image[r])."""
    rows, height, width = len(image), images.shape[1], images.shape[2]
    if not rows:
        return np.zeros((0, height, width), np.float32)
    removed = np.where(order[:, None] == 0, ranks < count[:, None], ranks >= height * width - count[:, None])
    # The noise of one (fraction, face) is drawn from its own seed: the same for every map and both
    # orders, whatever the batch; so each is drawn once a batch (not once for each map and order).
    draws = _noise_fields(seed, step, image, (height, width))
    filled = noisy_linear_imputation(images.astype(np.float64)[image], removed.reshape(-1, height, width), noise=noise,
                                     draws=draws)
    return filled.astype(np.float32)


def _noise_fields(seed: int, steps: np.ndarray, images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(len(steps), *shape) standard normal fields, row k drawn from seed (seed, steps[k], images[k]);
    each distinct (step, image) drawn once and repeated (the same numbers as drawing every row)."""
    distinct, inverse = np.unique(np.stack([steps, images], axis=1), axis=0, return_inverse=True)
    fields = np.stack([np.random.default_rng((seed, int(s), int(i))).standard_normal(shape) for s, i in distinct])
    return fields[inverse.reshape(-1)]


def road_difference(morf: np.ndarray, lerf: np.ndarray) -> np.ndarray:
    """(N,) per image AUC(LeRF) - AUC(MoRF) (the symmetric relevance gain of Blücher et al. 2024),
    each area over the curve's points spread evenly on an x axis from 0 to 1 (`curve_auc`), so the
    difference lies in -1..1."""
    return curve_auc(lerf) - curve_auc(morf)
