"""The review page in Debian's Chromium (Playwright), served by `grader review` as a TA runs it:
one question graded for every student by keyboard alone and exported; two TAs saving the same
criterion (the second is told, nothing is lost); the server killed with SIGKILL and restarted with
every saved score present."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_review_api import STUDENTS, graded_class

GRADER = [sys.executable, "-m", "grader.cli"]


@pytest.fixture
def out(tmp_path) -> Path:
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("L", (48, 48), 128).save(png, format="PNG")
    return graded_class(tmp_path / "out", png.getvalue())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`grader review OUT` in a subprocess, as a TA starts it."""

    def __init__(self, out: Path) -> None:
        self.out, self.port = out, _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> Server:
        self.process = subprocess.Popen([*GRADER, "review", str(self.out), "--rubric", str(ROOT / "rubric.yaml"),
                                         "--port", str(self.port)], cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "api/questions", timeout=1).read()
                return self
            except OSError:
                assert self.process.poll() is None, self.process.stdout.read().decode()
                time.sleep(0.2)
        raise AssertionError("grader review did not start within 60 s")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def server(out) -> Iterator[Server]:
    running = Server(out).start()
    yield running
    if running.process.poll() is None:
        running.process.terminate()
        running.process.wait()


def open_page(browser, server: Server, ta: str):
    page = browser.new_context().new_page()
    page.goto(server.url)
    page.locator("#student").filter(has_text="b0").wait_for()
    page.fill("#grader-name", ta)
    page.locator("#grader-name").blur()
    return page


def saved(page) -> None:
    """Wait until the page says how the save went (locators work under the page's CSP, which forbids
    the eval that wait_for_function needs)."""
    from playwright.sync_api import expect

    expect(page.locator("#status")).not_to_have_text("")


def exported(out: Path) -> list[dict]:
    target = out / "scores.csv"
    subprocess.run([*GRADER, "review", str(out), "--rubric", str(ROOT / "rubric.yaml"), "--export", str(target)],
                   cwd=ROOT, check=True, capture_output=True)
    with target.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_ta_grades_one_question_for_the_class_by_keyboard_alone(browser, server, out):
    page = open_page(browser, server, "Ann")
    from playwright.sync_api import expect

    for student in STUDENTS:
        expect(page.locator("#student")).to_contain_text(student)
        page.keyboard.press("1")
        page.keyboard.press("2")
        page.keyboard.press("s")
        expect(page.locator("#status")).to_have_text("saved")
        shown = page.text_content("#student")
        page.keyboard.press("j")
        if student != STUDENTS[-1]:
            expect(page.locator("#student")).not_to_have_text(shown)
    assert page.text_content("#progress") == "3/3 graded"
    rows = exported(out)
    assert [(r["student_id"], r["criterion"], float(r["points"])) for r in rows] == [
        (student, "q1_answer", 0.5) for student in STUDENTS]


def test_the_second_of_two_tas_saving_one_criterion_is_told_and_nothing_is_lost(browser, server):
    ann, bob = open_page(browser, server, "Ann"), open_page(browser, server, "Bob")
    ann.keyboard.press("1")
    ann.keyboard.press("s")
    saved(ann)
    bob.keyboard.press("2")
    bob.keyboard.press("s")
    saved(bob)
    assert "Not saved" in bob.text_content("#status") and "Ann saved 0.25" in bob.text_content("#status")
    history = urllib.request.urlopen(server.url + "api/history/b01/q1_answer").read().decode()
    assert '"grader":"Ann"' in history.replace(" ", "") and '"grader":"Bob"' in history.replace(" ", "")


def test_scores_saved_before_a_sigkill_are_there_after_a_restart(browser, server, out):
    page = open_page(browser, server, "Ann")
    page.keyboard.press("1")
    page.keyboard.press("s")
    saved(page)
    assert page.text_content("#status") == "saved"
    server.kill()
    restarted = Server(out)
    restarted.port = server.port
    restarted.start()
    try:
        view = urllib.request.urlopen(restarted.url + "api/questions/q1/students/b01").read().decode()
        assert '"score":0.25' in view.replace(" ", "")
    finally:
        restarted.process.terminate()
        restarted.process.wait()
