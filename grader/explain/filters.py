"""Q2: filter visualization by gradient ascent in input space (Erhan et al. 2009, "Visualizing
higher-layer features of a deep network"), in the form most courses teach it after Keras' "How
convolutional neural networks see the world": start from a gray noise image and climb the mean
activation of one channel of one layer; the image it climbs to is the channel's preferred pattern.
The layer's outputs ("filter outputs") on one evaluation face go with it in the report.

Everything goes through the model protocol (grader.protocol): every step is ONE `input_gradient`
request carrying every visualized channel as its own image (ChannelMean with channel k for
image k), so a sandboxed model costs one round trip a step, whatever the number of channels.

The gradient-ascent loop (`gradient_ascent`) is shared with the class-model visualization
(grader.explain.classviz).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.classes import IMAGE_SIDE
from grader.protocol import ChannelMean, ModelDescription, ModelProtocol, Objective

GRAY = 128.0
"""Where every ascent starts (plus noise), and where the L2 decay pulls toward: mid-gray, the
raw-pixel stand-in for the zero (mean) image of Simonyan et al."""
PIXEL_MAX = 255.0
GAIN_FLOOR = 1e-6
"""The smallest |initial activation| the gain divides by (see `activation_gain`)."""


# --- the shared ascent ------------------------------------------------------------------------


@dataclass(frozen=True)
class AscentSettings:
    """How `gradient_ascent` climbs. All pixel quantities are in raw pixels (0..255).

    steps: number of gradient steps, one model request each.
    step_size: how far one step moves an image, as the RMS over its pixels: the gradient is
        divided by its own RMS first (per image), so the step does not depend on the model's
        input scaling, nor on how strongly a channel or class responds.
    l2: L2 decay toward gray per step, image <- GRAY + (1 - l2) * (image - GRAY); the proximal
        form of the penalty -lambda * ||I - GRAY||^2 (Simonyan et al. 2014; Yosinski et al. 2015).
        0 turns it off.
    noise: standard deviation of the Gaussian noise added to gray for the start image.
    blur_every, blur_sigma: a Gaussian blur of `blur_sigma` pixels after every `blur_every`-th
        step (0 turns it off); it removes the high-frequency noise a pure ascent amplifies.
    jitter: each step computes the gradient on the image rolled by a random (dy, dx) in
        -jitter..jitter and rolls the gradient back (0 turns it off); patterns must then hold up
        under small shifts, which makes them smoother and less aliased.
    seed: seeds the start noise and the jitter; the same settings give byte-identical images.
    """

    steps: int
    step_size: float
    l2: float = 0.0
    noise: float = 8.0
    blur_every: int = 0
    blur_sigma: float = 0.5
    jitter: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.steps < 0:
            problems.append(f"steps must be >= 0, not {self.steps}")
        if not self.step_size > 0:
            problems.append(f"step_size must be > 0, not {self.step_size}")
        if not 0 <= self.l2 < 1:
            problems.append(f"l2 (decay per step) must be in [0, 1), not {self.l2}")
        if self.noise < 0:
            problems.append(f"noise must be >= 0, not {self.noise}")
        if self.blur_every < 0 or (self.blur_every and not self.blur_sigma > 0):
            problems.append(f"blur needs blur_every >= 0 and blur_sigma > 0, not {self.blur_every}, {self.blur_sigma}")
        if not 0 <= self.jitter < IMAGE_SIDE // 2:
            problems.append(f"jitter must be in 0..{IMAGE_SIDE // 2 - 1} pixels, not {self.jitter}")
        if problems:
            raise ValueError("; ".join(problems))


def start_images(n: int, settings: AscentSettings) -> np.ndarray:
    """(n, 48, 48) float32 copies of ONE gray noise image drawn from `settings.seed`: every channel
    (or class) starts from the same image, so their patterns differ only by what they respond to."""
    rng = np.random.default_rng([settings.seed, 0])
    image = np.clip(GRAY + settings.noise * rng.standard_normal((IMAGE_SIDE, IMAGE_SIDE)), 0, PIXEL_MAX)
    return np.repeat(image.astype(np.float32)[None], n, axis=0)


def gradient_ascent(model: ModelProtocol, start: np.ndarray, objective: Objective,
                    settings: AscentSettings) -> np.ndarray:
    """Climb `objective` (one value per image) from `start` (N, 48, 48) for `settings.steps` steps,
    exactly one `model.input_gradient` request of all N images per step; returns float32 images,
    clipped to 0..255 after every step.

    One step: roll by the jitter, ask for the gradient, roll it back; move each image by
    step_size * gradient / RMS(gradient) (an image whose gradient is exactly zero stays); decay
    toward gray by l2; blur every blur_every steps; clip to 0..255.
    """
    images = np.array(start, dtype=np.float32)
    rng = np.random.default_rng([settings.seed, 1])
    for step in range(settings.steps):
        shift = (0, 0)
        if settings.jitter:
            shift = tuple(int(s) for s in rng.integers(-settings.jitter, settings.jitter + 1, size=2))
        _, gradient = model.input_gradient(np.roll(images, shift, axis=(1, 2)), objective)
        gradient = np.roll(np.asarray(gradient, dtype=np.float64), (-shift[0], -shift[1]), axis=(1, 2))
        if not np.all(np.isfinite(gradient)):
            raise ValueError(f"the model's input gradient is not finite at step {step + 1} of the gradient "
                             "ascent (NaN or inf in its forward or backward pass)")
        rms = np.sqrt(np.mean(gradient**2, axis=(1, 2), keepdims=True))
        scale = np.divide(settings.step_size, rms, out=np.zeros_like(rms), where=rms > 0)
        updated = images.astype(np.float64) + scale * gradient
        if settings.l2:
            updated = GRAY + (1.0 - settings.l2) * (updated - GRAY)
        if settings.blur_every and (step + 1) % settings.blur_every == 0:
            updated = gaussian_blur(updated, settings.blur_sigma)
        images = np.clip(updated, 0, PIXEL_MAX).astype(np.float32)
    return images


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian blur of (N, H, W) images, edges reflected, float64."""
    radius = max(1, int(np.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(np.asarray(images, dtype=np.float64), ((0, 0), (radius, radius), (radius, radius)),
                    mode="reflect")
    height, width = images.shape[1:]
    rows = sum(w * padded[:, radius + o:radius + o + height, :] for o, w in zip(offsets, kernel))
    return sum(w * rows[:, :, radius + o:radius + o + width] for o, w in zip(offsets, kernel))


# --- filter visualization ---------------------------------------------------------------------


@dataclass(frozen=True)
class FilterResult:
    """The arrays of filters.npz (docs/ARCHITECTURE.md).

    layer: the visualized layer's name.
    channels: (K,) int64, the visualized channels (the layer's first K).
    patterns: (K, 48, 48) float32 raw pixels in 0..255, the image the ascent reached per channel.
    activation_gain: (K,) float64, see `activation_gain`.
    image: (48, 48) uint8, the evaluation face whose filter outputs are shown.
    outputs: (K, h, w) float32, the layer's maps of those channels for `image`.
    """

    layer: str
    channels: np.ndarray
    patterns: np.ndarray
    activation_gain: np.ndarray
    image: np.ndarray
    outputs: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """The fields as numpy arrays, ready for np.savez."""
        return {"layer": np.array(self.layer), "channels": self.channels, "patterns": self.patterns,
                "activation_gain": self.activation_gain, "image": self.image, "outputs": self.outputs}


class FilterVisualization:
    """Gradient ascent on every channel (up to `max_channels`) of one layer, in one batch per step.

    model: any ModelProtocol (in-process or sandboxed; a test may wrap one to count requests).
    layer: a module name from describe(); default the first Conv2d. Its output must be channel
        maps (C, h, w).
    max_channels: visualize channels 0..min(C, max_channels)-1; every step sends that many images.

    Defaults, chosen on the course's VGG example (its first conv and deeper layers):
    - gradient steps normalized by their RMS (the Keras recipe): the step is in pixels whatever
      the model's input scaling or the channel's strength, so one setting fits every layer, where
      Adam or a raw-gradient step would need tuning per model. step_size 3 pixels for 64 steps
      lets an image travel up to ~190 pixels RMS, enough to saturate; on the VGG's layers it
      reaches the gains of 96 steps of 2 pixels in two thirds of the requests;
    - a start of gray 128 plus noise of std 8: mid-range, so pixels can move either way;
    - jitter of 1 pixel every step and a Gaussian blur (sigma 0.5) every 4th step: on the VGG's
      features.5 and features.12 they cut the mean difference between neighbouring pixels about
      4.5-fold (the aliased high-frequency texture a pure ascent builds) for about half the gain
      (median 2.2 instead of 3.9, 17.5 instead of 30.7): readable patterns matter more here;
    - no L2 decay (l2=0): the clip to 0..255 already bounds the image;
    - the rectified mean, mean(leaky_relu(a, 0.01)) over the channel's map (negative_slope):
      the mean of a bare Conv2d's (pre-activation) channel is linear in the pixels, about
      sum(kernel) * mean(image) + bias away from the borders, so its ascent only brightens or
      darkens the whole image. Rectified, only the places where the channel fires count, and the
      ascent grows the kernel's pattern there: on the TorchScript example's first conv the
      pattern's contrast (pixel std) rose from 15 to 34 and the median gain from 3.6 to 7.7. The
      small negative slope keeps a gradient for a channel silent everywhere on the start image
      (with a plain ReLU it would never move), so it climbs until it fires. After a ReLU layer
      it changes nothing; negative_slope=1 is the plain mean. A Conv2d followed by BatchNorm is
      still best seen at its ReLU (the VGG example names features.2), because BatchNorm
      re-centres the map before rectification.

    Gain (see `activation_gain`): the objective (the rectified mean) at the final pattern over
    that at the start image, both measured without jitter in one extra request after the ascent.
    """

    def __init__(self, model: ModelProtocol, layer: str | None = None, max_channels: int = 64, steps: int = 64,
                 step_size: float = 3.0, noise: float = 8.0, jitter: int = 1, blur_every: int = 4,
                 blur_sigma: float = 0.5, l2: float = 0.0, negative_slope: float = 0.01, seed: int = 0) -> None:
        if max_channels < 1:
            raise ValueError(f"max_channels must be >= 1, not {max_channels}")
        self.model = model
        self.negative_slope = negative_slope
        self.settings = AscentSettings(steps=steps, step_size=step_size, l2=l2, noise=noise, blur_every=blur_every,
                                       blur_sigma=blur_sigma, jitter=jitter, seed=seed)
        description = model.describe()
        self.layer = resolve_layer(description, layer)
        num_channels = _channel_count(model, description, self.layer)
        self.channels = np.arange(min(num_channels, max_channels), dtype=np.int64)

    def patterns(self) -> tuple[np.ndarray, np.ndarray]:
        """(K, 48, 48) float32 patterns and their (K,) activation gains: `steps` requests of K
        images each, then one request of 2K images measuring the start and the end."""
        k = len(self.channels)
        start = start_images(k, self.settings)
        objective = ChannelMean(self.layer, self.channels, negative_slope=self.negative_slope)
        patterns = gradient_ascent(self.model, start, objective, self.settings)
        both = ChannelMean(self.layer, np.concatenate([self.channels, self.channels]),
                           negative_slope=self.negative_slope)
        values, _ = self.model.input_gradient(np.concatenate([start, patterns]), both)
        values = np.asarray(values, dtype=np.float64)
        return patterns, activation_gain(values[:k], values[k:])

    def visualize(self, image: np.ndarray) -> FilterResult:
        """The patterns and gains, plus the layer's outputs for one evaluation face (48, 48)."""
        face = as_face(image)
        patterns, gain = self.patterns()
        outputs = layer_outputs(self.model, face, self.layer, len(self.channels))
        return FilterResult(layer=self.layer, channels=self.channels.copy(), patterns=patterns,
                            activation_gain=gain, image=face, outputs=outputs)


def activation_gain(initial: np.ndarray, final: np.ndarray) -> np.ndarray:
    """1 + (final - initial) / max(|initial|, GAIN_FLOOR), per channel.

    For a positive start (initial >= GAIN_FLOOR) this is exactly final / initial, the usual ratio.
    Unlike the ratio it stays meaningful when the start is negative or zero (a pre-activation conv
    channel that starts below zero, a ReLU channel that starts silent): it is > 1 exactly when the
    activation rose, 1 when it did not move, and counts the rise in units of the start's magnitude.
    """
    initial = np.asarray(initial, dtype=np.float64)
    final = np.asarray(final, dtype=np.float64)
    return 1.0 + (final - initial) / np.maximum(np.abs(initial), GAIN_FLOOR)


def layer_outputs(model: ModelProtocol, image: np.ndarray, layer: str, max_channels: int) -> np.ndarray:
    """The maps (K, h, w) float32 of `layer`'s first K = min(C, max_channels) channels for one face."""
    maps = np.asarray(model.activations(as_face(image).astype(np.float32)[None], layer))
    if maps.ndim != 4:
        raise ValueError(f"layer '{layer}' outputs shape {maps.shape[1:]}, not channel maps (C, h, w): "
                         "choose a convolutional layer")
    return maps[0, :max_channels].astype(np.float32)


def resolve_layer(description: ModelDescription, layer: str | None) -> str:
    """`layer` checked against the model's layers, or the first Conv2d; ValueError names the choices."""
    names = [info.name for info in description.layers]
    if layer is None:
        if not description.conv_layers:
            raise ValueError("the model has no Conv2d layer to visualize; name one of its layers "
                             f"(visualize.filter_layer): {', '.join(names) or 'none found'}")
        return description.conv_layers[0].name
    if layer not in names:
        raise ValueError(f"the model has no layer '{layer}'; its layers are: {', '.join(names) or 'none found'}")
    return layer


def _channel_count(model: ModelProtocol, description: ModelDescription, layer: str) -> int:
    shape = description.layer(layer).output_shape
    if not shape:  # unknown (a TorchScript layer inside an `if`): ask, and let the model say why it cannot
        shape = np.asarray(model.activations(start_images(1, AscentSettings(steps=0, step_size=1)), layer)).shape[1:]
    if len(shape) != 3:
        raise ValueError(f"layer '{layer}' outputs shape {tuple(shape)}, not channel maps (C, h, w): "
                         "choose a convolutional layer")
    return int(shape[0])


def as_face(image: np.ndarray) -> np.ndarray:
    """One face as (48, 48) uint8: uint8 stays as it is, other types are rounded and clipped."""
    face = np.asarray(image)
    if face.shape != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"expected one face shaped ({IMAGE_SIDE}, {IMAGE_SIDE}), got {face.shape}")
    if face.dtype != np.uint8:
        face = np.clip(np.rint(face), 0, PIXEL_MAX).astype(np.uint8)
    return face
