"""The one assessment of one submission: its model (behind the protocol), the evaluation faces, its
submission.yaml's choices and the settings in; a typed Assessment out. No files are read or written
here: the grader (grader.pipeline.student_folder), the benchmarks and the tests all call `assess`.

The stages run in order, each gated by the ones before it (grader.pipeline.stages): the output
checks, the evaluation, one stage per rubric question, the probes, the weights fingerprint."""

from __future__ import annotations

import contextlib
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from grader.classes import NUM_CLASSES, Language, class_names
from grader.data.faceset import FaceSet
from grader.evaluate import Evaluation, evaluate
from grader.fingerprint import WeightsFingerprint
from grader.helper_thread import helper_thread
from grader.pipeline.stages import CHECKS, EVALUATE, FINGERPRINT, PROBES, StageLog, question_stages
from grader.protocol import ModelProtocol
from grader.questions.answer import answer_question
from grader.questions.context import QuestionContext
from grader.questions.examples import ClassExamples
from grader.questions.output import QuestionOutput
from grader.questions.settings import TaskSettings
from grader.result import StageError
from grader.scoring.measurements import Probes
from grader.scoring.probes import RoadAhead, run_probes
from grader.scoring.rubric import Rubric
from grader.submission.checks import ModelChecks, check_logits, check_model
from grader.submission.gradient_audit import GradientAudit
from grader.submission.spec import VisualizeSpec

CHECK_BATCH = 8  # faces used for the output checks: enough to catch batch dependence, cheap to run one by one
EVAL_CHUNK = 1024  # faces per logits request: bounds one message to a few MB
ONE_CLASS_SHARE = 0.9
"""A model that predicts one class for this share of the evaluation faces or more is said to have
learned no expression (FER2013's largest class, Happy, is a quarter of its test split)."""
LOGIT_LIMIT = 1e4
"""Logits beyond this saturate softmax in fp32 (exp(-104) underflows): probabilities become 0 or 1,
cross-entropy gradients vanish, and LIME and the deletion curves lose their meaning."""

@dataclass
class Assessment:
    """What one submission's model measurably does. Fields stay None (or empty) when the stage that
    makes them failed or did not run; the StageLog passed to `assess` says why.

    checks: the output checks' measurements; evaluation: predictions on the evaluation set;
    examples: the faces every question explains; outputs: each question's typed result, by question
    id; probes: the randomization test and the deletion/insertion curves; fingerprint: the weights'
    fingerprint for the similarity report."""

    checks: ModelChecks | None = None
    evaluation: Evaluation | None = None
    examples: ClassExamples | None = None
    outputs: dict[str, QuestionOutput] = field(default_factory=dict)
    probes: Probes | None = None
    fingerprint: WeightsFingerprint | None = None


def assess(model: ModelProtocol, faces: FaceSet, visualize: VisualizeSpec, rubric: Rubric, settings: TaskSettings,
           log: StageLog, audit: GradientAudit | None = None, language: Language = "en",
           helper: Executor | None = None) -> Assessment:
    """Every stage after loading, in order, recorded in `log` (a gating failure stops the rest). The
    gradients each question receives are checked under its id when `audit` watches `model`
    (grader.submission.gradient_audit). `helper`: where ROAD's imputations are made while the model
    works (a batch's helper process, grader.helper_process); None: a helper thread of this assessment."""
    assessment = Assessment()
    if log.failed:
        return assessment
    with log.stage(CHECKS):
        assessment.checks = check_model(model, faces.images[:CHECK_BATCH].astype(np.float32))
    if log.failed:
        return assessment
    with log.stage(EVALUATE):
        logits = evaluation_logits(model, faces)
        assessment.evaluation = evaluate(logits, faces.labels)
        log.warnings += output_warnings(logits, assessment.evaluation, language, model.describe().outputs)
    if log.failed:
        return assessment
    # ROAD's imputations start on the helper as each question's maps come (grader.scoring.probes).
    with (contextlib.nullcontext(helper) if helper is not None else helper_thread("road")) as road_helper:
        road_ahead = RoadAhead(road_helper)
        try:
            _answer_questions(assessment, model, faces, visualize, rubric, settings, log, audit, language,
                              road_ahead)
            with log.stage(PROBES), _audited(audit, "probes"):
                assessment.probes = run_probes(model, assessment.outputs, settings, road_ahead)
        finally:
            road_ahead.cancel()
    with log.stage(FINGERPRINT):  # the similarity report's weights evidence
        assessment.fingerprint = model.weights_fingerprint()
    return assessment


