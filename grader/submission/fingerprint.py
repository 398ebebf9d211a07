"""Computing a weights fingerprint from tensors: the torch half of grader.fingerprint.

Only for tensors already in memory: inside the sandbox, where the student's model is loaded
(InProcessModel.weights_fingerprint), and in tests on trusted models. The trusted grader never
reads a student's weights file to call this (see grader.fingerprint for why).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable, Mapping

import numpy as np
import torch

from grader.fingerprint import MAX_WEIGHT_ELEMENTS, SAMPLE_SIZE, ShapeGroup, WeightsFingerprint, make_fingerprint


def weights_fingerprint(state: Mapping[str, torch.Tensor] | Iterable[torch.Tensor]) -> WeightsFingerprint:
    """The name-independent fingerprint of a state dict (or of its tensors), see WeightsFingerprint.

    Every floating-point tensor is kept, parameters and buffers alike (a copy copies BatchNorm's
    running statistics too); integer entries such as BatchNorm's num_batches_tracked are not, and
    neither is anything that is not a tensor. Raises ValueError for more than MAX_WEIGHT_ELEMENTS
    values (counted before any is copied).
    """
    values = state.values() if isinstance(state, Mapping) else state
    tensors = [t for t in values if isinstance(t, torch.Tensor) and t.is_floating_point()]
    total = sum(t.numel() for t in tensors)
    if total > MAX_WEIGHT_ELEMENTS:
        raise ValueError(f"{total:,} weight values, more than the {MAX_WEIGHT_ELEMENTS:,} compared")
    grouped: dict[tuple[int, ...], list[tuple[int, np.ndarray, float]]] = {}
    for tensor in tensors:
        flat = tensor.detach().to("cpu", torch.float64).contiguous().reshape(-1).numpy()
        digest = hashlib.blake2b(flat.tobytes(), digest_size=16).digest()
        unit, constant = _unit_sample(flat)
        grouped.setdefault(tuple(int(s) for s in tensor.shape), []).append(
            (int.from_bytes(digest[:8], "little", signed=True), unit, constant))
    return make_fingerprint(
        ShapeGroup(shape=shape, size=math.prod(shape),
                   units=np.stack([unit for _, unit, _ in entries]),
                   constants=np.array([constant for _, _, constant in entries], dtype=np.float64),
                   digests=np.array([digest for digest, _, _ in entries], dtype=np.int64))
        for shape, entries in grouped.items())


def _unit_sample(values: np.ndarray) -> tuple[np.ndarray, float]:
    """The sampled values centered to unit norm, or zeros and the value for a constant tensor.

    NaN and infinities count as 0, and the sample is divided by its largest magnitude before it is
    centered (a correlation does not depend on scale), so that values near float64's limits give a
    finite unit row instead of one the trusted side would refuse."""
    sample = values if values.size <= SAMPLE_SIZE else values[_sample_positions(values.size)]
    sample = np.nan_to_num(sample, nan=0.0, posinf=0.0, neginf=0.0)
    scale = float(np.abs(sample).max()) if sample.size else 0.0
    scaled = sample / scale if scale > 0 else sample
    centered = scaled - scaled.mean() if sample.size else scaled
    norm = float(np.linalg.norm(centered))
    if sample.size < 2 or norm <= 1e-12:
        width = min(values.size, SAMPLE_SIZE)
        return np.zeros(width, dtype=np.float32), float(sample[0]) if sample.size else 0.0
    return (centered / norm).astype(np.float32), math.nan


@functools.lru_cache(maxsize=256)
def _sample_positions(size: int) -> np.ndarray:
    positions = np.random.default_rng([20131, size]).choice(size, SAMPLE_SIZE, replace=False)
    positions.sort()
    return positions
