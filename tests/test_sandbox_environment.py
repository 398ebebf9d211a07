"""The environment a model's server starts with: cleared, then the few host variables it needs."""

from __future__ import annotations

import pytest

from grader.sandbox.isolation import launch

CPU = {"name": "cpu", "device": "cpu", "threads": 1}
GPU = {"name": "gpu", "device": "cuda", "threads": 1}


@pytest.fixture
def host_cuda_variables(monkeypatch):
    monkeypatch.setenv("LD_LIBRARY_PATH", "/usr/local/nvidia/lib64")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.setenv("SECRET_TOKEN", "not for students")


def test_a_gpu_profile_server_finds_the_driver_and_the_gpu_the_host_names(tmp_path, host_cuda_variables):
    env = launch(tmp_path, "subprocess", limits={}, profile=GPU).env
    assert env["LD_LIBRARY_PATH"] == "/usr/local/nvidia/lib64"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"


def test_a_cpu_profile_server_gets_none_of_the_host_s_cuda_variables(tmp_path, host_cuda_variables):
    env = launch(tmp_path, "subprocess", limits={}, profile=CPU).env
    assert "LD_LIBRARY_PATH" not in env and "CUDA_VISIBLE_DEVICES" not in env


def test_no_other_host_variable_reaches_a_server(tmp_path, host_cuda_variables):
    env = launch(tmp_path, "subprocess", limits={}, profile=GPU).env
    assert "SECRET_TOKEN" not in env


def test_inside_bubblewrap_the_cuda_variables_are_set_after_the_environment_is_cleared(tmp_path,
                                                                                     host_cuda_variables):
    argv = launch(tmp_path, "bwrap", limits={}, profile=GPU).argv
    clear = argv.index("--clearenv")
    setenv = [i for i, arg in enumerate(argv) if arg == "--setenv" and argv[i + 1] == "LD_LIBRARY_PATH"]
    assert len(setenv) == 1 and setenv[0] > clear
    assert argv[setenv[0] + 2] == "/usr/local/nvidia/lib64"
    assert "SECRET_TOKEN" not in argv
