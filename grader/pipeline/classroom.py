"""GitHub Classroom (issue 18): the workflow a student repository runs on every push, `grader check .
--kit KIT` with the course's wheel and kit, its PDF kept as an artifact. The template ships with the
package (grader/templates/github-workflow.yml); `grader kit --github-workflow PATH` fills in where the
wheel and the kit come from and writes it."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import grader
from grader.atomic import atomic_write_text
from grader.pipeline.kit import KitError

WORKFLOW_TEMPLATE = "github-workflow.yml"
WHEEL_PLACEHOLDER = "REPLACE-WITH-THE-COURSE-XAI-GRADER-WHEEL"
"""What XAI_GRADER_WHEEL holds until the staff name the wheel; the workflow stops with a clear error on it."""


def workflow_template() -> str:
    """The template as shipped, with its __XAI_GRADER_WHEEL__, __XAI_KIT__ and __XAI_GRADER_VERSION__."""
    return (resources.files("grader") / "templates" / WORKFLOW_TEMPLATE).read_text(encoding="utf-8")


def workflow_text(*, kit: str, wheel: str | None = None) -> str:
    """The workflow for a student repository: `kit` and `wheel` are a path in that repository or a URL
    (written as YAML double-quoted strings, so any character is safe)."""
    for name, value in (("kit", kit), ("wheel", wheel or "")):
        if "\n" in value or "\r" in value:
            raise KitError(f"the workflow's {name} location may not contain a line break")
    return (workflow_template()
            .replace("__XAI_GRADER_WHEEL__", json.dumps(wheel or WHEEL_PLACEHOLDER))
            .replace("__XAI_KIT__", json.dumps(kit))
            .replace("__XAI_GRADER_VERSION__", grader.__version__))


def write_github_workflow(path: Path, *, kit: str, wheel: str | None = None) -> Path:
    """Write the workflow to `path` (its folders created); an existing file is never overwritten."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise KitError(f"{path} already exists; remove it or choose another --github-workflow path")
    text = workflow_text(kit=kit, wheel=wheel)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path
