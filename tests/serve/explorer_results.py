"""Small real results for the explorer tests: a fake-engine sweep file and the CLI that runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

BUDGETS = [8, 16, 32, 64]


def fake_sweep(tmp: Path, name: str = "explorer-demo", **changes) -> Path:
    """A sweep file: two fake models on demo-arith (4 problems) and demo-mc (3), budgets 8…64, two seeds."""
    spec = {
        "name": name,
        "output_dir": str(tmp / "results"),
        "models": [{"name": m, "engine": "fake", "device": "cpu", "threads": 1, "replicas": 1}
                   for m in ("fake-a", "fake-b")],
        "datasets": [{"name": "demo-arith", "limit": 4}, {"name": "demo-mc", "limit": 3}],
        "budgets": BUDGETS,
        "seeds": 2,
    }  # fmt: skip
    spec.update(changes)
    path = tmp / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "ttscale.cli", *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc
