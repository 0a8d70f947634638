"""Two `ttscale sweep` on one results directory (two SLURM jobs of one sweep, say): the second is refused in
one line naming the first, and no row is ever written twice. The engine is the `fake` double."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from reliability_figures import record_fault

from ttscale.store import ResultStore

pytestmark = pytest.mark.ray


def test_a_second_driver_on_a_busy_results_dir_is_refused_in_one_line(tmp_path, make_sweep):
    path = make_sweep(
        models=[{"name": "fake-slow", "engine": "fake", "device": "cpu", "threads": 1, "replicas": 1,
                 "engine_options": {"seconds_per_token": 0.004}}],
        datasets=[{"name": "demo-arith", "limit": 6}], budgets=[128], seeds=2, problems_per_unit=2,
    )  # fmt: skip
    cmd = [sys.executable, "-m", "ttscale.cli", "sweep", str(path)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "results" / "run.lock"
    deadline = time.monotonic() + 120
    while not lock.exists():
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "is being written by another ttscale sweep (t: host" in lines[0], second.stderr
    assert f"pid {first.pid}" in lines[0]
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    keys = ResultStore(tmp_path / "results").read_pandas(["cell_id", "problem_id"])
    assert len(keys) == 6 * 2 and not keys.duplicated().any()
    assert not lock.exists()  # released at the end
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=120).returncode == 0  # free again
    record_fault("two drivers on one results dir", injected=1, survived=1, rows_lost=0, duplicates=0)
