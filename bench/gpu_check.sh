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
#   KIT=.gpu-kit bash bench/gpu_check.sh   # first install what the machine lacks (bench/gpu_kit.sh)
#   LIMIT=420 bash bench/gpu_check.sh      # stop grading after 420 s and report what was graded
#
# Before the class, one submission is graded as a preflight, in bubblewrap when it works: if that
# server cannot use the GPU or the grade fails, the reason is printed and the class is graded in a
# plain subprocess (or not at all, when that fails too).
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

if [ -n "${KIT:-}" ]; then
  # shellcheck source=bench/gpu_kit.sh
  source bench/gpu_kit.sh install "$KIT"
fi

python=""
wanted='import torch, sys; sys.exit(not torch.cuda.is_available())'  # a torch that sees a CUDA GPU
[ -n "$dry_run" ] && wanted='import torch'
for candidate in python3 python /usr/bin/python3 .venv/bin/python; do
  if command -v "$candidate" >/dev/null && "$candidate" -c "$wanted" 2>/dev/null; then
    python="$(command -v "$candidate")"
    break
  fi
done
if [ -z "$python" ]; then
  echo "gpu_check: no Python here has a torch that sees a CUDA GPU" >&2
  exit 2
fi
"$python" -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
               + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (dry run)"))'

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
# The grader's own probe (bubblewrap found, and able to make the namespaces the sandbox uses).
if "$python" -c 'import sys; from grader.sandbox.isolation import bwrap_works; sys.exit(not bwrap_works())'; then
  sandbox=""
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
make_class() {
  "$python" - "$1" "$2" "${3:-}" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "bench")
from example_class import WORKING_EXAMPLES, copy_examples
copy_examples(Path(sys.argv[1]), int(sys.argv[2]), [sys.argv[3]] if sys.argv[3] else WORKING_EXAMPLES)
PY
}

# Preflight: one small submission, quick settings, exactly as the class will be graded.
preflight() {
  rm -rf "$scratch/preflight" "$scratch/preflight-out"
  make_class "$scratch/preflight" 1 small_cnn
  local start end
  start=$(date +%s.%N)
  "$python" -m grader.cli grade "$scratch/preflight" --profile "$profile" --workers 1 --force $sandbox --quick \
    --out "$scratch/preflight-out" >"$scratch/preflight.log" 2>&1 || true
  end=$(date +%s.%N)
  "$python" - "$scratch/preflight-out" "$scratch/preflight.log" "$start" "$end" <<'PY'
import json, sys
from pathlib import Path
results = sorted(Path(sys.argv[1]).glob("*/result.json"))
if not results:
    print("preflight: no result; the grader said:\n" + Path(sys.argv[2]).read_text()[-3000:])
    sys.exit(1)
result = json.loads(results[0].read_text())
took = float(sys.argv[4]) - float(sys.argv[3])
print(f"preflight: {result['status']} in {took:.1f} s, isolation {result.get('isolation')}, "
      f"device {result['profile'].get('device')}")
print("  stages: " + ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in result["timings"].items()))
for error in result.get("errors", []):
    print(f"  {error['stage']}: {error['message'][:1500]}")
sys.exit(0 if result["status"] == "graded" else 1)
PY
}
if ! preflight; then
  if [ -z "$sandbox" ]; then
    echo "preflight failed in bubblewrap: grading in a plain subprocess instead (--no-sandbox)"
    sandbox="--no-sandbox"
    preflight || { echo "gpu_check: the preflight fails without the sandbox too" >&2; exit 3; }
  else
    echo "gpu_check: the preflight failed" >&2; exit 3
  fi
fi

# What a fresh process pays for the device before its first answer (the sandbox servers warm it
# ahead: HardwareProfile.warm): one process alone, then one per worker at once, as a class starts.
device_probe() {
  "$python" - "$1" "$profile" <<'PY'
import subprocess, sys
code = """
import time; t0 = time.perf_counter()
import torch; t1 = time.perf_counter()
from grader.profile import exercise_device; exercise_device(sys.argv[1]); t2 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f}")
"""
device = "cuda" if sys.argv[2] == "gpu" else "cpu"
for count in (1, int(sys.argv[1])):
    runs = [subprocess.Popen([sys.executable, "-c", "import sys\n" + code, device], stdout=subprocess.PIPE, text=True)
            for _ in range(count)]
    times = [tuple(map(float, run.communicate()[0].split())) for run in runs]
    print(f"device probe, {count} process(es) at once: import torch {max(t[0] for t in times):.2f} s, "
          f"context and handles {min(t[1] for t in times):.2f}-{max(t[1] for t in times):.2f} s")
PY
}
device_probe "$workers" || echo "device probe failed"
# Whether a zygote forks the servers here, and how long a submission waits for one (the first
# includes the zygote's imports): the class's `sandbox_start` explained before it runs.
"$python" bench/sandbox_start.py --profile "$profile" 2>&1 || echo "sandbox start probe failed"

make_class "$scratch/class" "$copies"
rm -rf "$out"
limit="${LIMIT:-0}"
echo "grading $copies submissions, profile $profile, $workers workers, ${sandbox:-bwrap sandbox}" \
     "$( [ "$limit" != 0 ] && echo "(stopped after $limit s)")"
start=$(date +%s.%N)
status=0
timeout -s INT --kill-after=30 "$limit" \
  "$python" -m grader.cli grade "$scratch/class" --profile "$profile" --workers "$workers" --force $sandbox \
  "${extra[@]}" --out "$out" >"$scratch/grade.log" 2>&1 || status=$?
end=$(date +%s.%N)
if [ "$status" != 0 ]; then
  echo "grader grade exited with $status$( [ "$status" = 124 ] && echo " (the time limit)"); its last lines:"
  tail -n 15 "$scratch/grade.log"
fi
# What the grader warned of (a zygote that could not fork its servers, and the like), each once.
grep -v "findfont" "$scratch/grade.log" | grep -i "xai-grader\|warning" | sort | uniq -c | sort -rn | head -n 12 || true
"$python" - "$out" "$start" "$end" "$profile" "$copies" "$workers" <<'PY'
import json, os, statistics, sys
from pathlib import Path
out, profile, copies = Path(sys.argv[1]), sys.argv[4], int(sys.argv[5])
start, end = float(sys.argv[2]), float(sys.argv[3])
stages = ["sandbox_start", "load", "checks", "evaluate", "q1_saliency", "q2_filters", "q3_lime", "q4_freeform",
          "probes", "report"]
results = [json.loads(path.read_text()) for path in sorted(out.glob("*/result.json"))]
for result in results:
    assert result["profile"]["device"] == ("cuda" if profile == "gpu" else "cpu"), "graded under another profile"
wall = end - start
graded = sum(r["status"] == "graded" for r in results)
print(f"{len(results)} of {copies} submissions ({graded} graded) in {wall:.1f} s: "
      f"{60 * len(results) / wall:.1f} submissions/min")
# The steady state: after each worker's first submission (its zygote's imports, its first CUDA
# context), when each result was written.
workers = int(sys.argv[6])
written = sorted(os.path.getmtime(path) for path in out.glob("*/result.json"))
if len(written) > 2 * workers:
    steady = 60 * (len(written) - workers) / (written[-1] - written[workers - 1])
    first_wave = written[workers - 1] - start
    print(f"steady state: {steady:.1f} submissions/min after the first wave ({first_wave:.1f} s); "
          f"a class of {copies} at that rate: {first_wave + 60 * (copies - workers) / steady:.0f} s")
for result in results:
    for error in result.get("errors", [])[:1]:
        print(f"  {result['folder']} {result['status']}: {error['stage']}: {error['message'][:300]}")
        break
print("mean seconds a submission by stage (each worker's own clock):")
by_example = {}
for result in results:
    by_example.setdefault(result["folder"].split("_", 1)[1], []).append(result)
print(f"{'example':<16} {'n':>3} {'total':>7} " + " ".join(f"{s:>11}" for s in stages))
for example, group in sorted(by_example.items()):
    mean = {s: statistics.fmean(r["timings"].get(s, 0.0) for r in group) for s in stages}
    print(f"{example:<16} {len(group):3d} {sum(mean.values()):7.2f} " + " ".join(f"{mean[s]:11.2f}" for s in stages))
PY
