"""The bytes between the grader and a sandbox: length-prefixed frames of a JSON header and .npy arrays.

No pickle crosses the boundary in either direction: arrays are read with allow_pickle=False, and
the header is JSON, so a hostile server can send wrong numbers but never code.
"""

from __future__ import annotations

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


@dataclass
class Message:
    """A request or a response: a JSON-able header and named numpy arrays."""

    header: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def encode(message: Message) -> bytes:
    blobs = []
    for name, array in message.arrays.items():
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.asarray(array, order="C"), allow_pickle=False)  # keeps 0-d arrays 0-d
        blobs.append((name, buffer.getvalue()))
    header = dict(message.header, arrays=[[name, len(blob)] for name, blob in blobs])
    header_bytes = json.dumps(header).encode("utf-8")
    body = b"".join([_LENGTH.pack(len(header_bytes)), header_bytes, *(blob for _, blob in blobs)])
    return _LENGTH.pack(len(body)) + body


def decode(body: bytes) -> Message:
    try:
        (header_length,) = _LENGTH.unpack_from(body, 0)
        start = _LENGTH.size
        header = json.loads(body[start:start + header_length].decode("utf-8"))
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


def _read_array(blob: bytes) -> np.ndarray:
    """An .npy blob, refused before any allocation when its header claims more data than it holds."""
    stream = io.BytesIO(blob)
    version = np.lib.format.read_magic(stream)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _fortran_order, dtype = read_header(stream)
    if dtype.hasobject:
        raise ValueError("object arrays are not accepted")
    if int(np.prod(shape, dtype=object)) * dtype.itemsize > len(blob):
        raise ValueError(f"an array header claims shape {shape} but the message is only {len(blob)} bytes")
    stream.seek(0)
    return np.lib.format.read_array(stream, allow_pickle=False)


def write_message(fd: int, message: Message) -> None:
    data = memoryview(encode(message))
    while data:
        written = os.write(fd, data)
        data = data[written:]


def read_exactly(fd: int, count: int, deadline: float | None = None) -> bytes:
    """Read `count` bytes; with a deadline (time.monotonic()), raise TimeoutError once it passes."""
    chunks = bytearray()
    while len(chunks) < count:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(count - len(chunks), 1 << 20))
        if not chunk:
            raise WireError("the channel closed")
        chunks += chunk
    return bytes(chunks)


def read_message(fd: int, deadline: float | None = None) -> Message:
    """Read one frame; blocking, or until `deadline` (time.monotonic()) and then TimeoutError."""
    (length,) = _LENGTH.unpack(read_exactly(fd, _LENGTH.size, deadline))
    if length > MAX_FRAME_BYTES:
        raise WireError(f"a message of {length} bytes is over the limit of {MAX_FRAME_BYTES}")
    return decode(read_exactly(fd, length, deadline))
