"""The bytes between the grader and a sandbox: length-prefixed frames of a JSON header and .npy arrays.

No pickle crosses the boundary in either direction: arrays are read with allow_pickle=False, and
the header is JSON, so a hostile server can send wrong numbers but never code.
"""

from __future__ import annotations

import functools
import io
import json
import os
import select
import struct
import time
from dataclasses import dataclass, field

import numpy as np

MAX_FRAME_BYTES = 1 << 30  # a response larger than this is refused, not read into memory
_LENGTH = struct.Struct(">Q")


class WireError(Exception):
    """The other side sent something that is not a frame, or closed the channel."""


class ChannelClosed(WireError):
    """The other side closed the channel (it exited, or was killed) before a whole frame came."""


@dataclass
class Message:
    """A request or a response: a JSON-able header and named numpy arrays."""

    header: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def encode(message: Message) -> bytes:
    """The frame of `message` as one bytes object (`write_message` sends its parts without joining)."""
    return b"".join(frame_parts(message))


def frame_parts(message: Message) -> list[bytes | memoryview]:
    """The frame of `message` in parts: its length, the JSON header, and each array's .npy header
    followed by the array's own memory (not copied: a batch of 1000 faces is 9 MB)."""
    blobs = []
    for name, array in message.arrays.items():
        array = np.asarray(array, order="C")  # keeps 0-d arrays 0-d
        if array.dtype.hasobject:
            raise ValueError("object arrays cannot be sent")
        data = memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(b"")
        blobs.append((name, _npy_header(array.dtype, array.shape), data))
    header = dict(message.header, arrays=[[name, len(npy) + len(data)] for name, npy, data in blobs])
    header_bytes = json.dumps(header).encode("utf-8")
    body_length = _LENGTH.size + len(header_bytes) + sum(len(npy) + len(data) for _, npy, data in blobs)
    parts: list[bytes | memoryview] = [_LENGTH.pack(body_length), _LENGTH.pack(len(header_bytes)), header_bytes]
    for _, npy, data in blobs:
        parts += [npy, data]
    return parts


def decode(body: bytes | bytearray | memoryview) -> Message:
    """The message in a frame's body. Its arrays are views of `body`'s memory, not copies."""
    body = memoryview(body)
    try:
        (header_length,) = _LENGTH.unpack_from(body, 0)
        start = _LENGTH.size
        header = json.loads(bytes(body[start:start + header_length]).decode("utf-8"))
        if not isinstance(header, dict):
            raise WireError("malformed message: the header is not an object")
        offset = start + header_length
        arrays = {}
        for name, length in header.pop("arrays"):
            arrays[str(name)] = _read_array(body[offset:offset + int(length)])
            offset += int(length)
    except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError, OverflowError, AttributeError,
            RecursionError) as error:  # RecursionError: a header of thousands of nested [ or {
        raise WireError(f"malformed message: {error}") from None
    return Message(header=header, arrays=arrays)


_NPY_HEADER_MAX = 10_000 + 12  # numpy's own bound on an .npy header, and its magic and length
_NPY_MAGIC = b"\x93NUMPY"

# A grading's requests and answers repeat a few shapes hundreds of times, and numpy reads an .npy
# header with ast.literal_eval (about 0.1 ms a header: a third of a small request's cost beside its
# model's work, issue 20), so both ends keep the headers they have met. The bytes on the wire are
# numpy's own, and a header is still parsed by numpy the first time it is met.
_HEADERS_KEPT = 256


@functools.lru_cache(maxsize=_HEADERS_KEPT)
def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The .npy (version 1.0) header of a C-ordered array of `dtype` and `shape`."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                  "fortran_order": False, "shape": shape})
    return header.getvalue()


def _header_length(blob: memoryview) -> int:
    """The length of the .npy header at the start of `blob` (magic, version, length field and the
    header itself), from its version's length field; ValueError when it is not an .npy header."""
    if bytes(blob[:6]) != _NPY_MAGIC or len(blob) < 12:
        raise ValueError("an array is not in .npy format")
    major = blob[6]
    if major == 1:
        return 10 + int.from_bytes(blob[8:10], "little")
    if major in (2, 3):
        return 12 + int.from_bytes(blob[8:12], "little")
    raise ValueError(f"an .npy header of version {major} is not read here")


@functools.lru_cache(maxsize=_HEADERS_KEPT)
def _parsed_header(header: bytes) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of a whole .npy header, parsed by numpy; never an object dtype."""
    stream = io.BytesIO(header)
    version = np.lib.format.read_magic(stream)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(stream)
    if dtype.hasobject:
        raise ValueError("object arrays are not accepted")
    return shape, fortran_order, dtype


def _read_array(blob: memoryview) -> np.ndarray:
    """An .npy blob as a view of its memory, refused unless its data is exactly what its header
    claims (checked before anything is allocated), and never an object array."""
    length = _header_length(blob)
    if length > min(len(blob), _NPY_HEADER_MAX):
        raise ValueError(f"an .npy header claims {length} bytes, more than the array or numpy's bound")
    shape, fortran_order, dtype = _parsed_header(bytes(blob[:length]))
    count = int(np.prod(shape, dtype=object))
    data = blob[length:]
    if count * dtype.itemsize != len(data):
        raise ValueError(f"an array header claims shape {shape} but the message holds {len(data)} bytes of data")
    if count == 0:
        return np.empty(shape, dtype)
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order="F" if fortran_order else "C")


def write_message(fd: int, message: Message) -> None:
    parts = [memoryview(part).cast("B") for part in frame_parts(message)]
    while parts:
        written = os.writev(fd, parts)
        while parts and written >= len(parts[0]):
            written -= len(parts[0])
            parts.pop(0)
        if parts and written:
            parts[0] = parts[0][written:]


def read_exactly(fd: int, count: int, deadline: float | None = None) -> memoryview:
    """Read `count` bytes into one buffer; with a deadline (time.monotonic()), raise TimeoutError
    once it passes. The buffer's pages are taken as the bytes arrive (np.empty, not a zeroed
    bytearray), so a frame that only declares its length costs no memory."""
    view = memoryview(np.empty(count, dtype=np.uint8))
    filled = 0
    while filled < count:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        got = os.readv(fd, [view[filled:]])
        if not got:
            raise ChannelClosed("the channel closed")
        filled += got
    return view


def read_message(fd: int, deadline: float | None = None) -> Message:
    """Read one frame; blocking, or until `deadline` (time.monotonic()) and then TimeoutError."""
    (length,) = _LENGTH.unpack(read_exactly(fd, _LENGTH.size, deadline))
    if length > MAX_FRAME_BYTES:
        raise WireError(f"a message of {length} bytes is over the limit of {MAX_FRAME_BYTES}")
    return decode(read_exactly(fd, length, deadline))
