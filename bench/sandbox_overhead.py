"""What the sandbox costs per request: the VGG example answering one LIME image's batch
(1000 perturbed faces) in-process and through the sandbox, side by side in one run.

    .venv/bin/python bench/sandbox_overhead.py [--repeats 5]

Target (issue 3): the sandbox's overhead under 5% of the compute of that batch.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from grader.data.synth import generate
from grader.profile import HardwareProfile
from grader.quiet import quiet_libraries
from grader.sandbox.client import SandboxedModel
from grader.sandbox.isolation import bwrap_works
from grader.sandbox.wire import Message, decode, encode
from grader.submission.build import build_model
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
LIME_SAMPLES = 1000


def lime_like_batch(n: int = LIME_SAMPLES) -> np.ndarray:
    """One face with random superpixel-sized blocks grayed out, as LIME's perturbations look."""
    face = generate(1, seed=7).images[0].astype(np.float32)
    rng = np.random.default_rng(0)
    keep = rng.random((n, 6, 6)) < 0.5
    mask = np.kron(keep, np.ones((8, 8)))
    return np.where(mask, face, face.mean()).astype(np.float32)


def timed(call, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    quiet_libraries()
    profile = HardwareProfile()
    profile.apply()
    folder = ROOT / "submissions" / "vgg"
    spec = load_spec(folder)
    local = InProcessModel(SubmissionModule(build_model(folder, spec), spec.input))
    isolation = "bwrap" if bwrap_works() else "subprocess"
    started = time.perf_counter()
    remote = SandboxedModel.open(folder, profile, isolation)
    startup = time.perf_counter() - started
    batch, single = lime_like_batch(), lime_like_batch(1)
    local.logits(batch), remote.logits(batch)  # warm up both
    rows = {}
    for name, pixels in (("LIME batch (1000 faces)", batch), ("one face", single)):
        local_times, remote_times = [], []
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            local_times += timed(lambda: local.logits(pixels), 1)
            remote_times += timed(lambda: remote.logits(pixels), 1)
        rows[name] = (statistics.median(local_times), statistics.median(remote_times))
    remote.close()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"profile {profile.describe()}, isolation {isolation}")
    print(f"sandbox start-up (spawn, import torch, load the VGG example): {startup:.2f} s")
    print(f"{'request':28} {'in-process':>12} {'sandboxed':>12} {'overhead':>10} {'share':>8}")
    for name, (local_s, remote_s) in rows.items():
        overhead = remote_s - local_s
        print(f"{name:28} {local_s * 1e3:10.1f}ms {remote_s * 1e3:10.1f}ms {overhead * 1e3:8.1f}ms "
              f"{100 * overhead / local_s:7.1f}%")
    frame = Message({"op": "logits"}, {"pixels": batch})
    encoded = encode(frame)
    encoding = statistics.median(timed(lambda: encode(frame), 20))
    decoding = statistics.median(timed(lambda: decode(encoded[8:]), 20))
    print(f"the LIME batch's frame ({len(encoded) / 2**20:.1f} MiB): encode {encoding * 1e3:.2f} ms, "
          f"decode {decoding * 1e3:.2f} ms")
    local_s, remote_s = rows["LIME batch (1000 faces)"]
    share = (remote_s - local_s) / local_s
    print(f"overhead on one LIME image's batch: {100 * share:.1f}% (target < 5%): {'met' if share < 0.05 else 'NOT met'}")


if __name__ == "__main__":
    main()
