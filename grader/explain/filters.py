"""Q2: filter visualization by gradient ascent in input space (Erhan et al. 2009, "Visualizing
higher-layer features of a deep network"), in the form most courses teach it after Keras' "How
convolutional neural networks see the world": start from a gray noise image and climb the mean
activation of one channel of one layer; the image it climbs to is the channel's preferred pattern.
The layer's outputs ("filter outputs") on one evaluation face go with it in the report.

Everything goes through the model protocol (grader.protocol): every step is ONE `input_gradient`
request carrying every visualized channel as its own image (ChannelMean with channel k for
image k), so a sandboxed model costs one round trip a step, whatever the number of channels.

The gradient-ascent loop (`gradient_ascent`) is shared with the class-model visualization
(grader.explain.class_model); it lives in grader.explain.ascent.
"""

from __future__ import annotations

import numpy as np

from grader.explain.ascent import AscentSettings, gradient_ascent, start_images
from grader.explain.base import Visualization
from grader.explain.pixels import as_face
from grader.explain.results import FilterPatterns
from grader.protocol import ChannelMean, ModelDescription, ModelProtocol

GAIN_FLOOR = 1e-6
"""The smallest |initial activation| the gain divides by (see `activation_gain`)."""


class FilterVisualization(Visualization):
    """Gradient ascent on every channel (up to `max_channels`) of one layer, in one batch per step.

    model: any ModelProtocol (in-process or sandboxed; a test may wrap one to count requests).
    layer: a module name from describe(); default the first Conv2d. Its output must be channel
        maps (C, h, w). It is checked, and its channels counted, when the patterns are computed.
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

    name = "filters"

    def __init__(self, model: ModelProtocol, layer: str | None = None, max_channels: int = 64, steps: int = 64,
                 step_size: float = 3.0, noise: float = 8.0, jitter: int = 1, blur_every: int = 4,
                 blur_sigma: float = 0.5, l2: float = 0.0, negative_slope: float = 0.01, seed: int = 0) -> None:
        super().__init__(model)
        if max_channels < 1:
            raise ValueError(f"max_channels must be >= 1, not {max_channels}")
        self.layer = layer
        self.max_channels = max_channels
        self.negative_slope = negative_slope
        self.settings = AscentSettings(steps=steps, step_size=step_size, l2=l2, noise=noise, blur_every=blur_every,
                                       blur_sigma=blur_sigma, jitter=jitter, seed=seed)

    def visualize(self, image: np.ndarray) -> FilterPatterns:
        """The patterns and gains, plus the layer's outputs for one evaluation face (48, 48)."""
        face = as_face(image)
        layer, channels = self._layer_and_channels()
        patterns, gain = self._climb(layer, channels)
        outputs = layer_outputs(self.model, face, layer, len(channels))
        return FilterPatterns(layer=layer, channels=channels, patterns=patterns, activation_gain=gain, image=face,
                              outputs=outputs)

    def patterns(self) -> tuple[np.ndarray, np.ndarray]:
        """(K, 48, 48) float32 patterns and their (K,) activation gains, without the layer's outputs."""
        return self._climb(*self._layer_and_channels())

    def _layer_and_channels(self) -> tuple[str, np.ndarray]:
        """The layer (checked, or the first Conv2d) and its channels 0..K-1, K = min(C, max_channels)."""
        description = self.model.describe()
        layer = resolve_layer(description, self.layer)
        num_channels = _channel_count(self.model, description, layer)
        return layer, np.arange(min(num_channels, self.max_channels), dtype=np.int64)

    def _climb(self, layer: str, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`steps` requests of K images each, then one request of 2K images measuring the start and
        the end: the patterns and their gains."""
        k = len(channels)
        start = start_images(k, self.settings)
        objective = ChannelMean(layer, channels, negative_slope=self.negative_slope)
        patterns = gradient_ascent(self.model, start, objective, self.settings)
        both = ChannelMean(layer, np.concatenate([channels, channels]), negative_slope=self.negative_slope)
        values, _ = self.model.input_gradient(np.concatenate([start, patterns]), both)
        values = np.asarray(values, dtype=np.float64)
        return patterns, activation_gain(values[:k], values[k:])


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
