"""The review page with a class of 200 (issue 15): how long the question page takes to load (the
students list plus one student's evidence, as the page asks for them) and how long a save takes,
over HTTP against `grader review` as a TA runs it. Targets: under 300 ms and under 50 ms.

    .venv/bin/python bench/review_latency.py [--students 200] [--repeats 30]

The class is generated: result.json files shaped like the examples' (four questions, the default
rubric's criteria, an answer and a figure each), no grading run.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.result import CriterionResult, FigureRecord, QuestionResult, Result  # noqa: E402
from grader.scoring.rubric import load_rubric  # noqa: E402


def generated_class(out: Path, students: int) -> None:
    rubric = load_rubric(ROOT / "rubric.yaml")
    png = (ROOT / "docs" / "review" / "review-page.png").read_bytes()
    for index in range(students):
        student_id = f"b{index:08d}"
        questions = [QuestionResult(id=q.id, title=q.title, score=0.0, max_score=q.points, criteria=[
            CriterionResult(id=c.id, description=c.description, score=None if c.manual else c.points / 2,
                            max_score=c.points, manual=c.manual, value=None if c.manual else 0.5)
            for c in q.criteria]) for q in rubric.questions]
        folder = out / student_id
        (folder / "figures").mkdir(parents=True)
        (folder / "figures" / "saliency.png").write_bytes(png)
        Result(student_id=student_id, name=f"Student {index}", status="graded", questions=questions,
               tool_version="bench", answers={q.id: "The maps light up the mouth and the eyes. " * 20
                                               for q in rubric.questions},
               figures=[FigureRecord(question="q1", path="figures/saliency.png")]).write(folder / "result.json")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out"
        generated_class(out, args.students)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "grader.cli", "review", str(out), "--rubric",
                                   str(ROOT / "rubric.yaml"), "--port", str(port)], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    page = urllib.request.urlopen(base + "/", timeout=1).read().decode()
                    break
                except OSError:
                    time.sleep(0.2)
            csrf = page.split('name="csrf-token" content="')[1].split('"')[0]

            def load_page(student: str) -> None:
                urllib.request.urlopen(f"{base}/api/questions").read()
                urllib.request.urlopen(f"{base}/api/questions/q1/students?order=shuffle&grader=Ann").read()
                urllib.request.urlopen(f"{base}/api/questions/q1/students/{student}").read()

            versions: dict[str, int] = {}

            def save(student: str) -> None:
                body = {"student_id": student, "criterion_id": "q1_answer", "grader": "Ann",
                        "items": ["names_parts"], "expected_version": versions.get(student, 0)}
                request = urllib.request.Request(f"{base}/api/scores", data=json.dumps(body).encode(), method="POST",
                                                 headers={"Content-Type": "application/json", "X-CSRF-Token": csrf})
                versions[student] = json.loads(urllib.request.urlopen(request).read())["version"]

            students = [f"b{i:08d}" for i in range(args.students)]
            load_page(students[0])  # warm
            loads = [timed(lambda s=s: load_page(s)) for s in students[:args.repeats]]
            saves = [timed(lambda s=s: save(s)) for s in students[:args.repeats]]
        finally:
            server.terminate()
            server.wait()
    for what, values, target in (("question page (questions, students, one student)", loads, 300),
                                 ("save (one criterion from rubric items)", saves, 50)):
        print(f"{what}: median {statistics.median(values):.1f} ms, p95 "
              f"{sorted(values)[int(0.95 * (len(values) - 1))]:.1f} ms over {len(values)} "
              f"(target under {target} ms)")
    print(f"class of {args.students} students, SQLite in WAL mode, grader review over HTTP on 127.0.0.1")


if __name__ == "__main__":
    main()
