"""The vLLM lane's small demo-style sweep, written to a file and run through the CLI as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

# The lane's small demo-style sweep: engine vllm on the CPU build (on GPUs leave out device, threads and kv_cache_gib).
LANE_SWEEP = {
    "name": "vllm-lane",
    "models": [
        {
            "name": "smollm2-135m",
            "engine": "vllm",
            "device": "cpu",
            "threads": 2,
            "dtype": "float32",
            "engine_options": {"kv_cache_gib": 2},
        }
    ],
    "datasets": [{"name": "demo-arith", "limit": 3}],
    "budgets": [16, 48],
    "seeds": 2,
    "problems_per_unit": 2,
}


def write_sweep(where: Path, *, limit: int = 3, **model: object) -> Path:
    """The lane's sweep in `where` (results in where/results), with model fields changed (e.g. tensor_parallel)."""
    sweep = {**LANE_SWEEP, "output_dir": str(where / "results"), "models": [{**LANE_SWEEP["models"][0], **model}],
             "datasets": [{"name": "demo-arith", "limit": limit}]}  # fmt: skip
    where.mkdir(parents=True, exist_ok=True)
    path = where / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def run_cli(*args: str, timeout: float = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ttscale.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip
