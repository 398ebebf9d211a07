"""The pytest plugin (entry point `pytest11: xai_grader`, issue 18): a submission graded as tests.

    pytest --xai-submission PATH [--xai-kit KIT] [--xai-data DATA] [--xai-out OUT]

grades the submission once per session, with the setup `grader check PATH --kit KIT` uses (the same
grader.pipeline.options, sandbox and output folder layout), and adds one test per rubric criterion,
`xai::<question>::<criterion>`: passed at full points, failed below them (the measured value, the
bands and the points in the failure text), skipped for a manual criterion (the TA scores it). When
the submission fails to grade, every criterion fails with what to fix. Course staff write their own
checks in plain pytest with the fixtures

    xai_result   the Result (grader.result), as result.json holds it
    xai_output   the student's output folder (result.json, report.pdf, arrays/, figures/)
    xai_arrays   arrays/<name>.npz by name, each a mapping of array name -> numpy array, read on first use
    xai_figures  figures/<name>.png by name -> Path

The plugin is loaded in every pytest run where xai-grader is installed, so it does nothing without
--xai-submission: it only adds the options, and its fixtures skip. It imports nothing of the grader
(torch, numpy, the pipeline) until a submission is given. Grading runs in the pytest process, so
pytest-xdist's -n is refused (each worker would grade the submission again).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import numpy as np

    from grader.pipeline.setup import GradingSetup
    from grader.result import CriterionResult, Result
    from grader.scoring.rubric import Criterion

PLUGIN_NAME = "xai-grader-submission"
ROOT_ID = "xai"
FULL_POINTS_SLACK = 1e-9


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xai-grader", "grade an 'explain your CNN' submission (xai-grader)")
    group.addoption("--xai-submission", metavar="PATH", default=None,
                    help="grade this submission folder once and add a test per rubric criterion "
                         "(xai::<question>::<criterion>)")
    group.addoption("--xai-kit", metavar="KIT", default=None,
                    help="the course kit (grader kit): its rubric, task settings, language, profile and public "
                         "split, as grader check --kit")
    group.addoption("--xai-data", metavar="DATA", default=None,
                    help="labeled evaluation faces (default: the kit's public split, or the bundled synthetic faces)")
    group.addoption("--xai-out", metavar="OUT", default=None,
                    help="output folder for result.json, report.pdf, arrays and figures (default: a folder "
                         "under pytest's basetemp)")


def pytest_configure(config: pytest.Config) -> None:
    submission = config.getoption("xai_submission")
    if submission is None:
        others = [name for name in ("--xai-kit", "--xai-data", "--xai-out")
                  if config.getoption(name.lstrip("-").replace("-", "_")) is not None]
        if others:
            raise pytest.UsageError(f"{', '.join(others)} need --xai-submission PATH (the folder to grade)")
        return
    if config.getoption("numprocesses", None) not in (None, 0):
        raise pytest.UsageError("--xai-submission grades the submission in this process: run it without "
                                "pytest-xdist's -n (each worker would grade it again)")
    config.addinivalue_line("markers", "xai_manual: a manual rubric criterion (the TA scores it; its test skips)")
    here = config.invocation_params.dir

    def given(name: str) -> Path | None:
        value = config.getoption(name)
        return None if value is None else here / value

    config.pluginmanager.register(
        SubmissionSession(config, here / submission, kit=given("xai_kit"), data=given("xai_data"),
                          out=given("xai_out")), PLUGIN_NAME)


class GradingFailed(Exception):
    """The grader itself could not grade the submission (an output folder it cannot write, say)."""


class CriterionShortfall(Exception):
    """A criterion below full points, or a submission that failed: the text says what and why."""


class SubmissionSession:
    """The one graded submission of a pytest session (registered only with --xai-submission)."""

    def __init__(self, config: pytest.Config, submission: Path, *, kit: Path | None, data: Path | None,
                 out: Path | None) -> None:
        self.config = config
        self.submission = submission
        self.kit = kit
        self.data = data
        self.out = out
        self.notes: list[str] = []
        self._setup: GradingSetup | None = None
        self._result: Result | None = None
        self._failure: str | None = None

    # --- the setup (at collection) and the grading (at the first test that needs it) -----------

    def setup(self) -> GradingSetup:
        """The setup `grader check --kit` builds; a pytest usage error naming the problem otherwise."""
        if self._setup is not None:
            return self._setup
        from grader.outfolder import OutputFolderError, check_out_folder
        from grader.pipeline.options import setup_from_options
        from grader.pipeline.setup import SetupError
        from grader.sandbox.isolation import bwrap_works

        if not self.submission.is_dir():
            raise pytest.UsageError(f"--xai-submission {self.submission}: not a folder")
        out = self.out if self.out is not None else self._scratch_out()
        try:
            check_out_folder(out, [self.submission], allow_inside=True, label="submission folder")
        except OutputFolderError as error:
            raise pytest.UsageError(f"--xai-out: {error}") from None
        isolation = "bwrap" if bwrap_works() else "subprocess"
        if isolation == "subprocess":
            self.notes.append("bubblewrap is not available: the submission ran in a plain subprocess (the TA's "
                              "grader runs it in the sandbox)")
        try:
            self._setup = setup_from_options(out, isolation, data=self.data, kit=self.kit, warn=self.notes.append)
        except SetupError as error:
            raise pytest.UsageError(f"xai-grader cannot grade with these options: {error.message}") from None
        return self._setup

    def _scratch_out(self) -> Path:
        factory = getattr(self.config, "_tmp_path_factory", None)
        if factory is not None:
            return factory.mktemp("xai-out", numbered=True)
        import tempfile

        return Path(tempfile.mkdtemp(prefix="xai-out-"))

    def result(self) -> Result:
        """The graded Result: graded on the first call, the same object after."""
        if self._result is None and self._failure is None:
            try:
                self._result = self._grade()
            except Exception as error:  # noqa: BLE001  (every criterion then fails with this message)
                from grader.escape import terminal_text  # the message may name the student's files

                self._failure = terminal_text(f"xai-grader could not grade {self.submission}: "
                                              f"{type(error).__name__}: {error}")
        if self._failure is not None:
            raise GradingFailed(self._failure)
        assert self._result is not None
        return self._result

    def _grade(self) -> Result:
        from grader.outfolder import OutputLock, clean_stale
        from grader.pipeline.student_folder import grade_submission
        from grader.quiet import quiet_libraries

        setup = self.setup()
        with warnings.catch_warnings():  # quiet_libraries silences warnings: only while grading
            quiet_libraries()
            with OutputLock(setup.out_dir):
                clean_stale(setup.out_dir)
                return grade_submission(self.submission, setup)

    @property
    def output_folder(self) -> Path:
        return self.setup().out_dir / self.result().student_id

    # --- hooks ----------------------------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        """Never collect inside the submission: pytest would import the student's conftest.py and
        test files in this process, outside the sandbox (students hand in tests too)."""
        try:
            path, submission = collection_path.resolve(), self.submission.resolve()
        except OSError:
            return True
        return True if path == submission or submission in path.parents else None

    def pytest_report_header(self, config: pytest.Config) -> str:
        kit = f" with the kit {self.kit}" if self.kit is not None else ""
        return f"xai-grader: grading {self.submission}{kit}"

    @pytest.hookimpl(tryfirst=True)  # before -k/-m deselect, so they select criteria too
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        rubric = self.setup().rubric
        root = RubricNode.from_parent(session, name=ROOT_ID, nodeid=ROOT_ID)
        for question in rubric.questions:
            node = QuestionNode.from_parent(root, name=question.id)
            items.extend(CriterionItem.from_parent(node, name=criterion.id, question=question.id,
                                                   criterion=criterion, grading=self)
                         for criterion in question.criteria)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if isinstance(item, CriterionItem) and report.skipped and isinstance(report.longrepr, tuple):
            # `-rs` names the criterion, not the line of this file that skipped it.
            report.longrepr = (item.nodeid, None, report.longrepr[2])
        return report

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self._result is None and self._failure is None:
            return
        terminalreporter.section("xai-grader")
        if self._failure is not None:
            terminalreporter.write_line(self._failure)
        else:
            result = self._result
            assert result is not None
            terminalreporter.write_line(f"{result.student_id} {result.name}: {result.status}, "
                                        f"{result.score:g}/{result.max_score:g} points")
            terminalreporter.write_line(f"output: {self.output_folder} (report.pdf, result.json, arrays/, figures/)")
            for error in result.errors:
                terminalreporter.write_line(f"fix ({error.stage}): {error.message}")
            for warning in result.warnings:
                terminalreporter.write_line(f"warning: {warning.message}")
        for note in self.notes:
            terminalreporter.write_line(f"warning: {note}")


# --- the test items ----------------------------------------------------------------------------


class RubricNode(pytest.Collector):
    """`xai`: the rubric's questions. Built by the plugin at collection, not collected from a file."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []


