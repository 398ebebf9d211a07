"""What every explanation method takes: raw faces (N, 48, 48) in 0..255 and one class per face.

The one shape and target check of the methods, and the two helpers of models that declare
``channels: 3`` (the gray face repeated on each channel, see grader.protocol): asking for the
gradient of each channel, and taking the maximum of its magnitude over the channels.
"""

from __future__ import annotations

import numpy as np

from grader.classes import IMAGE_SIDE
from grader.explain.results import as_faces
from grader.protocol import ModelProtocol


def check_pixels(pixels: np.ndarray, single: bool = False) -> np.ndarray:
    """Contiguous float32 (N, 48, 48) pixels; with `single`, one (48, 48) face is taken as N = 1."""
    pixels = np.asarray(pixels)
    if single and pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim != 3 or pixels.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"pixels must be shaped (N, {IMAGE_SIDE}, {IMAGE_SIDE}), got {pixels.shape}")
    return np.ascontiguousarray(pixels, dtype=np.float32)


def check_inputs(model: ModelProtocol, pixels: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 (N, 48, 48) pixels and int64 (N,) targets, each a class of the model."""
    pixels = check_pixels(pixels)
    raw = np.asarray(targets)
    if raw.shape != (len(pixels),):
        raise ValueError(f"targets must be shaped ({len(pixels)},), one class per image, got {raw.shape}")
    if raw.size and not (np.issubdtype(raw.dtype, np.integer)
                         or (np.issubdtype(raw.dtype, np.floating) and np.all(np.mod(raw, 1) == 0))):
        raise ValueError(f"targets must be integer class indices, got {raw.dtype}")
    targets = raw.astype(np.int64)
    if targets.size:
        num_classes = model.describe().num_classes
        if targets.min() < 0 or targets.max() >= num_classes:
            raise ValueError(f"targets must be classes 0..{num_classes - 1}, got {sorted(set(targets.tolist()))}")
    return pixels, targets


def as_face(image: np.ndarray) -> np.ndarray:
    """One face as (48, 48) uint8: uint8 stays as it is, other types are rounded and clipped."""
    face = np.asarray(image)
    if face.shape != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"expected one face shaped ({IMAGE_SIDE}, {IMAGE_SIDE}), got {face.shape}")
    return as_faces(face)[0]


def per_channel(model: ModelProtocol, pixels: np.ndarray) -> np.ndarray:
    """(N, C, 48, 48): the gray faces on each of the model's C input channels; (N, 48, 48) for a
    gray model, whose one channel needs no axis."""
    channels = int(model.describe().input.get("channels", 1))
    return pixels if channels == 1 else np.ascontiguousarray(np.repeat(pixels[:, None], channels, axis=1))


def channel_max(gradient: np.ndarray) -> np.ndarray:
    """|gradient|, the maximum over the channel axis when there is one (Simonyan et al. 2014, Sec. 3.1)."""
    magnitude = np.abs(gradient)
    return magnitude.max(axis=1) if magnitude.ndim == 4 else magnitude
