"""The sandbox server's request loop, over an InProcessModel of the submission it loads."""

from __future__ import annotations

from pathlib import Path

from grader.profile import HardwareProfile
from grader.quiet import import_lightning_quietly
from grader.protocol import ModelProtocol
from grader.sandbox.requests import FINGERPRINT, INSPECT, LOAD, description_header, fingerprint_response, objective_from
from grader.sandbox.wire import Message, WireError, read_message, write_message
from grader.submission.build import build_model
from grader.submission.errors import SubmissionError, describe_exception, is_out_of_memory, memory_error
from grader.submission.inprocess import InProcessModel
from grader.submission.inspection import inspect_folder
from grader.submission.module import SubmissionModule
from grader.submission.spec import load_spec
from grader.yamlfile import ConfigError


def serve(submission: str, profile: dict, requests: int, responses: int) -> None:
    hardware = start(profile, requests, responses)
    if hardware is None:
        return
    try:
        model = load(Path(submission), hardware.device, hardware.dtype)
    except BaseException as error:  # noqa: BLE001  (whatever the student's import does, report it)
        write_message(responses, failure(error, "load"))
        return
    write_message(responses, Message({"ok": True}))
    models: dict[int, ModelProtocol] = {0: model}
    while True:
        try:
            request = read_message(requests)
        except WireError:
            return  # the grader closed the channel
        if request.header.get("op") == "shutdown":
            return
        try:
            response = answer(request, models)
        except BaseException as error:  # noqa: BLE001
            response = failure(error, "request")
        write_message(responses, response)


def serve_inspection(submission: str, profile: dict, requests: int, responses: int) -> None:
    """A server for `grader init`: it loads no model at start (there is no submission.yaml yet) and
    answers `inspect` requests until told to stop."""
    if start(profile, requests, responses) is None:
        return
    write_message(responses, Message({"ok": True}))
    while True:
        try:
            request = read_message(requests)
        except WireError:
            return
        if request.header.get("op") != INSPECT:
            return  # shutdown, or anything else: this server answers one kind of request
        try:
            weights, sources = ([str(path) for path in request.header[key]] for key in ("weights", "sources"))
            response = Message({"ok": True, "inspection": inspect_folder(Path(submission), weights, sources)})
        except BaseException as error:  # noqa: BLE001
            response = failure(error, "request")
        write_message(responses, response)


def start(profile: dict, requests: int, responses: int) -> HardwareProfile | None:
    """What every server does before its submission: quiet the libraries (the captured output is
    the student's own), apply the profile, then `await_load`. The profile, or None when the server
    is to stop (the profile failed, said as a load error, or the grader stopped it first)."""
    import_lightning_quietly()
    hardware = HardwareProfile.model_validate(profile)
    try:
        hardware.apply()
        hardware.warm()  # ahead of the submission: the device's context is not the student's time
    except BaseException as error:  # noqa: BLE001
        write_message(responses, failure(error, "load"))
        return None
    return hardware if await_load(requests, responses) else None


def await_load(requests: int, responses: int) -> bool:
    """Say that the server has started (torch and Lightning imported, the profile applied), then
    wait for the `load` request that says its submission's snapshot is in place: a server can be
    started ahead of its submission (grader.sandbox.starter). False when the grader stops it or
    closes the channel first."""
    write_message(responses, Message({"ok": True, "started": True}))
    try:
        request = read_message(requests)
    except WireError:
        return False
    return request.header.get("op") == LOAD


def load(folder: Path, device: str = "cpu", dtype: str = "float32") -> InProcessModel:
    try:
        spec = load_spec(folder)
    except ConfigError as error:
        raise SubmissionError("spec", "; ".join(error.problems)) from None
    return InProcessModel(SubmissionModule(build_model(folder, spec), spec.input), device=device, dtype=dtype)


def answer(request: Message, models: dict[int, ModelProtocol]) -> Message:
    op = request.header.get("op")
    model = models[int(request.header.get("handle", 0))]
    if op == "describe":
        return Message({"ok": True, "description": description_header(model.describe())})
    if op == "logits":
        return Message({"ok": True}, {"logits": model.logits(request.arrays["pixels"])})
    if op == "input_gradient":
        values, gradient = model.input_gradient(request.arrays["pixels"], objective_from(request))
        return Message({"ok": True}, {"values": values, "gradient": gradient})
    if op == "activations":
        layer = str(request.header["layer"])
        return Message({"ok": True}, {"activations": model.activations(request.arrays["pixels"], layer)})
    if op == "layer_gradient":
        activations, gradient = model.layer_gradient(request.arrays["pixels"], str(request.header["layer"]),
                                                     request.arrays["classes"])
        return Message({"ok": True}, {"activations": activations, "gradient": gradient})
    if op == FINGERPRINT:
        return fingerprint_response(model.weights_fingerprint())
    if op == "randomized":
        handle = max(models) + 1
        models[handle] = model.randomized(int(request.header["seed"]), int(request.header["top_layers"]))
        return Message({"ok": True, "handle": handle})
    if op == "release":
        models.pop(int(request.header["handle"]), None)
        return Message({"ok": True})
    raise ValueError(f"unknown request '{op}'")


def failure(error: BaseException, stage: str) -> Message:
    """The error as the student should read it: a SubmissionError as it is, memory exhaustion as
    the limit, anything else as the exception with the line of the student's file it came from."""
    if isinstance(error, SubmissionError):
        return Message({"ok": False, "stage": error.stage, "message": error.message})
    if is_out_of_memory(error):
        error = memory_error(error)
        return Message({"ok": False, "stage": error.stage, "message": error.message})
    return Message({"ok": False, "stage": stage, "message": describe_exception(error)})

