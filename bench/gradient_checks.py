"""How far honest models' gradients are from their own finite differences, and how far faked ones are.

For every example submission (in-process, so the numbers are the model's, not the sandbox's), under
fp32 and bf16, each gradient-based method of the report runs on an `AuditedModel` that checks every
request (grader.submission.gradient_audit): Q1 saliency and SmoothGrad, Q2's filter ascent, Q4's
class-model ascent, Integrated Gradients and Grad-CAM, on the trained model and on its randomized
copy. It prints the worst relative error of the directional derivatives and the worst value gap per
method, and the same for models that fake their gradients, beside the tolerance. The tolerances in
GradientCheckSettings are read off this table.

It then measures what the checks cost in grading: each example graded in-process with the course's
task settings on the bundled evaluation set, checks on (the settings grading uses) and off, side by
side in one run.

    python bench/gradient_checks.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.data.synth import generate  # noqa: E402
from grader.explain.class_model import ClassModelVisualization  # noqa: E402
from grader.explain.filters import FilterVisualization  # noqa: E402
from grader.explain.gradcam import GradCAM  # noqa: E402
from grader.explain.integrated_gradients import IntegratedGradients  # noqa: E402
from grader.explain.saliency import Saliency  # noqa: E402
from grader.explain.smoothgrad import SmoothGrad  # noqa: E402
from grader.quiet import quiet_libraries  # noqa: E402
from grader.submission.build import build_model  # noqa: E402
from grader.submission.gradient_audit import AuditedModel, GradientAudit, GradientCheckSettings  # noqa: E402
from grader.submission.inprocess import InProcessModel  # noqa: E402
from grader.submission.module import SubmissionModule  # noqa: E402
from grader.submission.spec import load_spec  # noqa: E402

EXAMPLES = ["vgg", "small_cnn", "lightning_ckpt", "torchscript", "residual_zh"]


def open_model(folder: Path, dtype: str) -> tuple[InProcessModel, object]:
    spec = load_spec(folder)
    return InProcessModel(SubmissionModule(build_model(folder, spec), spec.input), dtype=dtype), spec


def methods(model, spec, images, labels):
    layer = spec.visualize.filter_layer
    yield "saliency", lambda: Saliency(model).attribute(images, labels)
    yield "smoothgrad", lambda: SmoothGrad(model, samples=5).attribute(images, labels)
    yield "integrated_gradients", lambda: IntegratedGradients(model, steps=8).attribute(images, labels)
    yield "filters", lambda: FilterVisualization(model, layer=layer, max_channels=16, steps=8).visualize(images[0])
    yield "class_model", lambda: ClassModelVisualization(model, steps=16).visualize()
    yield "gradcam", lambda: GradCAM(model).attribute(images, labels)
    with model.randomized(seed=0, top_layers=1_000_000) as random_model:
        yield "randomized saliency", lambda: Saliency(random_model).attribute(images, labels)


def measure(folder: Path, dtype: str, faces) -> list[tuple[str, float, float, bool]]:
    inner, spec = open_model(folder, dtype)
    settings = replace(GradientCheckSettings.for_dtype(dtype), always_first=10**6)
    audit = GradientAudit(settings, seed=0)
    model = AuditedModel(inner, audit)
    images, labels = faces.images[:7].astype(np.float32), faces.labels[:7]
    rows = []
    for name, run in methods(model, spec, images, labels):
        with audit.within(name):
            try:
                run()
            except Exception as error:  # noqa: BLE001
                rows.append((name, float("nan"), float("nan"), False))
                print(f"    {name}: {type(error).__name__}: {str(error)[:200]}")
                continue
        summary = audit.summary(name)
        rows.append((name, summary.worst_error, summary.worst_value_gap, summary.passed))
    return rows


def grading_seconds(folder: Path, checks: bool) -> float:
    """Model work of grading one example (everything but the PDF), with the checks on or off."""
    from unittest import mock

    from grader.data.bundled import bundled_evaluation
    from grader.pipeline.setup import load_setup
    from grader.pipeline.student_folder import grade_submission
    from grader.submission import gradient_audit

    settings = GradientCheckSettings() if checks else replace(GradientCheckSettings(), always_first=0, probability=0.0)
    setup = load_setup(bundled_evaluation(), ROOT / "rubric.yaml", Path(tempfile.mkdtemp(prefix="checks-cost-")),
                       write_pdf=False, isolation="inprocess")
    with mock.patch.object(gradient_audit.GradientCheckSettings, "for_dtype", classmethod(lambda cls, dtype: settings)):
        result = grade_submission(folder, setup)
    return sum(seconds for stage, seconds in result.timings.items() if stage not in ("snapshot", "spec", "report"))


def cost(repeats: int = 2) -> None:
    print("\nCost in grading (in-process, the course's task settings, 3,589 faces; seconds of model work, the "
          f"best of {repeats} interleaved runs each):")
    print(f"{'submission':<16} {'checks off':>11} {'checks on':>10} {'ratio':>7}")
    for name in EXAMPLES:
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(repeats):
            for checks in (False, True):
                times[checks].append(grading_seconds(ROOT / "submissions" / name, checks))
        off, on = min(times[False]), min(times[True])
        print(f"{name:<16} {off:>11.1f} {on:>10.1f} {on / off:>7.3f}")


def main() -> None:
    quiet_libraries()
    faces = generate(16, seed=3)
    from tests.faked_gradients import MANIPULATIONS, write_fake

    fakes = Path(tempfile.mkdtemp(prefix="faked-gradients-"))
    folders = [ROOT / "submissions" / name for name in EXAMPLES]
    folders += [write_fake(fakes / kind, kind) for kind in MANIPULATIONS]
    for dtype in ("float32", "bfloat16"):
        settings = GradientCheckSettings.for_dtype(dtype)
        print(f"\n{dtype}: step {settings.step} pixel levels, {settings.random_directions} random direction(s), "
              f"tolerance {settings.tolerance:.0%} (directions), {settings.value_tolerance:g} (values)")
        print(f"{'submission':<22} {'method':<22} {'worst error':>12} {'value gap':>10}  passed")
        for folder in folders:
            started = time.perf_counter()
            for name, error, gap, passed in measure(folder, dtype, faces):
                print(f"{folder.name:<22} {name:<22} {error:>12.4f} {gap:>10.2g}  {passed}")
            print(f"{'':<22} ({time.perf_counter() - started:.1f} s)")
    cost()


if __name__ == "__main__":
    main()
