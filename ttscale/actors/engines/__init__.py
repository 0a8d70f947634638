"""Engines behind one interface (`Engine`, in token ids); `create_engine` picks one by name."""

from __future__ import annotations

import importlib.util
from typing import Any

import ttscale
from ttscale.actors.engines.base import (
    GREEDY,
    Engine,
    EngineInfo,
    Generation,
    GenerationRequest,
    Sampling,
    ScoreRequest,
)
from ttscale.errors import ConfigError

ENGINES = ("hf", "vllm", "fake")

__all__ = [
    "ENGINES",
    "GREEDY",
    "Engine",
    "EngineInfo",
    "Generation",
    "GenerationRequest",
    "Sampling",
    "ScoreRequest",
    "create_engine",
    "engine_unavailable",
]


def engine_unavailable(name: str, *, anywhere: bool = False) -> str | None:
    """Why engine `name` cannot run in this install (one line with the fix), or None when it can.

    `anywhere=True` asks only what no machine can fix: an engine this ttscale does not ship."""
    if name in ("hf", "fake"):
        return None
    if name == "vllm":
        if importlib.util.find_spec("ttscale.actors.engines.vllm") is None:
            return (
                f"the vLLM engine is not part of ttscale {ttscale.__version__} yet (it is planned); "
                "use engine: hf for now."
            )
        if anywhere:
            return None
        if importlib.util.find_spec("vllm") is None:
            return "vLLM is not installed here. Install it on a GPU machine with pip install 'ttscale[vllm]'."
        from ttscale.actors.engines.vllm import installed_too_old

        return installed_too_old()
    return f"unknown engine '{name}'. Known: {', '.join(ENGINES)}."


def create_engine(name: str, model: str, **options: Any) -> Engine:
    """Load `model` on the engine called `name` (imports torch/vLLM only here, on first use)."""
    if name == "hf":
        from ttscale.actors.engines.hf import HFEngine

        return HFEngine(model, **options)
    if name == "fake":  # the test double for orchestration tests and benchmarks, never a model
        from ttscale.actors.engines.fake import FakeEngine

        return FakeEngine(model, **options)
    problem = engine_unavailable(name)
    if problem:
        raise ConfigError(f"Engine '{name}': {problem}")
    from ttscale.actors.engines.vllm import VLLMEngine

    return VLLMEngine(model, **options)
