"""The engine seam: one interface in token ids (`Engine`), the registry that describes each engine, the engines.

This package sits below forcing and the runner (which drive an `Engine`) and below the Ray actors (which hold
one); it imports neither.
"""

from __future__ import annotations

from ttscale.engines.base import (
    GREEDY,
    Engine,
    EngineInfo,
    Generation,
    GenerationRequest,
    Sampling,
    ScoreRequest,
)
from ttscale.engines.registry import (
    ENGINE_KINDS,
    EngineKind,
    Placement,
    create_engine,
    engine_kind,
    engine_unavailable,
    register_engine,
)

__all__ = [
    "ENGINE_KINDS",
    "GREEDY",
    "Engine",
    "EngineInfo",
    "EngineKind",
    "Generation",
    "GenerationRequest",
    "Placement",
    "Sampling",
    "ScoreRequest",
    "create_engine",
    "engine_kind",
    "engine_unavailable",
    "register_engine",
]
