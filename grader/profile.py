"""The fixed hardware profile every submission is graded under: same seeds, same numbers for everyone."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import random
import warnings

import numpy as np
from pydantic import BaseModel, ConfigDict


class Limits(BaseModel):
    """What one submission may use (enforced by the sandbox; recorded in every result)."""

    model_config = ConfigDict(frozen=True)

    memory_mb: int = 4096
    processes: int = 64
    file_size_mb: int = 64
    cpu_seconds: int = 1800
    wall_seconds_per_submission: int = 1800
    wall_seconds_per_request: int = 300
    # Loading is importing the student's code, building the model and reading its weights: seconds
    # at most, so an endless loop at import costs a minute, not a request's 300 s. The sandbox's own
    # start-up (torch and Lightning imported) is not the student's and is not counted
    # (grader.sandbox.client.STARTUP_SECONDS bounds it).
    wall_seconds_per_load: int = 60
    # The submission folder as the grader reads it (grader.submission.tree): a few MB is normal.
    submission_mb: int = 1024
    submission_entries: int = 10_000
    submission_depth: int = 32


class HardwareProfile(BaseModel):
    """Device, precision, threads, seed and determinism, applied before any student code runs."""

    model_config = ConfigDict(frozen=True)

    name: str = "cpu"
    device: str = "cpu"
    dtype: str = "float32"
    threads: int = 1
    seed: int = 0
    deterministic: bool = True
    limits: Limits = Limits()

    def apply(self, models_here: bool = True) -> None:
        """Set Python's and numpy's seeds for this process, and, where its models run (`models_here`),
        torch's threads, seed and deterministic algorithms; ValueError when the profile wants a device
        this machine lacks. A grading process whose models all run in sandbox servers passes False:
        it never imports torch (2 s of a core); each server applies the whole profile."""
        random.seed(self.seed)
        np.random.seed(self.seed)
        if not models_here:
            return
        problem = self.unavailable_reason()
        if problem:
            raise ValueError(problem)
        import torch

        torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        if self.deterministic:
            # cuBLAS needs this to be deterministic on CUDA; harmless on the CPU.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            # CUDA has no deterministic kernel for some backward passes students' models need
            # (adaptive average pooling's, in two of the examples): there torch warns, once per
            # kernel, and grading goes on, where it would raise and fail the submission.
            torch.use_deterministic_algorithms(True, warn_only=self.device == "cuda")
            warnings.filterwarnings("once", message=".*does not have a deterministic implementation")
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
            # TF32 rounds fp32 matmuls to 10-bit mantissas on Ampere and later: off, so fp32 means fp32.
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

    def warm(self) -> None:
        """Create ahead what a submission's first requests would otherwise wait for: on CUDA the
        process's context and cuBLAS's and cuDNN's handles (`exercise_device`): 0.8 s a process on an
        H200, 1.1-1.4 s with eight starting at once (issue 20, bench/RESULTS.md). A sandbox server calls
        it once the profile is applied and before any student code is in it, so that a server started
        ahead of need has them ready; nothing on the CPU, whose libraries need no such start."""
        if self.device == "cuda":
            exercise_device(self.device)

    def unavailable_reason(self) -> str | None:
        """Why this machine cannot run the profile, in words; None when it can."""
        if self.device != "cuda":
            return None
        import torch

        if not torch.cuda.is_available():
            return (f"the {self.name} profile needs a CUDA GPU, and torch sees none here (torch {torch_version()}); "
                    "grade with --profile cpu")
        return None

    def describe(self) -> str:
        return (f"{self.name}: {self.device}, {self.dtype}, {self.threads} thread(s), seed {self.seed}, "
                f"{'deterministic' if self.deterministic else 'non-deterministic'}, torch {torch_version()}")


@functools.cache
def torch_version() -> str:
    """torch's version as `torch.__version__` gives it ("2.13.0+cpu"), read from its installed
    metadata: a process that grades through a sandbox never imports torch (2 s of a core)."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:  # a torch without metadata (built in place)
        import torch

        return torch.__version__


VECTOR_EXTENSIONS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                     "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "sve2")
"""The CPU features that decide which kernels oneDNN, NNPACK and the BLAS pick (and so the last bits
of fp32 results): fp32 numbers are identical only between machines with the same ones."""


@functools.cache
def machine_record() -> dict[str, object]:
    """The CPU this process runs on: its model name and vector extensions (from /proc/cpuinfo on
    Linux), and the torch build, recorded beside the profile in every result."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model") and value.strip():
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"cpu": model, "vector_extensions": [name for name in VECTOR_EXTENSIONS if name in flags],
            "torch": torch_version()}


PROFILES: dict[str, HardwareProfile] = {
    "cpu": HardwareProfile(),
    # CUDA when present: the model and every request on the GPU, fp32 without TF32, deterministic
    # algorithms (cuBLAS workspace config, cuDNN deterministic). The grader's own work (LIME's
    # surrogates, figures, the PDF) stays on the CPU with one thread.
    "gpu": HardwareProfile(name="gpu", device="cuda"),
    # For pre-checks: bf16 autocast (the matmuls and convolutions in bfloat16, the rest in fp32) on
    # the CPU, channels_last as always. About 2x the fp32 throughput of the typical course CNN at
    # one thread on an AVX512-BF16 CPU; its scores move a little from cpu's (see the README).
    "fast": HardwareProfile(name="fast", dtype="bfloat16"),
}


def get_profile(name: str) -> HardwareProfile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile '{name}': choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def exercise_device(device: str) -> None:
    """One tiny convolution, forward and backward to its input, and one matrix product on `device`,
    waited for: on CUDA this creates the context and the cuDNN and cuBLAS handles that any model's
    first forward and gradient would. Zeros throughout and no random generator touched, so it
    changes nothing a submission's numbers depend on."""
    import torch

    pixels = torch.zeros(1, 1, 8, 8, device=device, requires_grad=True)
    kernel = torch.zeros(2, 1, 3, 3, device=device)
    (gradient,) = torch.autograd.grad(torch.nn.functional.conv2d(pixels, kernel).sum(), pixels)
    product = torch.zeros(8, 8, device=device) @ torch.zeros(8, 8, device=device)
    if gradient.is_cuda:
        torch.cuda.synchronize(gradient.device)
    del gradient, product
