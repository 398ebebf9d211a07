"""The one way the explanation methods split work into model requests.

A request keeps its images (and, for a gradient, every activation of the backward pass) in the
model's memory, inside the sandbox's limits, so a method that has more images than one request
should carry sends them as consecutive requests of at most `size` images, in order, the last one
holding the rest. `batches` gives those slices, `in_requests` sends them, and `input_gradients` is
the gradient request of Saliency, SmoothGrad and Integrated Gradients sent that way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np

from grader.protocol import ModelProtocol, Objective

Answer = TypeVar("Answer")


def batches(count: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most `size` items covering 0..count-1, in order; none for count 0."""
    size = check_batch_size(size)
    for start in range(0, count, size):
        yield slice(start, start + size)


def in_requests(ask: Callable[..., Answer], pixels: np.ndarray, *per_image: np.ndarray,
                size: int) -> list[Answer]:
    """`ask(pixels[chunk], *(a[chunk] for a in per_image))` for each chunk of at most `size` images,
    in order: one answer per request (an empty list for no images). The pixels of each request are
    contiguous, as the sandbox's wire sends them."""
    return [ask(np.ascontiguousarray(pixels[chunk]), *(array[chunk] for array in per_image))
            for chunk in batches(len(pixels), size)]


def check_batch_size(batch_size: int) -> int:
    """`batch_size` as an int; ValueError unless it is a positive integer."""
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


GRADIENT_BATCH = 128
"""The most images one `input_gradient` request carries by default. A gradient request keeps every
activation for the backward pass, so it is smaller than the forward-only predict batch."""


def input_gradients(model: ModelProtocol, pixels: np.ndarray, targets: np.ndarray,
                    objective: Callable[[np.ndarray], Objective],
                    batch_size: int = GRADIENT_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Objective values (M,) and input gradients (M, ...) float32 of M images, in requests of at most
    `batch_size`; each request's objective is `objective(targets[chunk])`."""
    answers = in_requests(lambda chunk, classes: model.input_gradient(chunk, objective(classes)), pixels, targets,
                          size=batch_size)
    if not answers:
        return np.zeros(0, np.float32), np.zeros((0, *pixels.shape[1:]), np.float32)
    values = np.concatenate([np.asarray(value, dtype=np.float32).reshape(-1) for value, _ in answers])
    gradients = np.concatenate([np.asarray(gradient, dtype=np.float32) for _, gradient in answers])
    if values.shape != (len(pixels),) or gradients.shape != pixels.shape:
        raise ValueError(f"the model answered {len(pixels)} images with values shaped {values.shape} and "
                         f"gradients shaped {gradients.shape}")
    return values, gradients
