"""What a model's server starts with: an environment cleared but for the few host variables it
needs, and its limits."""

from __future__ import annotations

import resource
import subprocess
import sys

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


def _limits_in_a_child(device: str) -> tuple[int, int]:
    """RLIMIT_AS and RLIMIT_DATA as a server's limits leave them, in a child process."""
    code = ("import resource; from grader.sandbox.server import _apply_limits; "
            "_apply_limits({'memory_mb': 3000, 'file_size_mb': 10, 'cpu_seconds': 60, 'processes': 4096}, "
            f"{device!r}); "
            "print(resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_DATA)[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def test_a_cpu_server_s_memory_limit_bounds_its_address_space():
    address_space, data = _limits_in_a_child("cpu")
    assert address_space == 3000 << 20
    assert data == resource.RLIM_INFINITY or data > 3000 << 20


def test_a_gpu_server_s_memory_limit_bounds_its_private_memory_not_the_address_space_cuda_reserves():
    address_space, data = _limits_in_a_child("cuda")
    assert data == 3000 << 20
    assert address_space == resource.RLIM_INFINITY or address_space > 3000 << 20


def test_a_server_has_a_user_name_though_its_fresh_uid_is_in_no_password_database(tmp_path):
    # As root (CI, a TA's machine) the child takes a uid that no password database knows, as a server does.
    code = "import getpass, os\nif os.getuid() == 0: os.setuid(251234)\nprint(getpass.getuser())"
    env = launch(tmp_path, "subprocess", limits={}, profile=GPU).env
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "sandbox"


def test_bubblewrap_is_started_by_the_full_path_the_grader_found_it_at(tmp_path, monkeypatch):
    # Its environment's PATH is /usr/bin:/bin: a bwrap under /usr/local/bin or a kit's folder was
    # found by the grader's check and then not by the launch.
    from grader.sandbox import isolation

    monkeypatch.setattr(isolation, "bwrap_executable", lambda: "/opt/kit/bin/bwrap")
    launched = launch(tmp_path, "bwrap", limits={}, profile=GPU)
    assert launched.argv[0] == "/opt/kit/bin/bwrap"
    assert launched.env == {"PATH": "/usr/bin:/bin"}
