"""Classes of copies of the example submissions, for the benchmarks that grade a whole class."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKING_EXAMPLES = ("vgg", "small_cnn", "torchscript", "lightning_ckpt", "residual_zh", "shortcut_cue")
"""The examples that grade (broken_six_classes fails its checks on purpose)."""


def copy_examples(folder: Path, copies: int, examples: Sequence[str] = WORKING_EXAMPLES) -> Path:
    """`copies` submission folders under `folder`, cycling through `examples`, each with its own
    student id (c0000, c0001, ...) so that none is held as a conflict."""
    for index in range(copies):
        example = examples[index % len(examples)]
        target = folder / f"{index:04d}_{example}"
        shutil.copytree(ROOT / "submissions" / example, target, ignore=shutil.ignore_patterns("__pycache__"))
        spec = target / "submission.yaml"
        lines = [f"student_id: c{index:04d}" if line.startswith("student_id:") else line
                 for line in spec.read_text(encoding="utf-8").splitlines()]
        spec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
