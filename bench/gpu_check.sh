#!/usr/bin/env bash
# Grade the example submissions under the gpu profile on a CUDA machine and print the time per
# submission and per task. One prepared run for a lent GPU (no network there): it uses the Python
# whose torch sees CUDA, runs this checkout from source (PYTHONPATH, nothing to install), and
# grades with bubblewrap when it works, else in a plain subprocess.
#
#   bash bench/gpu_check.sh [OUT]        # OUT defaults to $OUT/gpu-check, or ./gpu-check
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-.}/gpu-check}"

python=""
for candidate in python3 python /usr/bin/python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    python="$(command -v "$candidate")"; break
  fi
done
if [ -z "$python" ]; then
  echo "gpu_check: no Python here has a torch that sees a CUDA GPU" >&2
  exit 2
fi
"$python" -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")'

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
missing=$("$python" - <<'PY'
import importlib
names = ["pytorch_lightning", "lime", "skimage", "sklearn", "jinja2", "weasyprint", "matplotlib", "pandas",
         "yaml", "pydantic", "typer", "rich", "dask", "distributed"]
print(" ".join(n for n in names if importlib.util.find_spec(n) is None))
PY
)
if [ -n "$missing" ]; then
  echo "gpu_check: missing Python packages here: $missing (install them from a wheelhouse, then rerun)" >&2
  exit 2
fi

sandbox="--no-sandbox"
if command -v bwrap >/dev/null && bwrap --ro-bind / / true 2>/dev/null; then sandbox=""; fi
rm -rf "$out"
start=$(date +%s.%N)
"$python" -m grader.cli grade submissions --profile gpu --workers 1 --force $sandbox --out "$out"
end=$(date +%s.%N)
"$python" - "$out" "$start" "$end" <<'PY'
import json, sys
from pathlib import Path
out, start, end = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
stages = ["load", "checks", "evaluate", "q1_saliency", "q2_filters", "q3_lime", "q4_freeform", "probes", "report"]
print(f"{'submission':<12} {'status':<7} {'total':>7} " + " ".join(f"{s:>11}" for s in stages))
for path in sorted(out.glob("*/result.json")):
    result = json.loads(path.read_text())
    timings = result["timings"]
    print(f"{result['student_id']:<12} {result['status']:<7} {sum(timings.values()):7.2f} "
          + " ".join(f"{timings.get(s, float('nan')):11.2f}" for s in stages))
    assert result["profile"]["device"] == "cuda", "graded under another profile"
print(f"wall time for the batch: {end - start:.1f} s")
PY
