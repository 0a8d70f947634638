"""Fixtures for sweep tests: one real local Ray instance per session, and small sweep files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml


def sweep_dict(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """A tiny sweep: SmolLM2 on two demo-arith problems, one problem per unit, two seeds, budgets 8 and 16."""
    spec = {
        "name": "t",
        "output_dir": str(tmp_path / "results"),
        "models": [{"name": "smollm2-135m", "threads": 2}],
        "datasets": [{"name": "demo-arith", "limit": 2}],
        "budgets": [8, 16],
        "seeds": 2,
        "problems_per_unit": 1,
    }
    spec.update(changes)
    return spec


def write_sweep(tmp_path: Path, filename: str = "sweep.yaml", **changes: Any) -> Path:
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(sweep_dict(tmp_path, **changes), sort_keys=False))
    return path


@pytest.fixture
def make_sweep(tmp_path):
    """Write a tiny sweep file (see `sweep_dict`), with any top-level field changed."""
    return lambda filename="sweep.yaml", **changes: write_sweep(tmp_path, filename, **changes)


@pytest.fixture
def sweep_spec(tmp_path):
    """The tiny sweep as a dict, to break on purpose."""
    return lambda **changes: sweep_dict(tmp_path, **changes)
