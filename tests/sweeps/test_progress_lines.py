"""The plain progress lines a batch log shows: a line per unit as it ends, a status line at a steady interval."""

from __future__ import annotations

import subprocess
import sys
from collections import deque
from types import SimpleNamespace

import pytest
from test_engine_faults import ROWS, fake_sweep

from ttscale.cli.progress_lines import ProgressLines, eta
from ttscale.sweeps.jobs import Job
from ttscale.sweeps.outcome import SweepOutcome
from ttscale.sweeps.plan import WorkUnit
from ttscale.sweeps.progress import Progress, RunProgress


def progress(rows_done: int, *, events=(), running=2, failed=0, tokens=0) -> Progress:
    return Progress(
        cells_done=rows_done // 4, cells_to_do=25, rows_done=rows_done, rows_to_do=100, tokens=tokens,
        units_to_do=10, units_done=rows_done // 10, units_running=running, units_failed=failed, events=tuple(events),
    )  # fmt: skip


def test_unit_lines_come_at_once_and_status_lines_at_most_every_interval():
    lines, now = [], [0.0]
    show = ProgressLines(lines.append, every_s=30, clock=lambda: now[0])
    show(progress(0))
    assert len(lines) == 1 and lines[0].startswith("progress: rows 0/100 (0%)")
    now[0] = 10
    show(progress(10, events=["unit u1 done: 10 rows in 9 s on smollm2#0"], tokens=1000))
    assert lines[1:] == ["unit u1 done: 10 rows in 9 s on smollm2#0"]  # no status line before 30 s
    now[0] = 40
    show(progress(20, events=["unit u2 failed on smollm2#0 (attempt 1 of 3): RuntimeError: boom"], failed=0,
                  tokens=4000))  # fmt: skip
    assert lines[2].startswith("unit u2 failed") and lines[3].startswith("progress: rows 20/100 (20%)")
    assert "units 2/10 done, 2 running, 0 failed" in lines[3] and "100 tok/s" in lines[3]
    assert "0:00:40 elapsed, ETA 0:02:40" in lines[3]  # 20 rows in 40 s: 80 more take 160 s
    now[0] = 45
    show.close()
    assert len(lines) == 5 and lines[4].startswith("progress: rows 20/100")


def test_the_eta_is_unknown_before_the_first_row_and_zero_at_the_end():
    assert eta(progress(0), 10) == "?"
    assert eta(progress(100), 10) == "0:00:00"


def test_the_eta_weighs_rows_by_their_estimated_actor_time():
    """Half the rows stored, but they were the cheap model's: a tenth of the work, so nine tenths are left."""
    half = Progress(cells_done=0, cells_to_do=4, rows_done=50, rows_to_do=100, tokens=0, work_to_do_s=1000.0,
                    work_done_s=100.0)  # fmt: skip
    assert eta(half, 60) == "0:09:00"
    assert eta(Progress(0, 4, 50, 100, 0), 60) == "0:01:00"  # no estimate: rows


class Cells:
    """The driver's metrics, reduced to what RunProgress tells them (no Ray needed)."""

    def cells(self, model, done, total):
        self.last = (model, done, total)


def test_each_stored_row_counts_its_share_of_its_units_estimated_time():
    small = WorkUnit("u-small", 0, 0, ("p1", "p2"), (0,), (8, 16), rows=4, tokens=100)  # 10 s at 10 tok/s
    large = WorkUnit("u-large", 1, 0, ("p1", "p2"), (0,), (8, 16), rows=4, tokens=900)  # 90 s
    jobs = [Job(unit=u, expected={(f"{u.unit_id}-b{b}", p) for b in (8, 16) for p in ("p1", "p2")})
            for u in (small, large)]  # fmt: skip
    spec = SimpleNamespace(models=[SimpleNamespace(name="1.5b"), SimpleNamespace(name="32b")])
    shown = []
    progress = RunProgress(spec, Cells(), SweepOutcome(), shown.append)
    progress.start([deque([jobs[0]]), deque([jobs[1]])], lambda unit: unit.tokens / 10)
    progress.rows_stored(jobs[0], set(jobs[0].expected), trajectories=2)
    progress.report()
    assert (shown[-1].work_to_do_s, shown[-1].work_done_s) == (100.0, 10.0)
    progress.rows_stored(jobs[1], {("u-large-b8", "p1")}, trajectories=0)
    progress.report()
    assert shown[-1].work_done_s == 10.0 + 90.0 / 4


@pytest.mark.ray
def test_a_sweep_whose_output_is_not_a_terminal_prints_a_line_per_unit_and_status_lines(tmp_path, make_sweep):
    path = fake_sweep(make_sweep, problems_per_unit=2, replicas=1)  # two units of the test double
    proc = subprocess.run([sys.executable, "-m", "ttscale.cli", "sweep", str(path)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    done = [line for line in lines if line.startswith("unit ") and " done: " in line]
    assert len(done) == 2 and all(f"{ROWS // 2} rows in" in line for line in done)
    status = [line for line in lines if line.startswith("progress: ")]
    assert status and status[-1].startswith(f"progress: rows {ROWS}/{ROWS} (100%)")
    assert "units 2/2 done, 0 running, 0 failed" in status[-1]
