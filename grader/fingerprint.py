"""The weights fingerprint: the records, their wire/.npz form, and their validation. numpy only.

The similarity report compares models by a fingerprint of their weights (grader.similarity). The
fingerprint is computed where the weights are already loaded, inside the sandbox
(`ModelProtocol.weights_fingerprint`; the torch part is grader.submission.fingerprint), because
reading a weights file is parsing an untrusted binary: a TorchScript file runs its own code while
it loads, a DEFLATE-compressed tensor can inflate a thousandfold. The trusted side only receives
arrays, and treats them as it treats everything a submission sends: `fingerprint_from_arrays`
checks every dtype, shape, count and bound before anything is built from them, and the summary
values (total, digest) are recomputed here rather than believed.

What the checks cannot give is honesty: the sandbox runs the student's code, which can report a
fingerprint other than its weights' (an overridden state_dict, a patched torch). A submission can
thus hide its own copying from the weights signal, as it could by changing its source, but cannot
change another submission's evidence, and a valid fingerprint cannot exceed the bounds above.

This module imports no torch, so the trusted side (the client, the similarity report) and the
sandbox server share one definition of the records and of their encoding.
"""

from __future__ import annotations

import functools
import hashlib
import math
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.atomic import atomic_write_npz

SAMPLE_SIZE = 4096
"""Values of a tensor that enter its correlation: all of them up to this, else this many at fixed
pseudo-random positions that depend only on the tensor's size (so two tensors of one shape are
sampled at the same positions). The correlation of a copy is estimated within about
(1 - r^2) / sqrt(4096), that of two independent tensors within about 1/64."""

MAX_WEIGHT_ELEMENTS = 32_000_000
"""A state dict with more values than this (about three ResNet-18s) gives no weights evidence."""

MAX_TENSORS = 20_000
"""Tensors in one fingerprint (ResNet-152 has about 900): bounds the rows a server may send,
which MAX_WEIGHT_ELEMENTS alone does not (a tensor with no values costs a row and nothing else)."""

MAX_DIMS = 16
"""Dimensions of one tensor's shape."""

UNIT_NORM_SLACK = 1e-3
"""A unit row's norm may exceed 1 by this much (float32 rounding); more would let one submission
correlate above 1 with every other and so look like a copy of all of them."""

FINGERPRINT_FILE = "weights_fingerprint.npz"
"""Its name in a student's output folder, under arrays/."""

MAX_NPZ_BYTES = 8 * MAX_WEIGHT_ELEMENTS + 64 * MAX_TENSORS + (1 << 20)
"""The most a valid fingerprint .npz holds uncompressed; a larger archive is refused unread."""

ARRAY_NAMES = ("total", "shape_ranks", "shape_dims", "counts", "units", "constants", "digests")
"""The arrays of the flat form, on the wire and in the .npz (see `fingerprint_arrays`)."""


class FingerprintError(ValueError):
    """Arrays that are not a well-formed fingerprint; the message says which check failed."""


@dataclass(frozen=True, eq=False)
class ShapeGroup:
    """The tensors of one shape in one state dict.

    units: (k, m) float32 with m = min(size, SAMPLE_SIZE), each row a tensor's sampled values
        centered and scaled to unit norm (a row of zeros for a constant tensor), so that the
        Pearson correlation of two tensors is the dot product of their rows.
    constants: (k,) float64, the value of each constant tensor, NaN for the others.
    digests: (k,) int64, the first 8 bytes of a BLAKE2 hash of each tensor's float64 values.
    Rows are sorted by digest.
    """

    shape: tuple[int, ...]
    size: int
    units: np.ndarray
    constants: np.ndarray
    digests: np.ndarray

    @property
    def count(self) -> int:
        return int(self.units.shape[0])

    @functools.cached_property
    def has_constants(self) -> bool:
        return bool((~np.isnan(self.constants)).any())


@dataclass(frozen=True, eq=False)
class WeightsFingerprint:
    """What `grader.similarity.weights_similarity` needs of a state dict, independent of its names.

    groups: the floating-point tensors grouped by shape, sorted by shape; BatchNorm's integer
        `num_batches_tracked` counters (and any other non-float entry) are left out.
    total: the number of values in all of them.
    digest: a hash of the sorted multiset of (shape, tensor digest): equal digests are identical
        weights (up to a 64-bit hash per tensor). Built by `make_fingerprint`, which derives total
        and digest from the groups, so that neither can disagree with them.
    """

    groups: tuple[ShapeGroup, ...]
    total: int
    digest: str

    @functools.cached_property
    def by_shape(self) -> dict[tuple[int, ...], ShapeGroup]:
        return {group.shape: group for group in self.groups}

    @functools.cached_property
    def largest_first(self) -> tuple[ShapeGroup, ...]:
        return tuple(sorted(self.groups, key=lambda group: -group.size * group.count))

    def same_as(self, other: WeightsFingerprint) -> bool:
        """Every array equal (NaN constants compare equal): for tests and for checking a round trip."""
        return (self.total == other.total and self.digest == other.digest
                and len(self.groups) == len(other.groups)
                and all(_same_group(a, b) for a, b in zip(self.groups, other.groups)))


