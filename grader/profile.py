"""The fixed hardware profile every submission is graded under: same seeds, same numbers for everyone."""

from __future__ import annotations

import os
import random

import numpy as np
import torch
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

    def apply(self) -> None:
        """Set torch's threads, seeds and deterministic algorithms for this process."""
        torch.set_num_threads(self.threads)
        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)
        if self.deterministic:
            # cuBLAS needs this to be deterministic on CUDA; harmless on the CPU.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)

    def describe(self) -> str:
        return (f"{self.name}: {self.device}, {self.dtype}, {self.threads} thread(s), seed {self.seed}, "
                f"{'deterministic' if self.deterministic else 'non-deterministic'}, torch {torch.__version__}")


PROFILES: dict[str, HardwareProfile] = {"cpu": HardwareProfile()}


def get_profile(name: str) -> HardwareProfile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile '{name}': choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
