# Two commands for a newcomer: `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel; GPU users: `make setup TORCH_SPEC=torch` (or install your own torch first).
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test test-fast lint bench

$(BIN)/moeguard: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev,lm-eval]"
	touch $(BIN)/moeguard

setup: $(BIN)/moeguard

demo: setup
	$(BIN)/moeguard demo

test: setup lint
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/python benchmarks/capture_overhead.py
	$(BIN)/python benchmarks/detect_memory.py
	$(BIN)/python benchmarks/safemoe_overhead.py --threads 1
	$(BIN)/python benchmarks/eval_throughput.py
	$(BIN)/python benchmarks/demo_wall_time.py
