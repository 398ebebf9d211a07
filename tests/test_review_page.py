"""The review page in Debian's Chromium (Playwright), served by `grader review` as a TA runs it:
one question graded for every student by keyboard alone and exported; two TAs saving the same
criterion (the second is told, nothing is lost); the server killed with SIGKILL and restarted with
every saved score present; reusable comments, the history, assignments, an item's points and a
regrade request worked from the page; a path out of the folder and a cross-site POST refused.
(The six real examples graded by keyboard, with their regenerated PDFs: test_grade_e2e.py.)"""

from __future__ import annotations

import csv
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
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

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()

    def get(self, path: str) -> str:
        return urllib.request.urlopen(self.url + path).read().decode()


@pytest.fixture
def server(out) -> Iterator[Server]:
    running = Server(out).start()
    yield running
    running.stop()


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


def test_a_comment_kept_for_reuse_is_added_with_r_and_its_number(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server, "Ann")
    page.fill("#comment", "Compare the classes next time.")
    page.click("#keep-comment")
    expect(page.locator("#reusable")).to_contain_text("1: Compare the classes next time.")
    page.keyboard.press("j")
    expect(page.locator("#student")).to_contain_text("b02")
    page.keyboard.press("r")
    page.keyboard.press("1")
    assert page.input_value("#comment") == "Compare the classes next time."


def test_the_history_shows_who_changed_a_score_from_what_to_what(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server, "Ann")
    page.keyboard.press("1")
    page.keyboard.press("s")
    saved(page)
    page.keyboard.press("2")
    page.keyboard.press("s")
    expect(page.locator("#status")).to_have_text("saved")
    page.keyboard.press("h")
    rows = page.locator("#history tr")
    expect(rows).to_have_count(3)
    assert "Ann" in rows.nth(2).text_content()
    assert "0.25 [names_parts]" in rows.nth(2).text_content() and "0.5 [names_parts, compares_classes]" in rows.nth(2).text_content()


def test_students_split_between_two_tas_are_each_tas_own_list(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server, "Ann")
    page.click("#assign-box summary")
    page.fill("#split-tas", "Ann, Bob")
    page.click("#split-students")
    expect(page.locator("#status")).to_have_text("3 students split among Ann, Bob")
    page.select_option("#show", "mine")
    expect(page.locator("#position")).to_have_text("student 1 of 2")
    expect(page.locator("#student")).to_contain_text("b01")
    page.keyboard.press("j")
    expect(page.locator("#student")).to_contain_text("b03 ")
    assert "Bob" in server.get("api/questions/q1/students?show=mine&grader=Bob")


def test_new_points_for_an_item_from_the_page_score_its_students_again(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server, "Ann")
    page.keyboard.press("1")
    page.keyboard.press("s")
    saved(page)
    page.click("#points-box summary")
    page.select_option("#points-item", index=0)
    page.fill("#points-value", "0.5")
    page.click("#points-apply")
    expect(page.locator("#status")).to_have_text("names_parts is now 0.5 points: 1 student(s) scored again")
    expect(page.locator("#manual")).to_contain_text("saved: 0.5 by Ann")


def test_a_regrade_request_recorded_in_the_page_is_queued_and_resolved_there(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server, "Ann")
    page.click("#regrade-box summary")
    page.fill("#regrade-text", "I did <b>name</b> the eyes")
    page.click("#regrade-add")
    expect(page.locator("#regrades")).to_contain_text("(open): I did <b>name</b> the eyes")
    page.select_option("#show", "regrades")
    expect(page.locator("#position")).to_have_text("student 1 of 1")
    expect(page.locator("#student")).to_have_attribute("aria-busy", "false")  # drawn: typing is not redrawn away
    page.fill("#regrades .resolution", "Agreed: +0.25")
    page.click("#regrades button")
    expect(page.locator("#regrades")).to_contain_text("Ann: Agreed: +0.25")
    assert '"status":"resolved"' in server.get("api/regrades").replace(" ", "")


@pytest.mark.parametrize("path", ["files/b01/%2e%2e/%2e%2e/secret.png", "files/b01/..%2f..%2fsecret.png",
                                  "files/%2e%2e/secret.png", "files/b01/result.json"])
def test_the_browser_gets_no_file_outside_the_figures_and_reports(browser, server, out, path):
    (out.parent / "secret.png").write_bytes(b"outside the output folder")
    response = browser.new_context().new_page().goto(server.url + path)
    assert response.status == 404 and b"outside" not in response.body()


ATTACK = """<!doctype html><form id="f" method="post" action="{target}api/scores" enctype="text/plain">
<input name='{{"student_id":"b01","criterion_id":"q1_answer","grader":"Eve","score":1,"expected_version":0,"x":"' value='"}}'>
</form><script>
fetch("{target}api/scores", {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain", "X-CSRF-Token": "guess"}},
  body: JSON.stringify({{student_id: "b01", criterion_id: "q1_answer", grader: "Eve", items: ["names_parts"],
                         expected_version: 0}})}}).finally(() => document.getElementById("f").submit());
</script>"""


def test_a_cross_site_page_cannot_post_a_score(browser, server):
    """Another site open in the TA's browser posts to the review server by fetch and by a form: both
    reach it and are refused (403), and no score is stored."""
    evil = ATTACK.format(target=server.url).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(evil)

        def log_message(self, *args):
            pass

    site = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        page = browser.new_context().new_page()
        refused = []
        page.on("response", lambda r: refused.append(r.status) if r.url.endswith("/api/scores") else None)
        page.goto(f"http://localhost:{site.server_port}/")
        page.wait_for_url(server.url + "api/scores")
        assert refused == [403, 403]
        assert "another site" in page.content()
    finally:
        site.shutdown()
    assert '"saved":null' in server.get("api/questions/q1/students/b01").replace(" ", "")


def test_keys_pressed_faster_than_the_server_answers_show_the_student_they_lead_to(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server, "Ann")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("j")
    expect(page.locator("#position")).to_have_text("student 3 of 3")
    expect(page.locator("#student")).to_contain_text("b03")
    page.wait_for_timeout(300)  # any earlier answer arriving late must not replace it
    expect(page.locator("#student")).to_contain_text("b03")


def test_the_answers_claims_and_their_verdicts_are_shown_beside_it(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server, "Ann")
    expect(page.locator("#claims .claim.contradicted")).to_contain_text("the model looks at mouth")
    assert "mouth 0.50× its area" in page.text_content("#claims .evidence")
