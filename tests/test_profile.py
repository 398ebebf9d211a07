"""Hardware profiles: cpu (the default) and gpu (CUDA when present), recorded in every result."""

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from grader.cli import app
from grader.profile import PROFILES, get_profile


def test_the_cpu_profile_pins_one_thread_and_deterministic_algorithms():
    before = torch.get_num_threads()
    try:
        get_profile("cpu").apply()
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(before)


def test_the_gpu_profile_runs_on_cuda_fp32_deterministically():
    gpu = PROFILES["gpu"]
    assert (gpu.device, gpu.dtype, gpu.deterministic) == ("cuda", "float32", True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the gpu profile can run")
def test_the_gpu_profile_without_cuda_is_refused_before_anything_runs(tmp_path):
    assert "needs a CUDA GPU" in get_profile("gpu").unavailable_reason()
    outcome = CliRunner().invoke(app, ["grade", "submissions", "--profile", "gpu", "--out", str(tmp_path)])
    assert outcome.exit_code == 2
    assert "the gpu profile needs a CUDA GPU" in outcome.output and "--profile cpu" in outcome.output
    assert not any(tmp_path.iterdir())


def test_an_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match="choose one of cpu, gpu"):
        get_profile("tpu")


def test_the_fast_profile_runs_the_model_in_bf16_close_to_fp32():
    import numpy as np
    from torch import nn

    from grader.submission.inprocess import InProcessModel
    from grader.submission.module import SubmissionModule

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                        nn.Linear(128, 7))
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 48, 48)).astype(np.float32)
    exact = InProcessModel(SubmissionModule(net)).logits(pixels)
    fast_profile = get_profile("fast")
    fast = InProcessModel(SubmissionModule(net), fast_profile.device, fast_profile.dtype)
    approximate = fast.logits(pixels)
    assert approximate.dtype == np.float32
    assert not np.array_equal(approximate, exact)  # bf16 really ran
    np.testing.assert_allclose(approximate, exact, atol=0.05 * np.abs(exact).max())
    assert np.array_equal(fast.logits(pixels), approximate)  # and is deterministic


def test_the_machine_record_names_the_cpu_and_its_vector_extensions():
    from grader.profile import VECTOR_EXTENSIONS, machine_record

    record = machine_record()
    assert record["cpu"] and record["torch"] == torch.__version__
    assert set(record["vector_extensions"]) <= set(VECTOR_EXTENSIONS)
    if Path("/proc/cpuinfo").is_file():
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith(("flags", "Features"))).split(":", 1)[1].split()
        assert record["vector_extensions"] == [name for name in VECTOR_EXTENSIONS if name in flags]


def test_on_cuda_a_kernel_without_a_deterministic_version_warns_instead_of_failing_the_submission(monkeypatch):
    # adaptive_avg_pool2d's backward on CUDA has no deterministic kernel; raising would fail the
    # saliency of every model with a global average pool.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    before = torch.get_num_threads()
    try:
        get_profile("gpu").apply()
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        get_profile("cpu").apply()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.set_num_threads(before)


def test_warming_the_device_draws_nothing_from_the_random_generator():
    # A server warms its device before the submission is in it: a submission's numbers must be the
    # same whether its server was warmed or not.
    from grader.profile import exercise_device

    before = torch.get_rng_state()
    exercise_device("cpu")
    assert torch.equal(torch.get_rng_state(), before)


def test_only_a_cuda_profile_warms_its_device_ahead(monkeypatch):
    import grader.profile

    warmed: list[str] = []
    monkeypatch.setattr(grader.profile, "exercise_device", warmed.append)
    get_profile("cpu").warm()
    get_profile("gpu").warm()
    assert warmed == ["cuda"]
