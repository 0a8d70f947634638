"""A real one-node SLURM cluster for the SLURM tests (tests/cluster/local_slurm.py), or a skip saying why not."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
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
    """sweeps/demo.yaml, copied into the job's working directory (its output_dir is relative to it)."""
    return Path(shutil.copy(ROOT / "sweeps" / "demo.yaml", tmp_path / "demo.yaml"))
