"""The schema of submission.yaml (see docs/ARCHITECTURE.md, "A submission folder")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from grader.escape import clean_text
from grader.yamlfile import load_yaml_model

SPEC_FILE = "submission.yaml"
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""A student id names the student's output folder and goes into CSV files: letters, digits, _ and -,
starting with a letter or digit (so no cell starts with a spreadsheet's formula sign), at most 64."""
NAME_LIMIT = 200

WeightsFormat = Literal["state_dict", "lightning_ckpt", "torchscript", "export", "safetensors", "onnx"]
"""state_dict (.pt/.pth, torch.save of model.state_dict()), lightning_ckpt (.ckpt), torchscript
(torch.jit, deprecated by PyTorch in favour of torch.export), export (.pt2, torch.export.save of an
ExportedProgram), safetensors (.safetensors weights beside model.py: the pickle-free format of the
Hugging Face tools), onnx (.onnx, from Keras/TensorFlow or torch.onnx.export). The formats that
carry their own graph (torchscript, export, onnx) need no source; the others need source and entry."""
GRAPH_FORMATS: frozenset[str] = frozenset({"torchscript", "export", "onnx"})
"""Formats whose file holds the whole model: no model.py is needed."""
Freeform = Literal["class_model", "gradcam", "integrated_gradients", "smoothgrad"]
"""The free-form methods a student may choose: grader.explain.registry.FREEFORM_METHODS (submission/ sits
below explain/, so the names are written here too; tests/test_questions.py checks the two agree)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """Where the model comes from: Python source plus weights, or a TorchScript file."""

    format: WeightsFormat | None = Field(None, description="inferred from the weights file when omitted")
    source: str | None = Field(None, description="the Python file that defines the model")
    entry: str | None = Field(None, description="class or zero-argument function in source returning the nn.Module")
    weights: str = Field(description="the weights file inside the submission folder")

    @field_validator("source", "weights")
    @classmethod
    def _inside_folder(cls, value: str | None) -> str | None:
        if value is not None and (Path(value).is_absolute() or ".." in Path(value).parts):
            raise ValueError(f"'{value}' must be a file name inside the submission folder")
        return value

    @field_validator("entry")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not value.isidentifier():
            raise ValueError(f"'{value}' is not a Python name (expected a class or function name such as Net)")
        return value

    @model_validator(mode="after")
    def _source_matches_format(self) -> ModelSpec:
        # A .pt/.pth without a format may be TorchScript; that is decided when the file is opened.
        needs_source = self.format in ("state_dict", "lightning_ckpt", "safetensors") or (
            self.format is None and self.weights.endswith((".ckpt", ".safetensors")))
        if needs_source:
            missing = [f"model.{f}" for f in ("source", "entry") if getattr(self, f) is None]
            if missing:
                raise ValueError(
                    f"{' and '.join(missing)} required for format {self.weights_format}: name the Python file "
                    "and the class (or function) that builds your model, e.g. source: model.py, entry: Net")
        return self

    @property
    def weights_format(self) -> WeightsFormat:
        return self.format or infer_format(self.weights)


class InputSpec(_Strict):
    """How the model wants its pixels, in the order they are applied (grader.submission.module):
    histogram equalization of the 0-255 face (`equalize`), the crops (`size`: one center crop; `tta`:
    five or ten crops whose logits are averaged), the channels, then `normalize`: "fixed" maps a
    pixel to (pixel / scale - mean) / std with the declared numbers (compute the training set's
    with `mean = (pixels / scale).mean()` and `std = (pixels / scale).std()` over all training
    pixels), "per_image" standardizes each face by its own mean and standard deviation (after
    `/ scale`), as `tf.image.per_image_standardization` does."""

    size: int = Field(48, ge=8, le=48, description="side length; smaller sizes get a center crop")
    channels: Literal[1, 3] = 1
    scale: float = Field(255.0, gt=0)
    mean: float = 0.0
    std: float = Field(1.0, gt=0)
    normalize: Literal["fixed", "per_image"] = "fixed"
    equalize: bool = Field(False, description="histogram equalization of the 0-255 face first")
    tta: Literal["none", "five_crop", "ten_crop"] = Field(
        "none", description="test-time augmentation: logits averaged over the four corner and the center "
                            "crops of side `size` (ten_crop: and their mirror images)")

    @model_validator(mode="after")
    def _crops_smaller_than_the_face(self) -> InputSpec:
        if self.tta != "none" and self.size >= 48:
            raise ValueError(f"tta: {self.tta} needs crops smaller than the 48-pixel face: set input.size "
                             "(for example 44, as most course models that use ten-crop do)")
        return self


class VisualizeSpec(_Strict):
    """The student's choices for the report's figures."""

    filter_layer: str | None = Field(None, description="module name from named_modules(); default the first Conv2d")
    freeform: Freeform = "class_model"


class SubmissionSpec(_Strict):
    student_id: str = Field(description="letters, digits, _ and -")
    name: str = ""
    model: ModelSpec
    input: InputSpec = InputSpec()
    visualize: VisualizeSpec = VisualizeSpec()

    @field_validator("student_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        # A numeric id such as 410512345 arrives from YAML as an int; it is still an id.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("student_id")
    @classmethod
    def _id_is_a_file_name(cls, value: str) -> str:
        # The id names the student's output folder, so it must be safe as a file name.
        if not STUDENT_ID.fullmatch(value):
            raise ValueError(f"'{clean_text(value, 80)}' is not a student id: use 1 to 64 letters, digits, _ and -, "
                             "starting with a letter or digit (it names your output folder)")
        return value

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        # Shown in every report, terminal line and CSV: valid Unicode, no control characters, bounded.
        return clean_text(value, NAME_LIMIT).strip()

    @property
    def weights_format(self) -> WeightsFormat:
        return self.model.weights_format


SUFFIX_FORMATS: dict[str, WeightsFormat] = {".ckpt": "lightning_ckpt", ".pt2": "export",
                                             ".safetensors": "safetensors", ".onnx": "onnx"}


def infer_format(weights: str) -> WeightsFormat:
    """The format a weights file name suggests: .ckpt is Lightning, .pt2 torch.export, .safetensors
    and .onnx what they say; .pt/.pth is a state_dict unless the file turns out to be TorchScript
    (see grader.submission.build.sniff_format)."""
    return SUFFIX_FORMATS.get(Path(weights).suffix.lower(), "state_dict")


def load_spec(folder: str | Path) -> SubmissionSpec:
    """Read and validate `<folder>/submission.yaml`; raises ConfigError naming each bad field and its line."""
    return load_yaml_model(Path(folder) / SPEC_FILE, SubmissionSpec)
