"""Shared fixtures: a small synthetic evaluation set, and one `grader grade` run over the examples."""

from __future__ import annotations

import functools
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.session_zygotes import ZYGOTES, STARTS_ITS_OWN_SERVERS
from tests.session_zygotes import _servers_forked_from_session_zygotes  # noqa: F401  (a session fixture)

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


def names(item: pytest.Item) -> set[str]:
    """How the lists below may name a test: file::test (every parameter), file::test[id], or
    file::fixture for every test of that file that uses the fixture."""
    test = f"{item.path.name}::{item.nodeid.split('::', 1)[-1]}"
    fixtures = {f"{item.path.name}::{name}" for name in getattr(item, "fixturenames", ())}
    return {test, test.split("[")[0]} | fixtures


# ---------------------------------------------------------------- the two tiers
# `make test-fast` (pytest -m "not slow") is the development loop, under a minute on 2 cores;
# `make test` and CI run everything. A test is slow when it is in one of these files (each grades
# through the CLI, a batch, a Dask cluster or the sandbox), when it needs bwrap or Chromium (those
# fixtures anywhere in its closure), or when it is named below: a CLI run, or a second or more alone.
SLOW_FILES = frozenset({
    "test_grade_e2e.py",         # `grader grade` / `grader check` over the examples, PDFs included
    "test_classrun.py",          # class batches: resume after SIGKILL, a Dask scheduler and workers
    "test_hostile_inputs.py",    # a batch of hostile submissions in the sandbox
    "test_sandbox.py",           # sandbox limits: timeouts, memory, forks
    "test_protocol_parity.py",   # every example in and out of the sandbox
    "test_output_folder_cli.py", # `grader grade` into busy, full and shared output folders
    "test_error_boundary.py",    # batches whose report, figure or similarity stage fails
    "test_init.py",              # `grader init` inspects each folder in the sandbox
    "test_pytest_plugin.py",     # the pytest plugin grades a submission in a pytester subprocess
    "test_platforms.py",         # Gradescope's run_autograder and PrairieLearn's runner grade in the sandbox
})
SLOW_FIXTURES = frozenset({"require_bwrap", "browser"})
SLOW_TESTS = frozenset({
    "test_profile.py::test_the_gpu_profile_without_cuda_is_refused_before_anything_runs",  # CLI, bundled data
    "test_gradient_audit.py::test_honest_examples_pass_every_check",
    "test_synth.py::test_a_linear_model_on_pixels_does_not_separate_the_classes",
    "test_synth.py::test_generated_labels_follow_the_quota",
    "test_synth.py::test_surprise_opens_the_mouth_more_than_neutral",
    "test_similarity.py::test_two_hundred_submissions_of_one_architecture_are_compared_in_seconds",
    "test_fingerprint.py::test_the_deflate_bomb_is_what_it_claims",
    "test_manual_scores.py::test_a_million_unknown_ids_summarize_in_one_short_line",
    "test_similarity.py::evidence",       # every example loaded and fingerprinted (9 s)
    "test_apply_scores.py::graded",       # a class graded with PDFs (6 s)
    "test_readers.py::test_the_bundled_data_says_it_is_synthetic",  # generates the 3,589 bundled faces
})


def is_slow(item: pytest.Item) -> bool:
    """The tier rule above, for one collected test."""
    return (item.path.name in SLOW_FILES or not SLOW_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
            or not SLOW_TESTS.isdisjoint(names(item)))


# `make test` runs the files on two pytest-xdist workers (--dist loadfile: a file's module-scoped
# batch is graded once). Its queue goes in collection order (--no-loadscope-reorder), which puts
# these files first, longest first (seconds measured alone on 2 cores), so that no long file
# starts last while the other worker sits idle.
LONGEST_FIRST = ("test_classrun.py", "test_grade_e2e.py", "test_hostile_inputs.py", "test_sandbox.py",
                 "test_examples.py", "test_output_folder_cli.py", "test_protocol_parity.py",
                 "test_fingerprint.py", "test_error_boundary.py", "test_similarity.py")


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)
    if hasattr(config, "workerinput"):  # an xdist worker: every worker sorts alike
        rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))
    warn_of_stale_names(config, items)


def warn_of_stale_names(config, items) -> None:
    """A renamed test or file drops out of the lists here silently: say so (whole files collected only)."""
    if any("::" in str(arg) for arg in config.args):
        return
    here = Path(__file__).parent
    files = {item.path.name for item in items}
    known = set().union(*(names(item) for item in items))
    stale = sorted({name for name in SLOW_FILES | set(LONGEST_FIRST) if not (here / name).is_file()}
                   | {name for name in SLOW_TESTS | GRADES_IN_THE_SANDBOX
                      if name.split("::")[0] in files and name not in known})
    if stale:
        warnings.warn(pytest.PytestWarning(f"tests/conftest.py names what is not there: {', '.join(stale)}"))


# ---------------------------------------------------------------- bwrap and chromium
# Every test that needs bwrap or chromium goes through skip_or_fail: the sandbox tests through the
# require_bwrap fixture, the browser tests through test_dashboard.py's browser fixture, and these,
# which run `grader grade` with the sandbox on (it refuses to start without bwrap) but do not ask
# for require_bwrap themselves, through pytest_runtest_setup below, before any of their fixtures.
GRADES_IN_THE_SANDBOX = frozenset({
    "test_grade_e2e.py::graded",
    "test_grade_e2e.py::test_a_bad_submission_never_stops_the_batch",
    "test_grade_e2e.py::test_a_broken_rubric_stops_before_any_submission_runs",
    "test_grade_e2e.py::test_unlabeled_data_is_refused_with_a_reason",
    "test_grade_e2e.py::test_malformed_data_names_the_file_and_line",
    "test_profile.py::test_the_gpu_profile_without_cuda_is_refused_before_anything_runs",
})
NO_BWRAP = "bubblewrap (bwrap) is missing or cannot create namespaces here"


@functools.cache
def bwrap_works() -> bool:
    from grader.sandbox.isolation import bwrap_works as probe

    return probe()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    ZYGOTES.sharing = item.path.name not in STARTS_ITS_OWN_SERVERS  # before its fixtures (tests/session_zygotes.py)
    if not GRADES_IN_THE_SANDBOX.isdisjoint(names(item)) and not bwrap_works():
        skip_or_fail(NO_BWRAP)


@pytest.fixture(scope="session")
def require_bwrap() -> None:
    """For the sandbox tests (session-scoped, so it runs before any module's batch fixture)."""
    if not bwrap_works():
        skip_or_fail(NO_BWRAP)


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


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium (Debian's) for the whole module: starting one takes about a second."""
    try:
        from playwright import sync_api
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install -e '.[test]')")
    executable = shutil.which("chromium")
    if executable is None:
        skip_or_fail("Debian's chromium is not installed")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses to run its sandbox as root, and the tests may run as root.
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()
