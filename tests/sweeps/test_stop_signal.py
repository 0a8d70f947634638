"""A sweep stopped by a signal (preemption, SLURM's time-limit warning) keeps what finished and resumes.

The engine is the `fake` double, sleeping per token, on CPUs: what is checked is the driver's stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from reliability_figures import record_fault

from ttscale.store import ResultStore

pytestmark = pytest.mark.ray

UNITS, PROBLEMS_PER_UNIT = 4, 2


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGTERM], ids=["SIGUSR1", "SIGTERM"])
def test_a_signal_stops_taking_work_keeps_what_finished_and_a_rerun_resumes(tmp_path, make_sweep, signum):
    path = make_sweep(
        models=[
            {
                "name": "fake-slow",
                "engine": "fake",
                "device": "cpu",
                "threads": 1,
                "replicas": 1,
                "engine_options": {"seconds_per_token": 0.004},
            }
        ],
        datasets=[{"name": "demo-arith", "limit": UNITS * PROBLEMS_PER_UNIT}],
        budgets=[128],
        seeds=2,
        problems_per_unit=PROBLEMS_PER_UNIT,
    )  # fmt: skip  4 units of ~2 s each on one actor
    store = ResultStore(tmp_path / "results")
    cmd = [sys.executable, "-m", "ttscale.cli", "sweep", str(path), "--stop-grace", "30"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not store.row_shards():
        assert proc.poll() is None and time.monotonic() < deadline, "no unit finished"
        time.sleep(0.1)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("stopped by")]
    assert lines and signum.name in lines[0] and "Run the same command to resume" in lines[0]
    stored = store.read_table(["cell_id", "problem_id"]).num_rows
    assert 0 < stored < UNITS * PROBLEMS_PER_UNIT * 2  # whole units only: the queued ones never started
    assert stored % (PROBLEMS_PER_UNIT * 2) == 0
    assert [e["reason"] for e in store.events() if e["event"] == "stop_requested"] == [signum.name]

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    keys = store.read_pandas(["cell_id", "problem_id"])
    assert len(keys) == UNITS * PROBLEMS_PER_UNIT * 2 and not keys.duplicated().any()
    record_fault(f"preemption ({signum.name})", injected=1, survived=1, rows_lost=0, duplicates=0)
