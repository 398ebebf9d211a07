"""The TA's scores applied to a graded output folder without grading again: each student's stored
result (result.json) gets exactly the TA's scores (grader.scoring.manual_merge), and the students
whose scores changed get their result.json and PDF rewritten from it (the figures are already on
disk); then gradebook.csv. No model runs, so this takes about a second per changed PDF.

The review workspace (issue 15) and `grader grade --manual` build on this; the dashboard and the
Canvas file are rewritten by the class run that calls it."""

from __future__ import annotations

from pathlib import Path

from grader.classes import Language
from grader.outfolder import OutputLock
from grader.report.gradebook import write_gradebook
from grader.report.pdf import render_html, write_pdf
from grader.result import Result
from grader.scoring.manual import ManualScores
from grader.scoring.manual_merge import merged

RESULT_FILE = "result.json"
REPORT_FILE = "report.pdf"


def stored_results(out_dir: Path) -> list[Result]:
    """Every student's result in a graded output folder, in id order (staging folders left out)."""
    paths = sorted(p for p in Path(out_dir).glob(f"*/{RESULT_FILE}") if not p.parent.name.startswith("."))
    return [Result.read(path) for path in paths]


def with_scores(result: Result, manual: ManualScores) -> Result:
    """`result` with exactly the TA's scores for its student (a held result is left as it is)."""
    if result.status == "conflict":
        return result
    questions = merged(result.questions, manual.of(result.student_id), manual.regrades_of(result.student_id))
    return result.model_copy(update={"questions": questions, "score": sum(q.score for q in questions)})


def apply_manual_scores(out_dir: Path, manual: ManualScores, language: Language = "en",
                        write_pdfs: bool = True) -> list[Result]:
    """Apply `manual` to every stored result of `out_dir` (under its lock) and return the results;
    only the students whose scores changed are rewritten."""
    out_dir = Path(out_dir)
    with OutputLock(out_dir):
        results = []
        for stored in stored_results(out_dir):
            results.append(rescored(out_dir / stored.student_id, stored, manual, language, write_pdfs))
        write_gradebook(results, out_dir / "gradebook.csv")
        return results


def rescored(student_dir: Path, stored: Result, manual: ManualScores, language: Language = "en",
             write_pdfs: bool = True) -> Result:
    """`stored` with the TA's current scores; when they changed, its PDF and then its result.json are
    rewritten (a crash in between leaves the old result.json, so the next run rewrites both again)."""
    result = with_scores(stored, manual)
    if result != stored:
        if write_pdfs and (student_dir / REPORT_FILE).is_file():
            write_pdf(render_html(result, language), student_dir, student_dir / REPORT_FILE)
        result.write(student_dir / RESULT_FILE)
    return result
