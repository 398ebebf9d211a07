"""How the protocol's requests and answers map onto wire messages (both sides use these)."""

from __future__ import annotations

import numpy as np

from grader.fingerprint import WeightsFingerprint, fingerprint_arrays, fingerprint_from_arrays
from grader.protocol import OUTPUT_KINDS, ChannelMean, ClassLogit, CrossEntropy, LayerInfo, ModelDescription, Objective
from grader.escape import clean_text
from grader.sandbox.wire import Message
from grader.submission.spec import InputSpec

_KINDS = {ClassLogit: "class_logit", CrossEntropy: "cross_entropy", ChannelMean: "channel_mean"}


def objective_message(pixels: np.ndarray, objective: Objective, handle: int) -> Message:
    header = {"op": "input_gradient", "handle": handle, "objective": _KINDS[type(objective)]}
    if isinstance(objective, ChannelMean):
        header["layer"] = objective.layer
        header["negative_slope"] = float(objective.negative_slope)
        targets = objective.channels
    else:
        targets = objective.classes if isinstance(objective, ClassLogit) else objective.labels
    return Message(header, {"pixels": pixels, "targets": np.asarray(targets, dtype=np.int64)})


def objective_from(message: Message) -> Objective:
    kind, targets = message.header["objective"], message.arrays["targets"].astype(np.int64)
    if kind == "class_logit":
        return ClassLogit(classes=targets)
    if kind == "cross_entropy":
        return CrossEntropy(labels=targets)
    if kind == "channel_mean":
        return ChannelMean(layer=str(message.header["layer"]), channels=targets,
                           negative_slope=float(message.header.get("negative_slope", 1.0)))
    raise ValueError(f"unknown objective '{kind}'")


def description_header(description: ModelDescription) -> dict:
    return {"num_classes": description.num_classes, "input": description.input,
            "layers": [[layer.name, layer.kind, list(layer.output_shape), layer.parametrized]
                       for layer in description.layers],
            "outputs": description.outputs}


MAX_LAYERS = 10_000
"""Named modules a description may list: a ResNet-152 has about 500; more is a hostile server."""
MAX_LAYER_NAME = 200


def description_from(header: dict) -> ModelDescription:
    """The server's description, held to what a real model can have: layer names are student text
    (cleaned, cut), shapes small tuples of non-negative ints; ValueError otherwise."""
    raw_layers = header["layers"]
    if not isinstance(raw_layers, list) or len(raw_layers) > MAX_LAYERS:
        raise ValueError(f"more than {MAX_LAYERS} layers, or not a list")
    layers = tuple(LayerInfo(name=clean_text(name, MAX_LAYER_NAME), kind=clean_text(kind, MAX_LAYER_NAME),
                             output_shape=_shape(shape), parametrized=_flag(parametrized))
                   for name, kind, shape, parametrized in raw_layers)
    spec = InputSpec.model_validate(header["input"])  # only the fields a submission.yaml may declare
    outputs = header["outputs"]
    if not isinstance(outputs, str) or outputs not in OUTPUT_KINDS:
        raise ValueError(f"the model's outputs are {clean_text(outputs, 40)!r}, not one of {', '.join(OUTPUT_KINDS)}")
    return ModelDescription(num_classes=int(header["num_classes"]), input=spec.model_dump(), layers=layers,
                            outputs=outputs)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"a layer's parametrized flag is not true or false: {clean_text(value, 40)}")
    return value


def _shape(shape: object) -> tuple[int, ...]:
    if not isinstance(shape, list) or len(shape) > 8 or not all(isinstance(v, int) and 0 <= v < 2**31 for v in shape):
        raise ValueError(f"a layer's shape is not a short list of sizes: {clean_text(shape, 80)}")
    return tuple(shape)


LOAD = "load"
"""The request that hands a started server its submission (grader.sandbox.serve.await_load)."""
FINGERPRINT = "fingerprint"
"""The op of a weights_fingerprint request: a header only, answered with the flat arrays of
grader.fingerprint.fingerprint_arrays."""


def fingerprint_response(fingerprint: WeightsFingerprint) -> Message:
    return Message({"ok": True}, fingerprint_arrays(fingerprint))


def fingerprint_from(message: Message) -> WeightsFingerprint:
    """The fingerprint an answer carries, validated as untrusted (grader.fingerprint raises
    FingerprintError for anything malformed)."""
    return fingerprint_from_arrays(message.arrays)


INSPECT = "inspect"
"""The one request of a server started with --inspect (grader init, grader.sandbox.init_folder): header
`weights` and `sources`, lists of paths relative to the submission; answered with the header
`inspection` (grader.submission.inspection.inspect_folder), read by grader.submission.init_spec."""
