"""Shared fixtures: a small synthetic evaluation set, and one `grader grade` run over the examples."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "submissions"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Keep the bundled data's cache inside the test run, so tests never depend on a user's cache."""
    os.environ["XAI_GRADER_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def small_eval_csv(tmp_path_factory) -> Path:
    """400 labeled synthetic faces with masks, in the course's layout."""
    from grader.data.synth import write_synthetic

    folder = tmp_path_factory.mktemp("data")
    return write_synthetic(folder, seed=11, train_size=0, eval_size=400)["eval.csv"]


@pytest.fixture()
def examples_copy(tmp_path) -> Path:
    """A writable copy of the example submissions."""
    target = tmp_path / "submissions"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target
