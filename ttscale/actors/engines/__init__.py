"""Engines behind one interface (`Engine`, in token ids); `create_engine` picks one by name."""

from __future__ import annotations

from typing import Any

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

ENGINES = ("hf", "vllm")

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
]


def create_engine(name: str, model: str, **options: Any) -> Engine:
    """Load `model` on the engine called `name` (imports torch/vLLM only here, on first use)."""
    if name == "hf":
        from ttscale.actors.engines.hf import HFEngine

        return HFEngine(model, **options)
    if name == "vllm":
        try:
            from ttscale.actors.engines.vllm import VLLMEngine
        except ImportError as exc:
            raise ConfigError(
                f"Engine 'vllm' is not available here ({exc}). Install it on a GPU machine with "
                "pip install 'ttscale[vllm]', or use engine: hf."
            ) from None
        return VLLMEngine(model, **options)
    raise ConfigError(f"Unknown engine '{name}'. Known: {', '.join(ENGINES)}.")
