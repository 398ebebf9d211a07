"""The claims of a submission's answers checked against what grading measured
(grader.scoring.answer_claims), the answer_consistency metric, and the words every sink shows
(grader.report.claim_text): the PDF box in both languages, escaped."""

from __future__ import annotations

import numpy as np
import pytest

from grader.evaluate import evaluate
from grader.explain.results import AttributionMaps, ClassImages, LimeExplanation, LimeExplanations
from grader.questions.output import QuestionOutput
from grader.report.claim_text import claim_line
from grader.report.pdf import render_html
from grader.result import ClaimResult, GradientCheckSummary, Result
from grader.scoring.answer_claims import checked_claims
from grader.scoring.measurements import Measurements
from grader.scoring.metrics import METRICS, MetricUnavailable, ScoredQuestion
from tests.test_claim_verify import MOUTH, masks

LABELS = np.arange(7)


def saliency_on_mouth() -> QuestionOutput:
    faces = masks()
    maps = (faces == MOUTH).astype(np.float32)
    return QuestionOutput("q1", "saliency", AttributionMaps("saliency", np.zeros((7, 48, 48), np.uint8), LABELS, maps))


def measured(answers: dict[str, str], **changes) -> Measurements:
    logits = np.eye(7)[[3, 3, 3, 3, 1, 1, 0]] * 5
    fields = {"outputs": {"q1": saliency_on_mouth()}, "part_masks": masks(), "answers": answers,
              "evaluation": evaluate(logits, np.array([3, 3, 3, 3, 1, 2, 0]))}
    return Measurements(**(fields | changes))


def test_each_answer_sentence_gets_its_verdict_and_indexes_the_stored_answer():
    answer = "## ignored heading\r\nThe maps light up the mouth.\r\nThey also focus on the eyes."
    claims = checked_claims({"q1": answer}, measured({}))
    assert [(c.verdict, c.subject, c.source) for c in claims] == [("supported", ["mouth"], "saliency"),
                                                                   ("contradicted", ["eyes"], "saliency")]
    stored = Result(student_id="s", status="graded", tool_version="t", answers={"q1": answer}).answers["q1"]
    assert [stored[c.start:c.end] for c in claims] == [c.quote for c in claims]


def test_maps_built_on_gradients_that_failed_their_check_decide_nothing():
    failed = GradientCheckSummary(context="q1", requests=4, rows=8, worst_error=1.0, worst_value_gap=0.0,
                                  tolerance=0.05, value_tolerance=1e-3, passed=False)
    claims = checked_claims({"q1": "The model focuses on the mouth."}, measured({}, gradient_checks={"q1": failed}))
    assert [(c.verdict, c.reason) for c in claims] == [("not checkable", "no_map")]


def test_lime_is_read_by_the_superpixels_that_speak_for_the_class():
    segments = np.zeros((48, 48), np.int64)
    segments[masks(1)[0] == MOUTH] = 1
    explanations = [LimeExplanation(label=label, segments=segments, weights=np.array([-0.5, 0.9]), score=0.9,
                                    intercept=0.0, local_prediction=0.0, probability=0.5, seed=0, fill=0.0)
                    for label in LABELS]
    lime = QuestionOutput("q3", "lime", LimeExplanations.of(np.zeros((7, 48, 48), np.uint8), explanations))
    [claim] = checked_claims({"q3": "LIME highlights the mouth."}, measured({}, outputs={"q3": lime}))
    assert claim.verdict == "supported" and claim.values["mouth_share"] == pytest.approx(1.0)


def test_class_model_images_are_measured_on_the_canonical_layout():
    from grader.claims.layout import part_regions

    mouth = part_regions(None, 7).regions["mouth"]
    images = np.where(mouth, 250.0, 128.0).astype(np.float32)
    output = QuestionOutput("q4", "class_model", ClassImages(images=images, target_prob=np.full(7, 0.9)))
    [claim] = checked_claims({"q4": "The class model visualization of Happy shows the mouth."},
                             measured({}, outputs={"q4": output}))
    assert (claim.kind, claim.verdict, claim.values["mouth_on_masks"]) == ("freeform_subject", "supported", 0.0)


def test_the_recall_and_confusion_claims_come_from_the_evaluation():
    claims = checked_claims({"q3": "The model does best on Happy. Fear is often mistaken for Disgust."}, measured({}))
    assert [(c.kind, c.verdict) for c in claims] == [("best_class", "supported"), ("confused_pair", "supported")]
    assert claims[1].values["rate"] == 1.0


def test_answer_consistency_is_the_share_of_checkable_claims_supported():
    answers = {"q1": "The model focuses on the mouth. It also looks at the eyes. Happy is recognized best."}
    value = METRICS["answer_consistency"].value(measured(answers), ScoredQuestion("q1", "saliency"))
    assert value == pytest.approx(2 / 3)


def test_answer_consistency_is_unavailable_for_an_answer_with_nothing_to_check():
    with pytest.raises(MetricUnavailable, match="no claim that the measurements can check"):
        METRICS["answer_consistency"].value(measured({"q1": "I liked this homework."}), ScoredQuestion("q1", "saliency"))


def claim_result(**changes) -> ClaimResult:
    fields = dict(question="q1", quote="The model <b>focuses</b> on the mouth.", kind="attention", subject=["mouth"],
                  verdict="supported", measure="part_share", source="saliency",
                  values={"mouth_share": 0.4, "mouth_area": 0.05, "mouth_ratio": 8.0, "mouth_on_masks": 0.0,
                          "supported_at": 1.5, "contradicted_at": 1.0})
    return ClaimResult(**(fields | changes))


def test_a_part_claim_reads_in_english_with_its_numbers():
    line = claim_line(claim_result())
    assert (line.verdict, line.css, line.claim) == ("supported", "supported", "the model looks at mouth")
    assert line.evidence == ("saliency maps: mouth 8.00× its area (40% of the map on 5% of the image, placed by the "
                             "canonical face layout) (supported at ≥ 1.5×, contradicted below 1×; a uniform map "
                             "gives 1×)")


def test_a_claim_reads_in_traditional_chinese():
    line = claim_line(claim_result(kind="confused_pair", subject=["2", "4"], verdict="contradicted", measure="confusion",
                                   source="confusion", values={"first": 2, "second": 4, "rate": 0.01,
                                                               "reverse_rate": 0.0, "rank": 30, "supported_at": 0.1,
                                                               "contradicted_at": 0.03}), "zh-TW")
    assert (line.verdict, line.claim) == ("與量測不符", "恐懼與難過容易混淆")
    assert line.evidence.startswith("恐懼被預測為難過：1%；難過被預測為恐懼：0%")


def test_a_claim_that_could_not_be_measured_says_why():
    line = claim_line(claim_result(verdict="not checkable", measure="none", values={}, reason="no_map"))
    assert (line.css, line.evidence) == ("unchecked", "this question drew no map to measure")


def test_the_pdf_shows_the_claims_box_under_the_answer_with_the_quote_escaped():
    result = Result(student_id="s1", status="graded", tool_version="t",
                    answers={"q1": "The model <b>focuses</b> on the mouth."}, claims=[claim_result()])
    from grader.result import QuestionResult

    result.questions.append(QuestionResult(id="q1", title="Saliency", score=0, max_score=2, criteria=[]))
    html = render_html(result)
    assert "What your answer claims, and what we measured" in html
    assert "The model &lt;b&gt;focuses&lt;/b&gt; on the mouth." in html and "<b>focuses</b>" not in html
    assert "你的回答的主張，以及我們量到的結果" in render_html(result, "zh-TW")
