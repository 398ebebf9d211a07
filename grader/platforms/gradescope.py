"""Gradescope: the autograder zip (`grader gradescope --kit KIT --out autograder.zip`) and the
results.json its run writes.

What Gradescope documents ("Autograder Specifications",
https://gradescope-autograders.readthedocs.io/en/latest/specs/, and "Leaderboards", .../leaderboards/):

- The zip holds `setup.sh` (a Bash script run once, as root, while Gradescope builds its Ubuntu
  image) and `run_autograder` (an executable with a `#!` line, run for every submission) at its
  root, not inside a folder. Its contents land in `/autograder/source`; `run_autograder` is copied
  to `/autograder/run_autograder` and runs with `/autograder` as its working directory.
- The student's files are in `/autograder/submission` (flat: what the student uploaded); the run
  must write `/autograder/results/results.json`. Its stdout goes to `/autograder/results/stdout`,
  shown to instructors only unless `stdout_visibility` says otherwise.
- results.json: `score` (optional if each test has one; overrides the tests' total),
  `execution_time` (seconds), `output`, `output_format`, `test_output_format`,
  `test_name_format`, `visibility`, `stdout_visibility`, `extra_data`, `tests` and `leaderboard`.
  Each test: `score`, `max_score`, `status` (`passed` | `failed`, overriding the default of
  passed exactly when score equals max_score), `name`, `name_format`, `number` (a string such as
  "1.1"), `output`, `output_format`, `tags`, `visibility`, `extra_data`.
- Formats: `text` (default for test output and names), `simple_format` (default for the top-level
  output: html with line breaks), `html` (sanitized by Gradescope), `md`, `ansi`.
- Visibility: `hidden`, `after_due_date`, `after_published`, `visible` (the default); a test's
  own visibility overrides the top level's.
- Leaderboard entries: `name`, `value` (a number or a string), `order` (`desc`, the default, or `asc`).

Our choices: one test per rubric criterion, named "<question> <criterion>" and numbered
"<question>.<criterion>"; outputs in `md` with every piece of student text through
`grader.escape.markdown_text`; manual criteria at 0 of 0 points with a note that the TA grades them
(grader.platforms.common); the top-level `score` is the automatic points; the leaderboard has
"Accuracy" (descending) when the model was evaluated; `stdout_visibility` hidden (the grader's log);
`extra_data` holds the student id, status, xai-grader version and the submission's SHA-256.
"""

from __future__ import annotations

import math
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import grader
from grader.escape import markdown_text
from grader.platforms.common import STAFF_PROBLEM, automatic_points, criterion_lines, manual_points, rows
from grader.result import Result

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
TORCH_VERSION = "2.13.0"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
SYSTEM_PACKAGES = ("bubblewrap", "fonts-noto-cjk", "poppler-utils", "libpango-1.0-0", "libpangoft2-1.0-0")
VENV = "/opt/xai-grader"
KIT_NAMES = ("kit.zip", "kit")
"""The kit inside /autograder/source: a zipped kit is copied as kit.zip, a kit folder as kit/."""


# --- results.json ----------------------------------------------------------------------------


def gradescope_results(result: Result, *, execution_time: float, notes: list[str] = (),
                       visibility: str = "visible") -> dict:
    """Gradescope's results.json for one graded (or failed) submission. `notes` are the runner's
    own lines (the sandbox fallback, a missing submission.yaml); they may name the student's files,
    so they are escaped like student text."""
    earned, possible = automatic_points(result)
    tests = [_test(row, visibility) for row in rows(result)]
    document = {
        "score": earned,
        "execution_time": max(0, round(execution_time)),
        "output": _summary(result, earned, possible, notes),
        "output_format": "md",
        "test_output_format": "md",
        "test_name_format": "text",
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "extra_data": {"student_id": result.student_id, "status": result.status,
                       "xai_grader": result.tool_version, "submission_sha256": result.submission_sha256},
        "tests": tests,
    }
    if result.accuracy is not None and result.status == "graded" and math.isfinite(result.accuracy):
        document["leaderboard"] = [{"name": "Accuracy", "value": round(float(result.accuracy), 6), "order": "desc"}]
    return document


