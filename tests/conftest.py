"""Shared fixtures: the real SmolLM2 engine (loaded once per session) and the shared benchmark data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    path = Path(os.environ.get("TTSCALE_SHARED_DATA", ROOT / ".." / "shared" / "data"))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is absent (only the development machine has it; set TTSCALE_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def smol():
    """SmolLM2-135M-Instruct on the hf engine, CPU, fp32 (the first load ever dequantises the GGUF, ~40 s)."""
    from ttscale.engines.hf import HFEngine

    return HFEngine("smollm2-135m", threads=min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray instance with its dashboard (token auth on, as by default), shared by the session."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, namespace="ttscale", include_dashboard=True, log_to_driver=False)
    yield ray
    ray.shutdown()