def _same_group(a: ShapeGroup, b: ShapeGroup) -> bool:
    return (a.shape == b.shape and a.size == b.size and a.units.dtype == b.units.dtype
            and np.array_equal(a.units, b.units) and np.array_equal(a.constants, b.constants, equal_nan=True)
            and np.array_equal(a.digests, b.digests))


def make_fingerprint(groups: Iterable[ShapeGroup]) -> WeightsFingerprint:
    """The fingerprint of these groups in canonical order (groups by shape, rows by digest), with
    total and digest computed from them. Both sides build through here: the sandbox from tensors,
    the trusted side from validated arrays, so the same groups give an equal fingerprint."""
    ordered = tuple(_rows_by_digest(group) for group in sorted(groups, key=lambda group: group.shape))
    overall = hashlib.blake2b(digest_size=16)
    for group in ordered:
        overall.update(repr(group.shape).encode())
        overall.update(np.ascontiguousarray(group.digests, dtype="<i8").tobytes())
    total = sum(group.size * group.count for group in ordered)
    return WeightsFingerprint(groups=ordered, total=total, digest=overall.hexdigest())


def _rows_by_digest(group: ShapeGroup) -> ShapeGroup:
    order = np.argsort(group.digests, kind="stable")
    if np.array_equal(order, np.arange(len(order))):
        return group
    return ShapeGroup(shape=group.shape, size=group.size, units=group.units[order],
                      constants=group.constants[order], digests=group.digests[order])


# --- the flat form: wire and .npz -------------------------------------------------------------


def fingerprint_arrays(fingerprint: WeightsFingerprint) -> dict[str, np.ndarray]:
    """The fingerprint as seven flat arrays (ARRAY_NAMES), the same on the wire and in the .npz:
    total () int64; shape_ranks (G,) int64, each group's number of dimensions; shape_dims
    (sum of ranks,) int64, the shapes one after another; counts (G,) int64, tensors per group;
    units (sum of k*m,) float32, each group's (k, m) rows flattened one group after another;
    constants (R,) float64 and digests (R,) int64, one entry a tensor, R = sum of counts."""
    groups = fingerprint.groups
    return {
        "total": np.array(fingerprint.total, dtype=np.int64),
        "shape_ranks": np.array([len(g.shape) for g in groups], dtype=np.int64),
        "shape_dims": np.array([d for g in groups for d in g.shape], dtype=np.int64),
        "counts": np.array([g.count for g in groups], dtype=np.int64),
        "units": _concatenate([g.units.reshape(-1) for g in groups], np.float32),
        "constants": _concatenate([g.constants for g in groups], np.float64),
        "digests": _concatenate([g.digests for g in groups], np.int64),
    }


