"""The bundled default evaluation set: the synthetic eval split, generated once into a cache folder
and read back through the course-CSV reader like any other data."""

from __future__ import annotations

import os
from pathlib import Path

from grader.data.course_csv import read_course_csv
from grader.data.faceset import FaceSet
from grader.data.readers import with_origin
from grader.data.synth import DEFAULT_EVAL_SIZE, DEFAULT_SEED, GENERATOR_VERSION, generate, write_split


def cache_dir() -> Path:
    """$XAI_GRADER_CACHE, else $XDG_CACHE_HOME/xai-grader, else ~/.cache/xai-grader."""
    if "XAI_GRADER_CACHE" in os.environ:
        return Path(os.environ["XAI_GRADER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "xai-grader"


def bundled_eval_path(seed: int = DEFAULT_SEED, size: int = DEFAULT_EVAL_SIZE) -> Path:
    """eval.csv of the synthetic data for this generator version, written on first use."""
    folder = cache_dir() / f"synthetic-v{GENERATOR_VERSION}-seed{seed}-n{size}"
    path = folder / "eval.csv"
    if not (path.is_file() and (folder / "eval_masks.npz").is_file()):
        write_split(folder, "eval", generate(size, seed, "eval"))
    return path


def bundled_evaluation() -> FaceSet:
    """The synthetic evaluation split, marked synthetic: a model trained on real faces scores low on
    it, and the grader says so (grader.cli)."""
    path = bundled_eval_path()
    return with_origin(read_course_csv(path), path, synthetic=True)
