"""Print every registered metric for every submission under a folder, to set rubric.yaml's bands.

    python scripts/calibrate_rubric.py [SUBMISSIONS] [--quick] [--profile cpu|fast]

Grades in-process (trusted submissions only: the course's examples) on the bundled evaluation
set, with a rubric that scores every metric, and prints one row per metric, one column per
student: the value and its 95% bootstrap interval. The default rubric's thresholds were set from this table (see rubric.yaml's comments).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd

from grader.data.bundled import bundled_evaluation
from grader.pipeline.class_run import grade_class
from grader.pipeline.setup import load_setup
from grader.questions.settings import TaskSettings
from grader.quiet import quiet_libraries
from grader.scoring.metrics import METRICS
from grader.scoring.rubric import Band, Criterion, Question, Rubric

QUESTION_OF = {"saliency": ("q1", "saliency"), "filter": ("q2", "filters"), "lime": ("q3", "lime"),
               "freeform": ("q4", "freeform"), "class_model": ("q4", "freeform")}
"""The default rubric's question whose output each metric reads, by the metric name's prefix
(metrics of the evaluation, such as accuracy, go with Q3, which reads the confusion matrix)."""


def every_metric_rubric() -> Rubric:
    """The default rubric's four questions and methods, each with every metric that reads its output."""
    by_question: dict[tuple[str, str], list[Criterion]] = {}
    for name in METRICS:
        key = next((q for prefix, q in QUESTION_OF.items() if name.startswith(prefix)), ("q3", "lime"))
        by_question.setdefault(key, []).append(Criterion(id=name, metric=name, points=1,
                                                         bands=[Band(min=-1e9, points=1)]))
    return Rubric(questions=[Question(id=qid, title=method, method=method, points=len(criteria), criteria=criteria)
                             for (qid, method), criteria in sorted(by_question.items())])


def main(argv: list[str]) -> None:
    quiet_libraries()
    settings = TaskSettings.quick() if "--quick" in argv else TaskSettings()
    profile = argv[argv.index("--profile") + 1] if "--profile" in argv else "cpu"
    argv = [a for a in argv if a not in ("--profile", profile)]
    folder = Path(next((a for a in argv if not a.startswith("--")), "submissions"))
    with tempfile.TemporaryDirectory() as out:
        setup = load_setup(bundled_evaluation(), every_metric_rubric(), Path(out), profile=profile, write_pdf=False,
                           isolation="inprocess", tasks=settings)
        results = grade_class(folder, setup, force=True)
    graded = [r for r in results if r.status == "graded"]
    table = pd.DataFrame({r.folder: {c.id: _cell(c.value, c.interval) for q in r.questions for c in q.criteria}
                          for r in graded})
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 40)
    print(table.to_string())


def _cell(value: float | None, interval: tuple[float, float] | None) -> str:
    """The value, with its 95% bootstrap interval (grader/scoring/uncertainty.py) when it has one."""
    if value is None:
        return "-"
    return f"{value:.3g}" + (f" [{interval[0]:.3g}, {interval[1]:.3g}]" if interval else "")


if __name__ == "__main__":
    main(sys.argv[1:])