def _concatenate(parts: Sequence[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


_DTYPES = {"total": np.int64, "shape_ranks": np.int64, "shape_dims": np.int64, "counts": np.int64,
           "units": np.float32, "constants": np.float64, "digests": np.int64}


def fingerprint_from_arrays(arrays: Mapping[str, np.ndarray]) -> WeightsFingerprint:
    """The fingerprint the flat arrays describe, after checking them as untrusted input: exactly the
    dtypes of `fingerprint_arrays` (native byte order), flat arrays whose lengths agree with the
    shapes and counts, shapes of non-negative ints with at most MAX_DIMS dimensions and no shape
    twice, at most MAX_TENSORS tensors, a total that equals the sum of their sizes and is at most
    MAX_WEIGHT_ELEMENTS, finite unit rows of norm at most 1 (plus rounding), constants that are
    finite or NaN. Raises FingerprintError naming the first check that fails."""
    flat = _checked_arrays(arrays)
    ranks, counts = flat["shape_ranks"], flat["counts"]
    shapes = _shapes(ranks, flat["shape_dims"])
    if len(shapes) != len(counts):
        raise FingerprintError(f"{len(shapes)} shapes but {len(counts)} tensor counts")
    if counts.size and int(counts.min()) < 1:
        raise FingerprintError("a shape group holds no tensor")
    rows = int(counts.sum()) if counts.size else 0
    if rows > MAX_TENSORS:
        raise FingerprintError(f"{rows:,} tensors, more than the {MAX_TENSORS:,} accepted")
    sizes = [math.prod(shape) for shape in shapes]
    total = sum(size * int(count) for size, count in zip(sizes, counts))
    if total > MAX_WEIGHT_ELEMENTS:
        raise FingerprintError(f"{total:,} weight values, more than the {MAX_WEIGHT_ELEMENTS:,} compared")
    if int(flat["total"]) != total:
        raise FingerprintError(f"total {int(flat['total']):,} but the shapes and counts add up to {total:,}")
    widths = [min(size, SAMPLE_SIZE) for size in sizes]
    _check_lengths(flat, rows, sum(w * int(c) for w, c in zip(widths, counts)))
    _check_values(flat["units"], flat["constants"])
    groups = []
    unit_start, row_start = 0, 0
    for shape, size, width, count in zip(shapes, sizes, widths, (int(c) for c in counts)):
        units = flat["units"][unit_start:unit_start + count * width].reshape(count, width)
        _check_unit_norms(units, shape)
        groups.append(ShapeGroup(shape=shape, size=size, units=units,
                                 constants=flat["constants"][row_start:row_start + count],
                                 digests=flat["digests"][row_start:row_start + count]))
        unit_start += count * width
        row_start += count
    return make_fingerprint(groups)


def _checked_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The seven arrays, each an ndarray of exactly its dtype and rank (total 0-d, the rest 1-d)."""
    missing = [name for name in ARRAY_NAMES if name not in arrays]
    if missing:
        raise FingerprintError(f"no {', '.join(missing)} array")
    checked = {}
    for name in ARRAY_NAMES:
        array = arrays[name]
        if not isinstance(array, np.ndarray):
            raise FingerprintError(f"'{name}' is not an array but {type(array).__name__}")
        if array.dtype != np.dtype(_DTYPES[name]):
            raise FingerprintError(f"'{name}' is {array.dtype}, expected {np.dtype(_DTYPES[name])}")
        rank = 0 if name == "total" else 1
        if array.ndim != rank:
            raise FingerprintError(f"'{name}' has shape {array.shape}, expected {rank} dimension(s)")
        checked[name] = array
    return checked


def _shapes(ranks: np.ndarray, dims: np.ndarray) -> list[tuple[int, ...]]:
    """The groups' shape tuples: ranks within 0..MAX_DIMS, dimensions non-negative and each at
    most MAX_WEIGHT_ELEMENTS (so sizes stay small Python ints), no shape twice."""
    if ranks.size > MAX_TENSORS:
        raise FingerprintError(f"{ranks.size:,} shape groups, more than the {MAX_TENSORS:,} accepted")
    if ranks.size and (int(ranks.min()) < 0 or int(ranks.max()) > MAX_DIMS):
        raise FingerprintError(f"a shape with a rank outside 0..{MAX_DIMS}")
    if int(ranks.sum()) != dims.size:
        raise FingerprintError(f"the shapes' ranks add up to {int(ranks.sum())} but {dims.size} dimensions came")
    if dims.size and (int(dims.min()) < 0 or int(dims.max()) > MAX_WEIGHT_ELEMENTS):
        raise FingerprintError(f"a shape dimension outside 0..{MAX_WEIGHT_ELEMENTS:,}")
    shapes, start = [], 0
    for rank in ranks.tolist():
        shapes.append(tuple(dims[start:start + rank].tolist()))
        start += rank
    if len(set(shapes)) != len(shapes):
        raise FingerprintError("a shape appears in two groups")
    return shapes


def _check_lengths(flat: dict[str, np.ndarray], rows: int, unit_values: int) -> None:
    for name, expected in (("constants", rows), ("digests", rows), ("units", unit_values)):
        if flat[name].size != expected:
            raise FingerprintError(f"'{name}' has {flat[name].size:,} values, the shapes and counts need {expected:,}")


def _check_values(units: np.ndarray, constants: np.ndarray) -> None:
    if not np.isfinite(units).all():
        raise FingerprintError("the unit rows hold NaN or infinite values")
    if np.isinf(constants).any():
        raise FingerprintError("a constant is infinite")


def _check_unit_norms(units: np.ndarray, shape: tuple[int, ...]) -> None:
    if units.size and float(np.einsum("ij,ij->i", units, units, dtype=np.float64).max()) > (1 + UNIT_NORM_SLACK) ** 2:
        raise FingerprintError(f"a unit row of shape {shape} has a norm above 1")


# --- the .npz in the student's output folder -------------------------------------------------


def write_fingerprint(path: str | Path, fingerprint: WeightsFingerprint) -> None:
    """Write the fingerprint to `path` (arrays/FINGERPRINT_FILE in the student's output folder) in
    one step (`grader.atomic.atomic_write_npz`), so the similarity report can read it after the
    batch without opening the student's weights file again."""
    atomic_write_npz(path, **fingerprint_arrays(fingerprint))


def read_fingerprint(path: str | Path) -> WeightsFingerprint:
    """The fingerprint `write_fingerprint` wrote, read with allow_pickle=False and validated as the
    wire's (`fingerprint_from_arrays`); an archive larger than MAX_NPZ_BYTES unpacked is refused
    before anything is inflated. Raises FingerprintError for a file that is missing, not an .npz,
    or not a valid fingerprint."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
        if unpacked > MAX_NPZ_BYTES:
            raise FingerprintError(f"{path.name} unpacks to {unpacked:,} bytes, more than a fingerprint holds")
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in ARRAY_NAMES if name in archive.files}
    except FingerprintError:
        raise
    except FileNotFoundError:
        raise FingerprintError(f"no {path.name}") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise FingerprintError(f"{path.name} cannot be read: {error}") from None
    return fingerprint_from_arrays(arrays)
