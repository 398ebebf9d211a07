"""Specifications of the sandbox's wire format (length-prefixed frames of a JSON header and .npy
arrays, never pickle) and of how the protocol's requests and descriptions map onto it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from grader.protocol import ChannelMean, ClassLogit, CrossEntropy, LayerInfo, ModelDescription
from grader.sandbox import wire
from grader.sandbox.requests import description_from, description_header, objective_from, objective_message
from grader.sandbox.wire import Message, WireError, decode, encode, read_message, write_message

# --- helpers --------------------------------------------------------------------------------


def body_of(frame: bytes) -> bytes:
    """What decode() takes: a frame without its 8-byte length prefix."""
    assert int.from_bytes(frame[:8], "big") == len(frame) - 8
    return frame[8:]


def hand_made_body(header: object, *blobs: bytes) -> bytes:
    """A frame body written byte by byte: 8-byte big-endian header length, JSON header, raw blobs."""
    header_bytes = json.dumps(header).encode("utf-8")
    return len(header_bytes).to_bytes(8, "big") + header_bytes + b"".join(blobs)


@pytest.fixture()
def pipe():
    read_end, write_end = os.pipe()
    ends = {"read": read_end, "write": write_end}
    yield ends
    for fd in ends.values():
        if fd is not None:
            os.close(fd)


def close_write_end(ends: dict) -> None:
    os.close(ends["write"])
    ends["write"] = None


def assert_same_arrays(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(got) == list(expected)
    for name, array in expected.items():
        assert got[name].dtype == array.dtype, name
        assert got[name].shape == array.shape, name
        assert np.array_equal(got[name], array), name


ARRAYS = {
    "pixels": np.arange(2 * 48 * 48, dtype=np.float32).reshape(2, 48, 48) / 7,
    "labels": np.array([-3, 0, 2**40], dtype=np.int64),
    "bytes": np.array([[0, 1], [254, 255]], dtype=np.uint8),
    "scalar": np.array(3.25, dtype=np.float64),
    "empty": np.zeros((0, 48, 48), dtype=np.float32),
    "transposed": np.arange(6, dtype=np.int32).reshape(2, 3).T,  # not C-contiguous
}

# --- encode / decode ------------------------------------------------------------------------


def test_encode_decode_round_trips_header_and_arrays_exactly():
    header = {"op": "logits", "handle": 7, "nested": {"layer": "conv1", "sizes": [1, 2.5, None]}}
    frame = encode(Message(header, ARRAYS))

    decoded = decode(body_of(frame))

    assert decoded.header == header
    assert_same_arrays(decoded.arrays, ARRAYS)


def test_a_message_without_arrays_round_trips():
    decoded = decode(body_of(encode(Message({"op": "close"}))))

    assert decoded.header == {"op": "close"}
    assert decoded.arrays == {}


def test_write_and_read_message_round_trip_over_a_pipe(pipe):
    big = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)  # 4 MB, over a pipe's buffer
    arrays = dict(ARRAYS, big=big)
    writer = threading.Thread(target=write_message, args=(pipe["write"], Message({"op": "answer"}, arrays)))
    writer.start()

    received = read_message(pipe["read"])
    writer.join(timeout=10)

    assert not writer.is_alive()
    assert received.header == {"op": "answer"}
    assert_same_arrays(received.arrays, arrays)


def test_two_messages_in_a_row_are_read_one_at_a_time(pipe):
    write_message(pipe["write"], Message({"n": 1}, {"a": np.array([1], np.int64)}))
    write_message(pipe["write"], Message({"n": 2}, {"a": np.array([2], np.int64)}))

    first, second = read_message(pipe["read"]), read_message(pipe["read"])

    assert (first.header, first.arrays["a"].tolist()) == ({"n": 1}, [1])
    assert (second.header, second.arrays["a"].tolist()) == ({"n": 2}, [2])


# --- no pickle ------------------------------------------------------------------------------


class CreatesMarker:
    """Unpickling this object creates (opens for writing) the file `path`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def object_npy(marker: str) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([CreatesMarker(marker), 1], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def test_an_object_array_cannot_be_encoded():
    with pytest.raises(ValueError):
        encode(Message({"op": "x"}, {"evil": np.array([object(), 1], dtype=object)}))


def test_the_marker_payload_does_run_code_when_unpickled(tmp_path):
    """Checks the next test's payload: loaded with pickle allowed, it creates its marker file."""
    marker = tmp_path / "unpickled-here"
    np.lib.format.read_array(io.BytesIO(object_npy(str(marker))), allow_pickle=True)
    assert marker.exists()


def test_a_frame_declaring_an_object_array_is_refused_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    npy = object_npy(str(marker))
    body = hand_made_body({"op": "answer", "arrays": [["evil", len(npy)]]}, npy)

    with pytest.raises(WireError):
        decode(body)
    assert not marker.exists()


def test_read_message_refuses_an_object_array_frame_from_the_pipe(pipe, tmp_path):
    marker = tmp_path / "pwned"
    npy = object_npy(str(marker))
    body = hand_made_body({"arrays": [["evil", len(npy)]]}, npy)
    os.write(pipe["write"], len(body).to_bytes(8, "big") + body)

    with pytest.raises(WireError):
        read_message(pipe["read"])
    assert not marker.exists()


# --- malformed frames -----------------------------------------------------------------------

FRAME = encode(Message({"op": "logits"}, {"pixels": np.ones((2, 48, 48), np.float32)}))
HEADER_END = 8 + 8 + int.from_bytes(FRAME[8:16], "big")  # length prefix, header length, header


@pytest.mark.parametrize("cut", [4, 8 + 4, HEADER_END - 3, HEADER_END + 20, len(FRAME) - 1],
                         ids=["in-header-length", "in-header", "header-end", "in-npy-header", "in-npy-data"])
def test_a_truncated_frame_body_gives_wire_error(cut):
    with pytest.raises(WireError):
        decode(FRAME[8:cut])


def test_a_frame_cut_off_by_a_closed_channel_gives_wire_error(pipe):
    os.write(pipe["write"], FRAME[:len(FRAME) // 2])
    close_write_end(pipe)

    with pytest.raises(WireError, match="closed"):
        read_message(pipe["read"])


@pytest.mark.parametrize("garbage", [
    b"\xff" * 64,
    b"\x00" * 8 + b"not json at all",
    (5).to_bytes(8, "big") + b"{oops",
    (9).to_bytes(8, "big") + "{\"é\": 1}".encode("latin-1"),
], ids=["all-ones", "empty-header", "bad-json", "not-utf8"])
def test_garbage_bytes_give_wire_error(garbage):
    with pytest.raises(WireError):
        decode(garbage)


def test_a_blob_that_is_not_npy_gives_wire_error():
    blob = b"\x93NUMPY but not really an array header" + b"\x00" * 40

    with pytest.raises(WireError):
        decode(hand_made_body({"arrays": [["a", len(blob)]]}, blob))


def test_an_object_array_frame_met_again_is_refused_again(tmp_path):
    """The headers the two ends have met are kept (issue 20); a refused one is not among them."""
    marker = tmp_path / "pwned"
    npy = object_npy(str(marker))
    body = hand_made_body({"arrays": [["evil", len(npy)]]}, npy)

    for _ in range(3):
        with pytest.raises(WireError, match="object arrays"):
            decode(body)
    assert not marker.exists()


def test_an_npy_header_longer_than_its_array_gives_wire_error():
    npy = bytearray(FRAME[HEADER_END:])
    npy[8:10] = (60_000).to_bytes(2, "little")  # version 1.0's header length field

    with pytest.raises(WireError, match="more than the array"):
        decode(hand_made_body({"arrays": [["a", len(npy)]]}, bytes(npy)))


def test_arrays_with_a_header_met_before_are_each_read_from_their_own_bytes():
    first, second = np.zeros((2, 3), np.float32), np.arange(6, dtype=np.float32).reshape(2, 3)

    decoded = [decode(encode(Message({}, {"a": array}))[8:]).arrays["a"] for array in (first, second, first)]

    assert [array.tolist() for array in decoded] == [first.tolist(), second.tolist(), first.tolist()]


@pytest.mark.parametrize("header", ['"a string"', "[1, 2]", "42", "null", "true"])
def test_a_header_that_is_not_a_json_object_gives_wire_error(header):
    header_bytes = header.encode("utf-8")
    body = len(header_bytes).to_bytes(8, "big") + header_bytes

    with pytest.raises(WireError, match="not an object"):
        decode(body)


def test_a_header_without_its_array_list_gives_wire_error():
    with pytest.raises(WireError):
        decode(hand_made_body({"op": "logits"}))


def test_a_declared_length_over_the_limit_is_refused_without_reading_the_body(pipe, monkeypatch):
    monkeypatch.setattr(wire, "MAX_FRAME_BYTES", 100)
    assert len(FRAME) - 8 > 100
    os.write(pipe["write"], FRAME)

    with pytest.raises(WireError, match="over the limit of 100"):
        read_message(pipe["read"])

    close_write_end(pipe)
    unread = bytearray()
    while chunk := os.read(pipe["read"], 1 << 16):
        unread += chunk
    assert bytes(unread) == FRAME[8:]  # only the length prefix was consumed


# --- deadlines and closed channels -----------------------------------------------------------


def test_read_message_times_out_when_nothing_arrives(pipe):
    start = time.monotonic()

    with pytest.raises(TimeoutError):
        read_message(pipe["read"], deadline=start + 0.2)
    waited = time.monotonic() - start

    assert 0.15 <= waited < 2


def test_read_message_times_out_on_a_frame_that_stops_half_way(pipe):
    os.write(pipe["write"], FRAME[:100])

    with pytest.raises(TimeoutError):
        read_message(pipe["read"], deadline=time.monotonic() + 0.2)


def test_read_message_returns_a_frame_that_arrives_before_the_deadline(pipe):
    late_writer = threading.Timer(0.05, write_message, args=(pipe["write"], Message({"op": "late"})))
    late_writer.start()

    try:
        received = read_message(pipe["read"], deadline=time.monotonic() + 5)
    finally:
        late_writer.join()

    assert received.header == {"op": "late"}


@pytest.mark.parametrize("deadline", [None, 5.0], ids=["blocking", "with-deadline"])
def test_a_closed_write_end_gives_wire_error(pipe, deadline):
    close_write_end(pipe)

    with pytest.raises(WireError, match="closed"):
        read_message(pipe["read"], None if deadline is None else time.monotonic() + deadline)


# --- requests.py: the protocol on the wire --------------------------------------------------

PIXELS = np.linspace(0, 255, 3 * 48 * 48, dtype=np.float32).reshape(3, 48, 48)


def over_the_wire(message: Message) -> Message:
    return decode(body_of(encode(message)))


def test_a_class_logit_objective_round_trips():
    message = over_the_wire(objective_message(PIXELS, ClassLogit(classes=np.array([6, 0, 3])), handle=4))

    objective = objective_from(message)

    assert type(objective) is ClassLogit
    assert objective.classes.dtype == np.int64 and objective.classes.tolist() == [6, 0, 3]
    assert message.header == {"op": "input_gradient", "handle": 4, "objective": "class_logit"}
    assert np.array_equal(message.arrays["pixels"], PIXELS)


def test_a_cross_entropy_objective_round_trips():
    labels = np.array([1, 2, 5], dtype=np.int32)  # any integer dtype goes out as int64

    objective = objective_from(over_the_wire(objective_message(PIXELS, CrossEntropy(labels=labels), handle=0)))

    assert type(objective) is CrossEntropy
    assert objective.labels.dtype == np.int64 and objective.labels.tolist() == [1, 2, 5]


def test_a_channel_mean_objective_round_trips_with_its_layer():
    message = over_the_wire(objective_message(PIXELS, ChannelMean(layer="features.3", channels=[0, 7, 2]), handle=1))

    objective = objective_from(message)

    assert type(objective) is ChannelMean
    assert objective.layer == "features.3"
    assert objective.channels.dtype == np.int64 and objective.channels.tolist() == [0, 7, 2]


def test_an_unknown_objective_kind_is_refused():
    with pytest.raises(ValueError, match="unknown objective 'saliency'"):
        objective_from(Message({"objective": "saliency"}, {"targets": np.array([0])}))


def test_a_model_description_round_trips():
    description = ModelDescription(
        num_classes=7,
        input={"size": 44, "channels": 3, "scale": 255.0, "mean": 0.5, "std": 0.25, "normalize": "per_image",
               "equalize": True, "tta": "ten_crop"},
        layers=(LayerInfo("features.0", "Conv2d", (8, 44, 44), parametrized=True),
                LayerInfo("features.1", "ReLU", (8, 44, 44)),
                LayerInfo("fc", "Linear", (7,), parametrized=True),
                LayerInfo("scripted", "RecursiveScriptModule", ())),
        outputs="probabilities",
    )

    decoded = description_from(over_the_wire(Message(description_header(description))).header)

    assert decoded == description
    assert decoded.outputs == "probabilities"
    assert all(type(layer.output_shape) is tuple for layer in decoded.layers)
    assert [layer.name for layer in decoded.parametrized_layers] == ["features.0", "fc"]


@pytest.mark.parametrize("outputs", ["softmax", "", None, 1, ["logits"]])
def test_a_description_with_unknown_outputs_is_refused(outputs):
    header = description_header(ModelDescription(num_classes=7, input={}))
    header["outputs"] = outputs

    with pytest.raises(ValueError, match="outputs"):
        description_from(over_the_wire(Message(header)).header)


def test_a_description_without_outputs_is_refused():
    header = description_header(ModelDescription(num_classes=7, input={}))
    del header["outputs"]

    with pytest.raises(KeyError):
        description_from(header)


def test_an_array_header_claiming_more_data_than_sent_is_refused_before_allocating():
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros(3), allow_pickle=False)
    blob = buffer.getvalue().replace(b"'shape': (3,)", b"'shape': (99999999999,)")
    with pytest.raises(WireError, match="claims shape"):
        decode(hand_made_body({"arrays": [["x", len(blob)]]}, blob))


def test_an_absurd_array_length_in_the_header_is_a_wire_error():
    with pytest.raises(WireError):
        decode(hand_made_body({"arrays": [["x", 1e400]]}))


def test_arrays_of_any_byte_order_and_kind_round_trip_exactly():
    arrays = {"big_endian": np.arange(5, dtype=">f4") / 3, "flags": np.array([True, False, True]),
              "strided": np.arange(40, dtype=np.float32).reshape(4, 10)[:, ::3]}
    assert_same_arrays(decode(body_of(encode(Message({}, arrays)))).arrays, arrays)


def test_a_fortran_ordered_npy_blob_from_numpys_own_writer_reads_as_written():
    array = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4))
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    blob = buffer.getvalue()
    assert_same_arrays(decode(hand_made_body({"arrays": [["x", len(blob)]]}, blob)).arrays, {"x": array})


def test_an_array_blob_with_bytes_beyond_its_data_is_refused():
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros(3), allow_pickle=False)
    blob = buffer.getvalue() + b"\0" * 8
    with pytest.raises(WireError, match="claims shape"):
        decode(hand_made_body({"arrays": [["x", len(blob)]]}, blob))


def test_a_frame_that_only_declares_its_length_takes_no_memory_while_its_bytes_do_not_come():
    # In a fresh process, so that its peak memory is its own: 900 MiB declared, 8 bytes sent.
    script = textwrap.dedent("""
        import os, resource, struct, time
        from grader.sandbox.wire import read_message
        read_end, write_end = os.pipe()
        os.write(write_end, struct.pack(">Q", 900 << 20) + b"12345678")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            read_message(read_end, time.monotonic() + 0.5)
        except TimeoutError:
            print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
        """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert int(run.stdout) < 50, run.stdout  # MiB the process grew by while it waited
