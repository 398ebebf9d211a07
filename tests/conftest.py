"""Shared fixtures: a small synthetic evaluation set, and one `grader grade` run over the examples."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "submissions"


def in_ci() -> bool:
    """CI=true (or 1, yes): the project's own setup has installed every tool the tests need."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> None:
    """A test that needs a tool this machine lacks: skipped on a developer's machine, failed in CI,
    where a missing bwrap or chromium must not turn a run green."""
    if in_ci():
        pytest.fail(f"{reason}; CI must run this test (scripts/system-deps.sh installs what it needs)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def require_bwrap() -> None:
    """For the sandbox tests (session-scoped, so it runs before any module's batch fixture)."""
    from grader.sandbox.isolation import bwrap_works

    if not bwrap_works():
        skip_or_fail("bubblewrap (bwrap) is missing or cannot create namespaces here")


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
