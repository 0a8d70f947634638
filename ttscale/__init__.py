"""ttscale: measure how reasoning models scale with thinking budget, exactly, on Ray."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names, imported on first use so `import ttscale` stays light (no torch, Ray or pandas).
_EXPORTS = {
    "measure": "ttscale.measure",
    "Measurement": "ttscale.measure",
    "ForcingConfig": "ttscale.forcing",
    "Sampling": "ttscale.engines.base",
    "create_engine": "ttscale.engines",
    "get_task": "ttscale.tasks",
    "list_tasks": "ttscale.tasks",
    "resolve_family": "ttscale.families",
    "TtscaleError": "ttscale.errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ttscale' has no attribute {name!r}")