def _answer_questions(assessment: Assessment, model: ModelProtocol, faces: FaceSet, visualize: VisualizeSpec,
                      rubric: Rubric, settings: TaskSettings, log: StageLog, audit: GradientAudit | None,
                      language: Language, road_ahead: RoadAhead) -> None:
    """Each question's method on one evaluation face per class; one failing leaves the others. Each
    answer goes to `road_ahead` as it comes."""
    examples = assessment.examples = ClassExamples.choose(assessment.evaluation, language)
    context = QuestionContext(model=model, faces=faces, examples=examples, settings=settings,
                              filter_layer=visualize.filter_layer, freeform=visualize.freeform)
    methods = [question for question in rubric.questions if question.method]
    for question, stage in zip(methods, question_stages(rubric)):
        with log.stage(stage), _audited(audit, question.id):
            assessment.outputs[question.id] = answer_question(question.id, question.method, context)
        if question.id in assessment.outputs:
            road_ahead.add(assessment.outputs[question.id])


def _audited(audit: GradientAudit | None, context: str) -> contextlib.AbstractContextManager:
    return audit.within(context) if audit is not None else contextlib.nullcontext()


def evaluation_logits(model: ModelProtocol, faces: FaceSet) -> np.ndarray:
    """(N, 7) logits for the whole evaluation set, asked for in chunks and checked like the sample."""
    chunks = []
    for start in range(0, len(faces), EVAL_CHUNK):
        pixels = faces.images[start:start + EVAL_CHUNK].astype(np.float32)
        logits = model.logits(pixels)
        check_logits(logits, len(pixels))
        chunks.append(logits)
    return np.concatenate(chunks)


def output_warnings(logits: np.ndarray, evaluation: Evaluation, language: Language = "en",
                    outputs: str = "logits") -> list[StageError]:
    """What the checks let pass but the student should hear: a model that outputs probabilities
    (`outputs`, from its description), logits so large that softmax saturates, and a model that
    predicts one class for nearly every face."""
    warnings = []
    if outputs == "probabilities":
        warnings.append(StageError(stage="evaluate", message=(
            "your model outputs probabilities (a softmax at its end): they were taken as log-probabilities, so "
            "every explanation and metric works as with logits; remove the final softmax to silence this note")))
    largest = float(np.abs(logits).max(initial=0.0))
    if largest > LOGIT_LIMIT:
        warnings.append(StageError(stage="evaluate", message=(
            f"the model's logits reach {largest:.3g}: softmax saturates at such values (probabilities of exactly 0 "
            "or 1), so cross-entropy gradients vanish and LIME and the deletion curves say little; look for a "
            "missing normalization or a very large weight at the end of forward")))
    predicted = np.bincount(evaluation.predictions, minlength=NUM_CLASSES)
    top = int(predicted.argmax())
    share = float(predicted[top]) / max(len(evaluation.predictions), 1)
    if share >= ONE_CLASS_SHARE:
        warnings.append(StageError(stage="evaluate", message=(
            f"the model predicts {class_names(language)[top]} for {share:.0%} of the {len(evaluation.predictions)} "
            "evaluation faces: it has learned hardly any expression, so its explanations describe one class's "
            "score, not the expressions; check the training, the labels and the input scaling in submission.yaml")))
    return warnings
