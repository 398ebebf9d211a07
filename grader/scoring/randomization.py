"""The model parameter randomization test and its repairs, over the model protocol (numpy only).

- The cascade (Adebayo et al. 2018, "Sanity checks for saliency maps", NeurIPS, Sec. 3.1 and Fig. 2,
  cascading randomization): the layers are re-initialized from the output down, one more at each
  stage, and the rank correlation of |map| with the model's own |map| is taken at every stage. A map
  that explains the model should lose its likeness as the weights it depends on are destroyed.
- sMPRT and eMPRT (Hedström et al. 2024, "Sanity Checks Revisited: An Exploration to Repair the Model
  Parameter Randomisation Test", TMLR), which answer two shortcomings of the full-model test that
  Binder et al. (CVPR 2023, "Shortcomings of top-down randomization-based sanity checks for
  evaluations of deep neural network explanations") found: gradient noise makes any two maps unlike
  (a noisy method looks good), and the test rewards uninformative maps.
  sMPRT denoises each explanation by averaging it over noisy copies of the input before the rank
  correlation (low is good); eMPRT asks instead that the explanation's complexity, the discrete
  entropy of its histogram, rises when the model is fully randomized (high is good): a map that
  ignores the weights (an edge detector) keeps its complexity, and so does a noise map that was
  already as complex as can be.

The defaults follow Quantus 0.6.0 (quantus/metrics/randomisation/smooth_mprt.py and
efficient_mprt.py), the authors' implementation; tests/test_randomization.py checks the numbers
against it. The cascade's cost is bounded by CASCADE_MAX_STAGES.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from grader.protocol import ModelDescription, ModelProtocol
from grader.scoring.measurements import Cascade
from grader.scoring.measures import rank_correlation

Explain = Callable[[ModelProtocol, np.ndarray, np.ndarray], np.ndarray]
"""explain(model, pixels (N, 48, 48), labels (N,)) -> maps (N, 48, 48): the method under test."""

CASCADE_MAX_STAGES = 8
"""At most this many cascade stages, evenly spaced over the parametrized layers, the last always
every layer. Each stage is one copy of the model and one explanation of the faces: a 16-layer
VGG would otherwise cost 16 copies for a curve that 8 points draw as well. The first stage always
re-initializes the output layer alone. Measured on submissions/vgg (14 parametrized layers, so 8
stages: 1, 3, 5, 7, 8, 10, 12, 14) at one torch thread in process: 1.0 to 1.6 s for the 7 faces on
the shared 2-core machine; the 17-layer residual example (stages 1, 3, 6, 8, 10, 12, 15, 17) 1.6 s."""
SMOOTH_SAMPLES = 16
"""sMPRT's noisy copies per explanation; the last copy is the input itself, as in Quantus. Quantus's
default `nr_samples` is 50 (the paper's ImageNet setting), and its docs ask to adjust it to the use
case: here sMPRT is reported, not scored (the rubric's sanity criterion is eMPRT), and 50 copies made
it the dearest probe, 2 x 50 x 7 gradients, 4 to 6.5 s on submissions/vgg and the residual example at
one thread. 16 copies cost a third of that, with a little more noise left in each map."""
SMOOTH_NOISE = 0.1
"""sMPRT's noise standard deviation as a share of each image's own pixel range, max - min (Quantus
`noise_magnitude`). On the raw 0..255 pixels this is the same share of the model's input range,
whatever its (affine) normalization."""
COMPLEXITY_BINS = 100
"""eMPRT's histogram bins (Quantus's `n_bins_default`, used when no binning rule is given), equal
width over each map's own min..max."""


class NormalSource(Protocol):
    """np.random.Generator, or np.random.RandomState (whose draws Quantus uses)."""

    def standard_normal(self, size: tuple[int, ...]) -> np.ndarray: ...


# --- the cascade (Adebayo et al. 2018) --------------------------------------------------------


def cascade_stages(description: ModelDescription, most: int = CASCADE_MAX_STAGES) -> tuple[int, ...]:
    """The numbers of top layers to re-initialize, one a stage: every count 1..L when the model has
    L <= `most` parametrized layers, else `most` counts evenly spaced over 1..L (rounded), always
    1 and L. No parametrized layer: no stage."""
    if most < 1:
        raise ValueError(f"a cascade needs at least one stage, got most={most}")
    count = len(description.parametrized_layers)
    if count == 0:
        return ()
    # linspace's step is at least 1 when most <= count, so the rounded counts are distinct.
    return tuple(int(k) for k in np.rint(np.linspace(1, count, min(count, most))))


def cascade(model: ModelProtocol, images: np.ndarray, labels: np.ndarray, maps: np.ndarray, explain: Explain,
            seed: int, question: str, most: int = CASCADE_MAX_STAGES) -> Cascade:
    """Cascading randomization: `explain` on `model.randomized(seed, top_layers=k)` for each k of
    `cascade_stages`, and per stage and image the Spearman rank correlation of |map| with |`maps`|
    (the model's own, same method and faces). The same seed at every stage gives the layers
    re-initialized at stage k the same weights at every later stage, so stage k + 1 is stage k with
    one more layer (or a few, when stages are spaced) destroyed, as in Adebayo et al.'s cascade."""
    description = model.describe()
    stages = cascade_stages(description, most)
    top_down = description.parametrized_layers[::-1]
    images = np.asarray(images, dtype=np.float32)
    stage_maps = np.zeros((len(stages), *images.shape), np.float32)
    for stage, top_layers in enumerate(stages):
        with model.randomized(seed=seed, top_layers=top_layers) as random_model:
            stage_maps[stage] = explain(random_model, images, labels)
    correlation = np.stack([rank_correlation(np.abs(maps), np.abs(stage)) for stage in stage_maps]) if stages \
        else np.zeros((0, len(images)))
    return Cascade(question=question, randomized_layers=np.asarray(stages, dtype=np.int64),
                   lowest_layer=tuple(top_down[k - 1].name for k in stages), maps=stage_maps,
                   correlation=correlation)


# --- sMPRT (Hedström et al. 2024) ------------------------------------------------------------


def smoothed_maps(model: ModelProtocol, images: np.ndarray, labels: np.ndarray, explain: Explain,
                  noise_source: NormalSource, samples: int = SMOOTH_SAMPLES,
                  noise: float = SMOOTH_NOISE) -> np.ndarray:
    """sMPRT's denoised explanation (Hedström et al. 2024, Sec. 4.1; Quantus SmoothMPRT's
    `explain_smooth_batch`): the mean of `explain` over `samples` copies of each image, copy s < samples - 1
    with Gaussian noise eps_s * noise * (max - min of the image), eps_s = noise_source.standard_normal
    ((N, 48, 48)) drawn in that order, and the last copy without noise; then, as Quantus, divided by
    the square root of the batch's mean square (Binder et al.'s normalization, one scale for the
    whole batch) and made absolute. (N, 48, 48) float64.

    All the copies go to `explain` as one batch (samples x N faces), copy-major."""
    if int(samples) != samples or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    images = np.asarray(images, dtype=np.float32)
    sigma = noise * (images.max(axis=(1, 2)) - images.min(axis=(1, 2)))
    eps = np.zeros((samples, *images.shape))
    for sample in range(samples - 1):
        eps[sample] = noise_source.standard_normal(images.shape)
    noisy = (images[None] + eps * sigma[None, :, None, None]).astype(np.float32)
    maps = explain(model, noisy.reshape(-1, *images.shape[1:]), np.tile(labels, samples))
    # Summed as Quantus sums it: each copy's map divided by the number of copies.
    smooth = (np.asarray(maps, dtype=np.float64).reshape(samples, *images.shape) / samples).sum(axis=0)
    return np.abs(second_moment_normalized(smooth))


def second_moment_normalized(maps: np.ndarray) -> np.ndarray:
    """`maps` over the square root of their mean square over every axis (Quantus's
    normalise_by_average_second_moment_estimate with its default axes; Binder et al. 2023): a scale,
    so rank correlations do not change. All zeros stay zeros."""
    maps = np.asarray(maps, dtype=np.float64)
    scale = np.sqrt(np.mean(maps ** 2))
    return maps / scale if scale > 0 else maps


def smprt(original: np.ndarray, randomized: np.ndarray) -> np.ndarray:
    """Per image the Spearman rank correlation of the denoised maps of the model and of its fully
    randomized copy (`smoothed_maps` of each): (N,), low is good."""
    return rank_correlation(np.abs(original), np.abs(randomized))


# --- eMPRT (Hedström et al. 2024) ------------------------------------------------------------


def discrete_entropy(maps: np.ndarray, bins: int = COMPLEXITY_BINS) -> np.ndarray:
    """Per map the Shannon entropy (nats) of its histogram in `bins` equal bins over its own range
    (Quantus's complexity_func.discrete_entropy: np.histogram, then scipy.stats.entropy of the
    counts): (N,) float64. A constant map fills one bin: 0. A map with a non-finite value: NaN."""
    entropies = np.full(len(maps), np.nan)
    for index, values in enumerate(np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)):
        if np.isfinite(values).all():
            counts, _ = np.histogram(values, bins=bins)
            p = counts[counts > 0] / counts.sum()
            entropies[index] = float(-(p * np.log(p)).sum())
    return entropies


def emprt(original: np.ndarray, randomized: np.ndarray, bins: int = COMPLEXITY_BINS) -> np.ndarray:
    """Per image the relative rise in complexity from the model's map to its fully randomized
    copy's, (H(randomized) - H(original)) / H(original) with H the `discrete_entropy` (Hedström et
    al. 2024, Sec. 4.2; Quantus EfficientMPRT's score, with its defaults: no abs, no normalization, the
    maps as the method gives them, 100 bins): (N,), high is good, 0 when randomizing the model
    changes nothing.

    Quantus already scores each image on its own (its bin count is one number for the batch only when
    a binning rule is asked for; the default is a fixed 100), and so does this. A constant original
    map has no complexity to rise from: it scores 0, as an uninformative map should."""
    before, after = discrete_entropy(original, bins), discrete_entropy(randomized, bins)
    rise = np.divide(after - before, before, out=np.zeros_like(before), where=before > 0)
    rise[~np.isfinite(before) | ~np.isfinite(after)] = np.nan
    return rise

