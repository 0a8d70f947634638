"""Fixtures for the explorer tests: small real results made by `ttscale sweep` with the fake engine on a local Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
from explorer_results import fake_sweep, run_cli


@pytest.fixture(scope="session")
def demo_results(tmp_path_factory) -> Path:
    """A finished fake-engine sweep's results directory (nested trajectories, solution sets), made once."""
    tmp = tmp_path_factory.mktemp("explorer")
    run_cli("sweep", str(fake_sweep(tmp)))
    return tmp / "results"