def crash_results(message: str, *, execution_time: float, visibility: str = "visible") -> dict:
    """results.json when the autograder itself could not grade (a broken kit, a crash of ours):
    no points, and what happened, for the student to pass on to the staff."""
    return {
        "score": 0.0,
        "execution_time": max(0, round(execution_time)),
        "output": f"**The autograder could not grade this submission.** {markdown_text(message)}\n\n{STAFF_PROBLEM}",
        "output_format": "md",
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "tests": [],
    }


def _test(row, visibility: str) -> dict:
    # The rubric's text is the course's, but it may hold `*`, `<` or `_` too: escaped like the student's.
    # Each test carries the run's --visibility: a test's own visibility overrides the top level's.
    text = " ".join(markdown_text(line) for line, _ in criterion_lines(row))
    test = {"name": row.name, "number": row.number, "score": row.points, "max_score": row.max_points,
            "output": text, "output_format": "md", "visibility": visibility}
    if not row.manual:
        test["status"] = "passed" if row.points >= row.max_points else "failed"
    return test


def _summary(result: Result, earned: float, possible: float, notes: list[str]) -> str:
    """The top-level output: the score in a sentence or two, then one bullet per thing to fix or know."""
    if result.status == "graded":
        paragraphs = [f"**Automatic score: {earned:g} / {possible:g}**"]
    else:
        paragraphs = [f"**Your submission could not be graded: automatic score {earned:g} / {possible:g}.** "
                      "Fix what is listed below and submit again."]
    if result.accuracy is not None:
        paragraphs.append(f"Accuracy on the course's evaluation faces: {result.accuracy:.1%}.")
    pending = manual_points(result)
    if pending and result.status == "graded":
        paragraphs.append(f"The written answers ({pending:g} points) are graded by the TA after the deadline.")
    bullets = [f"- **Fix** ({markdown_text(error.stage)}): {markdown_text(error.message)}" for error in result.errors]
    bullets += [f"- Warning: {markdown_text(warning.message)}" for warning in result.warnings]
    bullets += [f"- Note: {markdown_text(note)}" for note in notes]
    return "\n\n".join(paragraphs + (["\n".join(bullets)] if bullets else []))


# --- the autograder zip ------------------------------------------------------------------------


SETUP_SH = """#!/usr/bin/env bash
# xai-grader {version}: Gradescope runs this once, as root, while it builds the autograder image.
# System packages: the sandbox (bubblewrap), the report fonts and Pango, poppler; then torch (CPU)
# and xai-grader from the wheel in this zip, in their own virtual environment.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends {packages} python3-venv
PY=python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    # xai-grader needs Python 3.11 or newer; Ubuntu 22.04 images have 3.10 by default.
    apt-get install -y --no-install-recommends python3.11 python3.11-venv
    PY=python3.11
fi
"$PY" -m venv {venv}
{venv}/bin/pip install --upgrade pip
{venv}/bin/pip install "torch=={torch}" --index-url {torch_index}
{venv}/bin/pip install /autograder/source/{wheel}
{venv}/bin/grader --help > /dev/null
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# xai-grader {version}: Gradescope runs this for every submission. It grades /autograder/submission
# with the course kit in /autograder/source and writes /autograder/results/results.json.
# Usage: run_autograder [ROOT [grader options]]   (ROOT: /autograder; tests use a temporary one)
root="${{1:-/autograder}}"
shift || true
grader_bin="${{XAI_GRADER_BIN:-{venv}/bin/grader}}"
[ -x "$grader_bin" ] || grader_bin=grader
mkdir -p "$root/results"
rm -f "$root/results/results.json"
"$grader_bin" autograder gradescope --root "$root" --visibility {visibility} "$@"
status=$?
if [ ! -s "$root/results/results.json" ]; then
    # The grader could not even start: still a results.json that says so, never a bare crash.
    printf '{{"score": 0, "output": "The autograder could not start (exit status %s). This is a problem with the course autograder, not with your submission: tell the course staff.", "output_format": "text", "stdout_visibility": "hidden", "tests": []}}\\n' "$status" > "$root/results/results.json"
fi
exit 0
"""


class AutograderBuildError(Exception):
    """The zip cannot be built; the message says what to do."""


