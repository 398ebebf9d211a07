"""The review workspace's JSON API over a graded output folder: the evidence of one student for one
question, saving scores from rubric items with optimistic concurrency, regrade requests, and the
guards (a cross-site POST, a missing CSRF token, a path out of the folder, a remote host without
its token, a malformed body: each a 4xx with a message)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from grader.result import ClaimResult, CriterionResult, FigureRecord, QuestionResult, Result
from grader.review.app import create_app
from grader.review.database import open_database
from grader.review.security import CSRF_HEADER, Guards
from grader.review.store import ReviewStore
from grader.scoring.rubric import load_rubric
from tests.conftest import ROOT

STUDENTS = ("b01", "b02", "b03")


def result(student_id: str) -> Result:
    questions = [QuestionResult(id="q1", title="Saliency maps", score=0.25, max_score=2.0, criteria=[
        CriterionResult(id="q1_complete", score=0.25, max_score=0.25, value=1.0, message="share of panels"),
        CriterionResult(id="q1_answer", score=None, max_score=1.0, manual=True)])]
    return Result(student_id=student_id, name=f"<b>{student_id}</b>", status="graded", questions=questions,
                  tool_version="test", answers={"q1": "The maps light up the mouth."},
                  claims=[ClaimResult(question="q1", quote="The maps light up the mouth.", kind="attention",
                                      subject=["mouth"], verdict="contradicted", measure="part_share",
                                      source="saliency", values={"mouth_share": 0.01, "mouth_area": 0.02,
                                                                 "mouth_ratio": 0.5, "mouth_on_masks": 1.0,
                                                                 "supported_at": 1.5, "contradicted_at": 1.0})],
                  figures=[FigureRecord(question="q1", path="figures/saliency.png", caption="one face per class")])


def graded_class(out: Path, figure: bytes) -> Path:
    """A graded output folder of STUDENTS written by hand (no grading run), each with `figure` as
    its Q1 figure."""
    for student_id in STUDENTS:
        (out / student_id / "figures").mkdir(parents=True)
        result(student_id).write(out / student_id / "result.json")
        (out / student_id / "figures" / "saliency.png").write_bytes(figure)
    return out


@pytest.fixture
def out(tmp_path) -> Path:
    (tmp_path / "secret.png").write_bytes(b"not for the TA's browser")
    return graded_class(tmp_path / "out", b"\x89PNG fake")


@pytest.fixture
def guards() -> Guards:
    return Guards()


@pytest.fixture
def client(out, guards) -> TestClient:
    rubric = load_rubric(ROOT / "rubric.yaml")
    store = ReviewStore(open_database(out / "review.sqlite"))
    store.import_class(out, rubric)
    return TestClient(create_app(out, rubric, store, guards), base_url="http://127.0.0.1:8000")


def post(client: TestClient, guards: Guards, url: str, body: dict):
    return client.post(url, json=body, headers={CSRF_HEADER: guards.csrf_token})


def score_body(**changes) -> dict:
    return {"student_id": "b01", "criterion_id": "q1_answer", "grader": "Ann", "items": ["names_parts", "compares_classes"],
            "expected_version": 0} | changes


def test_the_questions_list_their_manual_criteria_items_and_progress(client):
    q1 = client.get("/api/questions").json()[0]
    assert q1["id"] == "q1" and q1["progress"] == {"graded": 0, "total": 3}
    assert [c["id"] for c in q1["manual"]] == ["q1_answer"] and q1["manual"][0]["items"]


def test_a_students_view_holds_the_answer_the_automatic_criteria_and_the_figures(client):
    view = client.get("/api/questions/q1/students/b02").json()
    assert view["answer"] == "The maps light up the mouth." and view["name"] == "<b>b02</b>"
    assert [c["id"] for c in view["automatic"]] == ["q1_complete"]
    assert view["figures"] == [{"url": "/files/b02/figures/saliency.png", "caption": "one face per class"}]
    assert client.get(view["figures"][0]["url"]).content == b"\x89PNG fake"


def test_a_students_view_shows_what_the_answer_claims_and_what_was_measured(client):
    [claim] = client.get("/api/questions/q1/students/b01").json()["claims"]
    assert (claim["verdict"], claim["css"], claim["claim"]) == ("contradicted", "contradicted", "the model looks at mouth")
    assert claim["evidence"].startswith("saliency maps: mouth 0.50× its area")


def test_a_score_from_rubric_items_is_saved_with_its_version(client, guards):
    response = post(client, guards, "/api/scores", score_body())
    assert response.status_code == 200, response.text
    assert response.json()["score"] == 0.5 and response.json()["version"] == 1
    assert client.get("/api/questions").json()[0]["progress"]["graded"] == 1


def test_the_second_ta_saving_the_same_version_gets_a_conflict_with_the_first_tas_value(client, guards):
    assert post(client, guards, "/api/scores", score_body()).status_code == 200
    response = post(client, guards, "/api/scores", score_body(grader="Bob", items=["names_parts"]))
    assert response.status_code == 409
    assert response.json()["current"]["grader"] == "Ann" and response.json()["current"]["score"] == 0.5
    history = client.get("/api/history/b01/q1_answer").json()
    assert [(h["grader"], h["applied"]) for h in history] == [("Ann", True), ("Bob", False)]


def test_students_can_be_walked_in_a_stable_shuffle_per_ta_and_filtered(client, guards):
    ann = [s["student_id"] for s in client.get("/api/questions/q1/students?order=shuffle&grader=Ann").json()]
    assert ann == [s["student_id"] for s in client.get("/api/questions/q1/students?order=shuffle&grader=Ann").json()]
    assert sorted(ann) == list(STUDENTS)
    post(client, guards, "/api/scores", score_body())
    ungraded = client.get("/api/questions/q1/students?show=ungraded").json()
    assert [s["student_id"] for s in ungraded] == ["b02", "b03"]


def listed(client: TestClient, query: str) -> list[str]:
    return [s["student_id"] for s in client.get(f"/api/questions/q1/students?{query}").json()]


def test_a_save_refused_as_a_conflict_lists_the_student_under_conflicts_until_its_ta_saves_again(client, guards):
    post(client, guards, "/api/scores", score_body())
    post(client, guards, "/api/scores", score_body(grader="Bob", items=["names_parts"]))
    assert listed(client, "show=conflicts") == ["b01"]
    post(client, guards, "/api/scores", score_body(grader="Bob", items=["names_parts"], expected_version=1))
    assert listed(client, "show=conflicts") == []


def test_a_question_given_to_a_ta_lists_its_students_as_theirs_but_those_given_to_another(client, guards):
    assert post(client, guards, "/api/assignments", {"ta": "Ann", "grader": "Head", "question_id": "q1"}).status_code == 200
    assert post(client, guards, "/api/assignments", {"ta": "Bob", "grader": "Head", "student_ids": ["b02"]}).status_code == 200
    assert listed(client, "show=mine&grader=Ann") == ["b01", "b03"]
    assert listed(client, "show=mine&grader=Bob") == ["b02"]
    assert client.get("/api/questions").json()[0]["assigned_to"] == "Ann"
    assert [s["assigned_to"] for s in client.get("/api/questions/q1/students").json()] == ["Ann", "Bob", "Ann"]


def test_the_latest_assignment_of_a_student_wins(client, guards):
    post(client, guards, "/api/assignments", {"ta": "Ann", "grader": "Head", "student_ids": ["b01", "b02"]})
    post(client, guards, "/api/assignments", {"ta": "Bob", "grader": "Head", "student_ids": ["b02"]})
    assert listed(client, "show=mine&grader=Ann") == ["b01"]


def test_assigning_an_unknown_student_assigns_none_of_the_list(client, guards):
    response = post(client, guards, "/api/assignments", {"ta": "Ann", "grader": "Head", "student_ids": ["b01", "zz9"]})
    assert response.status_code == 404 and "no graded student 'zz9'" in response.json()["error"]
    assert client.get("/api/assignments").json() == []


def test_an_assignment_names_a_question_or_students_not_both(client, guards):
    response = post(client, guards, "/api/assignments", {"ta": "Ann", "grader": "Head", "question_id": "q1",
                                                          "student_ids": ["b01"]})
    assert response.status_code == 400 and "one of them" in response.json()["error"]


def test_a_regrade_request_is_made_listed_and_resolved(client, guards):
    made = post(client, guards, "/api/regrades", {"student_id": "b03", "criterion_id": "q1_answer",
                                                  "text": "I did name the eyes"}).json()
    assert [r["id"] for r in client.get("/api/regrades?status=open").json()] == [made["id"]]
    assert [s["student_id"] for s in client.get("/api/questions/q1/students?show=regrades").json()] == ["b03"]
    resolved = post(client, guards, f"/api/regrades/{made['id']}/resolve", {"grader": "Ann", "comment": "agreed"})
    assert resolved.json()["status"] == "resolved" and resolved.json()["resolution"] == "agreed"


def test_a_post_without_the_csrf_token_is_refused(client):
    response = client.post("/api/scores", json=score_body())
    assert response.status_code == 403 and "CSRF" in response.json()["error"]


def test_a_cross_site_post_is_refused_even_with_a_token(client, guards):
    response = client.post("/api/scores", json=score_body(),
                           headers={CSRF_HEADER: guards.csrf_token, "Origin": "http://evil.example"})
    assert response.status_code == 403 and "another site" in response.json()["error"]


@pytest.mark.parametrize("path", ["/files/b01/../../secret.png", "/files/b01/%2e%2e/%2e%2e/secret.png",
                                  "/files/b01/result.json", "/files/nobody/figures/saliency.png"])
def test_only_figures_and_reports_inside_the_output_folder_are_served(client, path):
    assert client.get(path).status_code == 404


def test_a_malformed_or_impossible_score_is_a_4xx_with_a_message(client, guards):
    assert post(client, guards, "/api/scores", {"student_id": "b01"}).status_code == 422
    unknown_item = post(client, guards, "/api/scores", score_body(items=["nope"]))
    assert unknown_item.status_code == 400 and "no item 'nope'" in unknown_item.json()["error"]
    automatic = post(client, guards, "/api/scores", score_body(criterion_id="q1_complete"))
    assert automatic.status_code == 400 and "not a manual criterion" in automatic.json()["error"]
    stranger = post(client, guards, "/api/scores", score_body(student_id="zz9"))
    assert stranger.status_code == 400 and "zz9" in stranger.json()["error"]


def test_a_remote_host_needs_the_printed_token(out):
    guards = Guards.for_host("0.0.0.0")
    rubric = load_rubric(ROOT / "rubric.yaml")
    store = ReviewStore(open_database(out / "review.sqlite"))
    store.import_class(out, rubric)
    client = TestClient(create_app(out, rubric, store, guards))
    assert client.get("/api/questions").status_code == 403
    assert client.get(f"/api/questions?token={guards.access_token}").status_code == 200
    assert client.get("/api/questions").status_code == 200  # the cookie it set


def test_new_points_for_an_item_score_again_every_student_who_has_it(client, guards):
    for student, items in (("b01", ["names_parts", "compares_classes"]), ("b02", ["compares_classes"]),
                           ("b03", ["names_parts"])):
        assert post(client, guards, "/api/scores", score_body(student_id=student, items=items)).status_code == 200
    changed = post(client, guards, "/api/items", {"criterion_id": "q1_answer", "item_id": "names_parts",
                                                  "points": 0.5, "grader": "Ann"})
    assert changed.status_code == 200 and changed.json()["rescored"] == 2
    scores = {s: client.get(f"/api/questions/q1/students/{s}").json()["manual"][0]["saved"]["score"]
              for s in STUDENTS}
    assert scores == {"b01": 0.75, "b02": 0.25, "b03": 0.5}
    items = client.get("/api/questions").json()[0]["manual"][0]["items"]
    assert next(i for i in items if i["id"] == "names_parts")["points"] == 0.5
    assert [h["new"]["score"] for h in client.get("/api/history/b01/q1_answer").json()] == [0.5, 0.75]


def test_item_points_that_put_full_marks_out_of_reach_are_refused(client, guards):
    refused = post(client, guards, "/api/items", {"criterion_id": "q1_answer", "item_id": "names_parts",
                                                  "points": 0.0, "grader": "Ann"})
    assert refused.status_code == 400 and "full marks" in refused.json()["error"]