class QuestionNode(pytest.Collector):
    """`xai::<question>`: that question's criteria."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []


class CriterionItem(pytest.Item):
    """`xai::<question>::<criterion>`: passes at full points."""

    def __init__(self, *, question: str, criterion: Criterion, grading: SubmissionSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.question = question
        self.criterion = criterion
        self.grading = grading
        if criterion.manual:
            self.add_marker(pytest.mark.xai_manual)

    def runtest(self) -> None:
        try:
            result = self.grading.result()
        except GradingFailed as error:
            raise CriterionShortfall(str(error)) from None
        if result.status != "graded":
            raise CriterionShortfall(self._failed_text(result))
        scored = _criterion(result, self.question, self.name)
        if scored is None:
            raise CriterionShortfall(f"{self.name}: not in result.json (the rubric and the result disagree)")
        if scored.manual:
            done = "" if scored.score is None else f"; the TA's score: {scored.score:g}"
            pytest.skip(f"manual: the TA scores '{scored.description or scored.id}' ({scored.max_score:g} pt) "
                        f"from the written answer{done}")
        if scored.score is None or scored.score < scored.max_score - FULL_POINTS_SLACK:
            raise CriterionShortfall(self._shortfall_text(result, scored))

    def _shortfall_text(self, result: Result, scored: CriterionResult) -> str:
        points = 0.0 if scored.score is None else scored.score
        measured = f"{scored.value:.4g}" if scored.value is not None else "nothing (" + (scored.message or "no value") + ")"
        if scored.value is not None and scored.interval is not None:
            measured += f" (95% interval {scored.interval[0]:.4g} to {scored.interval[1]:.4g})"
        lines = [f"{self.question}/{scored.id}: {points:g} of {scored.max_score:g} points"
                 f"{' (the TA overrode it)' if scored.overridden else ''}",
                 f"  {scored.description}" if scored.description else "",
                 f"  measured: {measured}",
                 f"  bands: {scored.threshold or self.criterion.describe_bands()} (the best band the whole "
                 "interval clears gives the points)" + (", borderline" if scored.borderline else ""),
                 f"  metric: {self.criterion.metric}" + (f": {scored.message}" if scored.value is not None
                                                          and scored.message else ""),
                 f"  report: {self.grading.output_folder / 'report.pdf'}"]
        return "\n".join(line for line in lines if line)

    def _failed_text(self, result: Result) -> str:
        errors = [f"  fix ({error.stage}): {error.message}" for error in result.errors] or ["  (no error recorded)"]
        return "\n".join([f"the submission {result.folder or self.grading.submission} failed to grade "
                          f"(status {result.status}), so {self.question}/{self.name} scores 0 of "
                          f"{self.criterion.points:g} points; what to fix:", *errors])

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CriterionShortfall):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{ROOT_ID}::{self.question}::{self.name}"


def _criterion(result: Result, question: str, criterion: str) -> CriterionResult | None:
    scored = result.question(question)
    return None if scored is None else next((c for c in scored.criteria if c.id == criterion), None)


# --- fixtures for the staff's own tests --------------------------------------------------------


class ArrayFiles(Mapping[str, Mapping[str, "np.ndarray"]]):
    """arrays/<name>.npz by name (saliency, filters, lime, probes, confusion, ...), each read whole on
    first use (no pickles) into a read-only mapping of array name -> numpy array."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._read: dict[str, Mapping[str, np.ndarray]] = {}

    def _files(self) -> dict[str, Path]:
        return {path.stem: path for path in sorted(self.folder.glob("*.npz"))} if self.folder.is_dir() else {}

    def __getitem__(self, name: str) -> Mapping[str, np.ndarray]:
        if name not in self._read:
            path = self._files().get(name)
            if path is None:
                raise KeyError(f"no arrays/{name}.npz in {self.folder} (there are: {', '.join(self._files()) or 'none'})")
            import numpy as np

            with np.load(path, allow_pickle=False) as arrays:
                self._read[name] = MappingProxyType({key: arrays[key] for key in arrays.files})
        return self._read[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files())

    def __len__(self) -> int:
        return len(self._files())

    def __repr__(self) -> str:
        return f"ArrayFiles({self.folder}: {', '.join(self._files())})"


def _grading(request: pytest.FixtureRequest) -> SubmissionSession:
    grading = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    if grading is None:
        pytest.skip("no submission to check: run pytest with --xai-submission PATH [--xai-kit KIT]")
    return grading


@pytest.fixture(scope="session")
def xai_result(request: pytest.FixtureRequest) -> Result:
    """The graded submission's Result (graded once per session)."""
    return _grading(request).result()


@pytest.fixture(scope="session")
def xai_output(request: pytest.FixtureRequest, xai_result: Result) -> Path:
    """The student's output folder: result.json, report.pdf, arrays/, figures/."""
    return _grading(request).output_folder


@pytest.fixture(scope="session")
def xai_arrays(xai_output: Path) -> ArrayFiles:
    """arrays/<name>.npz by name, each a mapping of array name -> numpy array, read on first use."""
    return ArrayFiles(xai_output / "arrays")


@pytest.fixture(scope="session")
def xai_figures(xai_output: Path) -> dict[str, Path]:
    """figures/<name>.png by name (the PDF's figures, confusion_matrix among them)."""
    folder = xai_output / "figures"
    return {path.stem: path for path in sorted(folder.glob("*.png"))} if folder.is_dir() else {}
