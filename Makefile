# Two commands on a fresh Linux machine:
#   make grade   set everything up, then grade the example submissions on the bundled data into out/
#   make test    set everything up, then run the whole test suite (what CI runs, .ci/run)
# While developing: make test-fast   the fast tier, pytest -m "not slow", under a minute on 2 cores
# (the slow tier: end-to-end grading, CLI batches, the sandbox, Chromium; tests/conftest.py's rule).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps grade test test-fast bench bench-cost examples clean

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

# torch is pinned to the CPU build (constraints.txt); an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	# onnx2torch (model.format onnx) without its torchvision requirement: see pyproject.toml.
	$(BIN)/python -m pip install --quiet --no-deps 'onnx2torch==1.5.15'
	touch $@

grade: setup
	$(BIN)/grader grade submissions --rubric rubric.yaml --out out

# Two pytest-xdist workers, a file to a worker (a module's batch fixture is graded once; the
# longest files are queued first, tests/conftest.py). TEST_WORKERS=0 runs in one process. The 25 slowest
# tests are listed at the end, to keep the run under 10 minutes on 2 cores.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

test-fast: setup
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not slow"

# Benchmarks print numbers and ratios; they are not timed tests. Each keeps its output, the exact
# command and the machine in its own section of bench/RESULTS.md. About an hour on 2 cores.
bench: setup
	$(BIN)/python bench/grading_cost.py
	$(BIN)/python bench/record.py sandbox_overhead "Sandbox overhead (bench/sandbox_overhead.py)" -- $(BIN)/python bench/sandbox_overhead.py
	$(BIN)/python bench/record.py parallel_grading "8 copies of the VGG example, 1 and 2 workers (bench/parallel_grading.py)" -- $(BIN)/python bench/parallel_grading.py
	$(BIN)/python bench/record.py fast_profile "The fast profile against cpu (bench/fast_profile.py)" -- $(BIN)/python bench/fast_profile.py
	$(BIN)/python bench/record.py review_latency "The review page with a class of 200 (bench/review_latency.py)" -- $(BIN)/python bench/review_latency.py
	$(BIN)/python bench/record.py gradient_checks "Gradients checked against the model's own outputs (bench/gradient_checks.py)" -- $(BIN)/python bench/gradient_checks.py
	$(BIN)/python bench/record.py fixed_cost "The fixed cost of a submission, this tree against the commit before issue 20 (bench/fixed_cost.py)" -- $(BIN)/python bench/fixed_cost.py --against 6f126ef
	$(BIN)/python bench/record.py class_throughput "20 copies of the examples, 2 workers (bench/class_throughput.py)" -- $(BIN)/python bench/class_throughput.py --copies 20 --workers 2
	$(BIN)/python bench/record.py layout_agreement "The canonical face layout against synthetic part masks (bench/layout_agreement.py)" -- $(BIN)/python bench/layout_agreement.py

# Grading cost per task alone: ours, the naive way and the FLOP floor (about 8 minutes on 2 cores).
bench-cost: setup
	$(BIN)/python bench/grading_cost.py

# Retrain the example submissions (minutes on 2 CPU cores; the trained weights are committed).
examples: setup
	$(BIN)/python scripts/train_examples.py

clean:
	rm -rf out check-out .pytest_cache
