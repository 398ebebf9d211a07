#!/usr/bin/env bash
# Grade a class of 200 copies of the example submissions under the gpu profile on one CUDA machine
# (issue 20: target, the class in 5 minutes or less) and print submissions per minute and the
# per-stage split. One prepared run for a lent GPU (no network there): it uses the Python whose torch
# sees CUDA, runs this checkout from source (PYTHONPATH, nothing to install), and grades with
# bubblewrap when it works, else in a plain subprocess.
#
#   bash bench/gpu_check.sh [OUT]          # OUT defaults to $OUT/gpu-check, or ./gpu-check
#   COPIES=200 WORKERS=8 bash bench/gpu_check.sh
#   DRY_RUN=1 bash bench/gpu_check.sh      # the same steps on the CPU, cpu profile, 4 copies, quick
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-.}/gpu-check}"
copies="${COPIES:-200}"
dry_run="${DRY_RUN:-}"
profile="gpu"
extra=()
if [ -n "$dry_run" ]; then
  copies="${COPIES:-4}"; profile="cpu"; extra=(--quick)
fi

python=""
for candidate in python3 python /usr/bin/python3 .venv/bin/python; do
  if [ -n "$dry_run" ]; then
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import torch' 2>/dev/null; then python="$(command -v "$candidate")"; fi
  elif command -v "$candidate" >/dev/null && "$candidate" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    python="$(command -v "$candidate")"
  fi
  [ -n "$python" ] && break
done
if [ -z "$python" ]; then
  echo "gpu_check: no Python here has a torch that sees a CUDA GPU" >&2
  exit 2
fi
"$python" -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, " + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (dry run)"))'

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
missing=$("$python" - <<'PY'
import importlib
names = ["pytorch_lightning", "lime", "skimage", "sklearn", "jinja2", "weasyprint", "matplotlib", "pandas",
         "yaml", "pydantic", "typer", "rich", "dask", "distributed", "threadpoolctl"]
print(" ".join(n for n in names if importlib.util.find_spec(n) is None))
PY
)
if [ -n "$missing" ]; then
  echo "gpu_check: missing Python packages here: $missing (install them from a wheelhouse, then rerun)" >&2
  exit 2
fi

# Workers: one per 2 CPU cores by default (each worker's grader and its sandbox share the GPU; the
# figures, PDFs and LIME's fits are CPU work), at most 8.
cores=$(nproc)
workers="${WORKERS:-$(( cores / 2 > 8 ? 8 : (cores / 2 < 1 ? 1 : cores / 2) ))}"
sandbox="--no-sandbox"
if command -v bwrap >/dev/null && bwrap --ro-bind / / true 2>/dev/null; then sandbox=""; fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
"$python" - "$scratch/class" "$copies" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "bench")
from example_class import copy_examples
copy_examples(Path(sys.argv[1]), int(sys.argv[2]))
PY
rm -rf "$out"
echo "grading $copies submissions, profile $profile, $workers workers, ${sandbox:-bwrap sandbox}"
start=$(date +%s.%N)
"$python" -m grader.cli grade "$scratch/class" --profile "$profile" --workers "$workers" --force $sandbox \
  "${extra[@]}" --out "$out" >/dev/null
end=$(date +%s.%N)
"$python" - "$out" "$start" "$end" "$profile" <<'PY'
import json, statistics, sys
from pathlib import Path
out, start, end, profile = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
stages = ["load", "checks", "evaluate", "q1_saliency", "q2_filters", "q3_lime", "q4_freeform", "probes", "report"]
results = [json.loads(path.read_text()) for path in sorted(out.glob("*/result.json"))]
for result in results:
    assert result["profile"]["device"] == ("cuda" if profile == "gpu" else "cpu"), "graded under another profile"
wall = end - start
graded = sum(r["status"] == "graded" for r in results)
print(f"{len(results)} submissions ({graded} graded) in {wall:.1f} s: {60 * len(results) / wall:.1f} submissions/min")
print("mean seconds a submission by stage (each worker's own clock):")
by_example = {}
for result in results:
    by_example.setdefault(result["folder"].split("_", 1)[1], []).append(result)
print(f"{'example':<16} {'n':>3} {'total':>7} " + " ".join(f"{s:>11}" for s in stages))
for example, group in sorted(by_example.items()):
    mean = {s: statistics.fmean(r["timings"].get(s, 0.0) for r in group) for s in stages}
    print(f"{example:<16} {len(group):3d} {sum(mean.values()):7.2f} " + " ".join(f"{mean[s]:11.2f}" for s in stages))
PY