@dataclass(frozen=True)
class Autograder:
    """The zip written, and the points the TA sets up in Gradescope beside it: the autograder's
    (the rubric's automatic criteria) and one manual question per manual criterion."""

    path: Path
    automatic_points: float
    manual: tuple[tuple[str, float], ...]
    """(question and criterion, points) of each manual criterion."""


def build_autograder(kit: Path, out: Path, *, wheel: Path | None = None, visibility: str = "visible") -> Autograder:
    """Write Gradescope's autograder zip to `out`: setup.sh and run_autograder at the root, the kit
    (kit.zip or kit/), and the xai-grader wheel (`wheel`, or one built from this source tree).
    The kit is checked first (grader.pipeline.kit.read_kit), so a broken kit fails here and not on
    the first student's submission."""
    from grader.pipeline.kit import KitError, read_kit
    from grader.scoring.rubric import load_rubric
    from grader.yamlfile import ConfigError

    if visibility not in VISIBILITIES:
        raise AutograderBuildError(f"--visibility must be one of {', '.join(VISIBILITIES)}, not '{visibility}'")
    out = Path(out)
    if out.exists():
        raise AutograderBuildError(f"{out} already exists; remove it or choose another --out")
    with tempfile.TemporaryDirectory(prefix="xai-gradescope-") as scratch_name:
        scratch = Path(scratch_name)
        try:
            rubric = load_rubric(read_kit(Path(kit), scratch / "check").rubric)
        except (KitError, ConfigError) as error:
            raise AutograderBuildError(str(error)) from None
        wheel = Path(wheel) if wheel is not None else build_wheel(scratch / "wheel")
        if not wheel.is_file() or not wheel.name.endswith(".whl"):
            raise AutograderBuildError(f"{wheel}: not a wheel file (xai_grader-*.whl)")
        staged = scratch / "autograder.zip"
        with zipfile.ZipFile(staged, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            _add_text(archive, "setup.sh", SETUP_SH.format(
                version=grader.__version__, packages=" ".join(SYSTEM_PACKAGES), venv=VENV, torch=TORCH_VERSION,
                torch_index=TORCH_INDEX, wheel=wheel.name))
            _add_text(archive, "run_autograder", RUN_AUTOGRADER.format(
                version=grader.__version__, venv=VENV, visibility=visibility))
            archive.write(wheel, wheel.name)
            _add_kit(archive, Path(kit))
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staged, out)
    criteria = [(question, criterion) for question in rubric.questions for criterion in question.criteria]
    return Autograder(path=out, automatic_points=sum(c.points for _, c in criteria if not c.manual),
                      manual=tuple((f"{q.id} {c.description or c.id}", c.points) for q, c in criteria if c.manual))


def _add_text(archive: zipfile.ZipFile, name: str, text: str) -> None:
    """A script, executable (0755) for whoever unpacks it: Gradescope runs both directly."""
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (stat.S_IFREG | 0o755) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)


def _add_kit(archive: zipfile.ZipFile, kit: Path) -> None:
    if kit.is_file():
        archive.write(kit, "kit.zip")
        return
    for path in sorted(kit.rglob("*")):
        if path.is_file() and not path.is_symlink():
            archive.write(path, f"kit/{path.relative_to(kit).as_posix()}")


def build_wheel(target: Path) -> Path:
    """The xai-grader wheel of this source tree, built in a scratch copy (no build/ or egg-info left
    in the tree). Needs the source checkout: an installed xai-grader has no pyproject.toml to build
    from, so then pass the course's wheel with --wheel."""
    source_root = Path(grader.__file__).resolve().parents[1]
    if not (source_root / "pyproject.toml").is_file():
        raise AutograderBuildError("this xai-grader is installed, not a source checkout: pass the wheel "
                                   "(xai_grader-*.whl) with --wheel")
    copy = target / "source"
    shutil.copytree(source_root / "grader", copy / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(source_root / name, copy / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "-w", str(target / "dist"), str(copy)], capture_output=True, text=True,
                           env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    wheels = sorted((target / "dist").glob("xai_grader-*.whl"))
    if built.returncode != 0 or len(wheels) != 1:
        raise AutograderBuildError(f"building the xai-grader wheel failed: {built.stderr.strip()[-1500:]}")
    return wheels[0]
