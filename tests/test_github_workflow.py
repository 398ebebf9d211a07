"""GitHub Classroom (grader/pipeline/classroom.py, `grader kit --github-workflow`): the workflow written for
student repositories is valid YAML with the steps the README names. Fast: nothing is graded."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from grader.cli import app
from grader.pipeline.classroom import WHEEL_PLACEHOLDER

runner = CliRunner()
WHEEL = "https://course.example.edu/xai_grader-0.1.0-py3-none-any.whl"


def steps_of(path: Path) -> tuple[dict, list[dict]]:
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    return workflow, workflow["jobs"]["check"]["steps"]


def step(steps: list[dict], text: str) -> dict:
    found = [s for s in steps if text in s.get("run", "") or text in s.get("uses", "")]
    assert len(found) == 1, (text, steps)
    return found[0]


def test_the_workflow_installs_the_pinned_tools_checks_on_push_and_uploads_the_pdf(tmp_path):
    target = tmp_path / "template" / ".github" / "workflows" / "xai-grader.yml"

    run = runner.invoke(app, ["kit", "--github-workflow", str(target), "--wheel-url", WHEEL])

    assert run.exit_code == 0, run.output
    workflow, steps = steps_of(target)
    assert "push" in workflow.get("on", workflow.get(True))  # PyYAML reads the key `on` as YAML 1.1's true
    assert workflow["env"] == {"XAI_GRADER_WHEEL": WHEEL, "XAI_KIT": "course-kit.zip"}
    assert steps[0]["uses"] == "actions/checkout@v4"
    assert step(steps, "actions/setup-python")["with"]["python-version"] == "3.11"
    assert "bubblewrap fonts-noto-cjk" in step(steps, "apt-get install")["run"]
    install = step(steps, "pip install")["run"]
    assert '"torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu' in install
    assert 'pip install "$XAI_GRADER_WHEEL"' in install
    check = step(steps, "grader check")
    assert check["run"] == 'grader check . --kit "$XAI_KIT_PATH" --out check-out' and "if" not in check
    upload = step(steps, "actions/upload-artifact@v4")
    assert upload["if"] == "always()" and upload["with"]["path"] == "check-out/**/report.pdf"
    assert steps[-1] is upload and steps.index(check) < len(steps) - 1
    assert "__XAI_" not in target.read_text()


def test_a_kit_and_its_workflow_in_one_command_and_the_placeholder_without_a_wheel(tmp_path, small_eval_csv):
    target = tmp_path / "xai-grader.yml"

    run = runner.invoke(app, ["kit", "--data", str(small_eval_csv), "--out", str(tmp_path / "hw3-kit.zip"),
                              "--quick", "--github-workflow", str(target)])

    assert run.exit_code == 0, run.output
    assert (tmp_path / "hw3-kit.zip").is_file()
    workflow, _ = steps_of(target)
    assert workflow["env"] == {"XAI_GRADER_WHEEL": WHEEL_PLACEHOLDER, "XAI_KIT": "hw3-kit.zip"}
    assert "no --wheel-url" in run.output


def test_a_url_with_quotes_stays_one_yaml_string_and_an_existing_workflow_is_kept(tmp_path):
    target = tmp_path / "w.yml"
    odd = 'https://example.edu/kit.zip?a="b": c # d'

    first = runner.invoke(app, ["kit", "--github-workflow", str(target), "--workflow-kit", odd, "--wheel-url", WHEEL])
    again = runner.invoke(app, ["kit", "--github-workflow", str(target), "--wheel-url", "other.whl"])

    assert first.exit_code == 0, first.output
    assert steps_of(target)[0]["env"]["XAI_KIT"] == odd
    assert again.exit_code == 2 and "already exists" in again.output
    assert steps_of(target)[0]["env"]["XAI_GRADER_WHEEL"] == WHEEL


def test_kit_needs_data_and_out_or_a_workflow(tmp_path):
    assert runner.invoke(app, ["kit"]).exit_code == 2
    assert runner.invoke(app, ["kit", "--out", str(tmp_path / "k.zip")]).exit_code == 2
