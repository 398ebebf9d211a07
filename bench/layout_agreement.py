"""How well the canonical face layout (grader.claims.layout) matches the synthetic faces' part masks:
per part, the mean IoU and the mean recall (share of the mask's pixels inside the layout region)
over synthetic faces, the mean areas, and "best fixed": the best mean IoU that any one fixed region
reaches, the masks' own pixel frequency thresholded at its best level (fitted on the same faces, so
an upper bound for every fixed layout). The table in grader/claims/layout.py's docstring
and the floors in tests/test_face_layout.py are read off this output.

    .venv/bin/python bench/layout_agreement.py [--faces 2000] [--seed 2013]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.claims.layout import canonical_part_masks, layout_agreement  # noqa: E402
from grader.data.faceset import PART_NAMES  # noqa: E402
from grader.data.synth import DEFAULT_SEED, generate  # noqa: E402


def best_fixed_iou(truth: np.ndarray) -> float:
    """The best mean IoU of a fixed region `frequency >= t` over thresholds t, on (N, 48, 48) truth."""
    frequency = truth.mean(axis=0)
    flat = truth.reshape(len(truth), -1)
    present = flat.any(axis=1)

    def mean_iou(region: np.ndarray) -> float:
        region = region.reshape(1, -1)
        return float(((flat & region).sum(axis=1)[present] / (flat | region).sum(axis=1)[present]).mean())

    return max(mean_iou(frequency >= t) for t in np.arange(0.025, 1.0, 0.025))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    masks = generate(args.faces, seed=args.seed, split="eval").masks
    started = time.perf_counter()
    agreement = layout_agreement(masks)
    seconds = time.perf_counter() - started
    layout = canonical_part_masks()
    print(f"{args.faces} synthetic faces, seed {args.seed}, eval split; layout against part masks")
    print(f"{'part':8s} {'IoU':>6s} {'recall':>7s} {'best fixed':>10s} {'mask px':>8s} {'layout px':>10s}")
    for part, result in agreement.items():
        truth = masks != PART_NAMES.index("background") if part == "face" else masks == PART_NAMES.index(part)
        mask_area = truth.reshape(len(masks), -1).sum(axis=1).mean()
        print(f"{part:8s} {result.iou:6.3f} {result.recall:7.3f} {best_fixed_iou(truth):10.3f} {mask_area:8.1f}"
              f" {int(layout[part].sum()):10d}")
    print(f"({seconds:.2f} s to measure)")


if __name__ == "__main__":
    main()
