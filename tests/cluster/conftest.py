"""A real one-node SLURM cluster for the SLURM tests (tests/cluster/local_slurm.py), or a skip saying why not."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml
from local_slurm import LocalSlurm, SlurmUnavailable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")  # torn down (daemons stopped) as soon as the SLURM tests are done
def slurm():
    cluster = LocalSlurm()
    try:
        cluster.start()
    except SlurmUnavailable as exc:
        cluster.stop()
        pytest.skip(f"no local SLURM cluster: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def job_env():
    """What a job needs from the submitting shell: this venv's ray, ttscale and python first on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    return {"PATH": f"{venv_bin}:{os.environ.get('PATH', '')}", "PYTHON": sys.executable}


@pytest.fixture
def script() -> str:
    return str(ROOT / "cluster" / "slurm-ray.sh")


@pytest.fixture
def demo_sweep(tmp_path) -> Path:
    """sweeps/demo.yaml (its model, engine, forcing and sampling as shipped), trimmed to 4 problems in 2 units and
    budgets 16 and 32, written into the job's working directory (its output_dir is relative to it).

    The whole demo (8 problems, budgets 16 to 256: ~4k thinking tokens, ~5 minutes of SmolLM2 on 2 cores) would
    only add model time: the job, Ray, the driver and the store do the same work; `make demo` runs it whole."""
    spec = yaml.safe_load((ROOT / "sweeps" / "demo.yaml").read_text())
    spec["datasets"][0]["limit"] = 4
    spec["problems_per_unit"] = 2
    spec["budgets"] = [16, 32]
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
