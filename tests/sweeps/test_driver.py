"""Sweeps on a real local Ray instance with the real hf engine (SmolLM2), tiny budgets.

End to end, resume, spec edits, an actor killed mid-unit, and the driver killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from invariants import assert_rows_are_sound
from ttscale.store import ResultStore
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.run import run_sweep
from ttscale.tasks import get_task

pytestmark = [pytest.mark.ray, pytest.mark.model]

ROWS = 2 * 2 * 2  # problems × seeds × budgets


def keys(store):
    table = store.read_table(["cell_id", "problem_id"])
    return list(zip(table.column("cell_id").to_pylist(), table.column("problem_id").to_pylist(), strict=True))


def test_end_to_end_resume_and_spec_edits(ray_local, tmp_path, make_sweep):
    path = make_sweep()
    seen_actors = []

    def look_at_the_dashboard(actor, unit) -> None:
        from ray.util.state import list_actors  # the dashboard's state API, as the web UI uses it

        address = ray_local.get_runtime_context().gcs_address  # this instance: others may run on the machine
        seen_actors.extend(a.name for a in list_actors(address=address, filters=[("class_name", "=", "EngineWorker")]))

    outcome = run_sweep(load_sweep(path), address=None, on_dispatch=look_at_the_dashboard)
    store = ResultStore(tmp_path / "results")
    assert "t/smollm2-135m#0" in seen_actors  # actors are named <sweep>/<model>#<replica>
    on_model = 'model="smollm2-135m"'  # the driver's series on the dashboard's metrics view (Prometheus)
    assert _metric(ray_local, "ray_ttscale_rows_stored_total", on_model, ROWS) == ROWS
    assert _metric(ray_local, "ray_ttscale_cells_done", on_model, 4) == 4  # budgets × seeds
    thinking = outcome.thinking_tokens
    assert thinking > 0 and _metric(ray_local, "ray_ttscale_thinking_tokens_total", on_model, thinking) == thinking
    assert outcome.rows_written == ROWS and not outcome.failed_units
    assert len(keys(store)) == len(set(keys(store))) == ROWS  # exactly one row per (cell, problem)
    task = get_task("demo-arith")
    trajectories = store.read_trajectories().to_pandas()
    assert_rows_are_sound(store.read_pandas(), trajectories, task, task.load(2), engine="hf")
    ds = store.read()  # a Ray Dataset over the shards
    assert ds.count() == ROWS and "p_correct" in ds.schema().names
    assert len(store.row_shards()) == 2  # one shard per unit (one problem each)
    manifest = store.manifest()
    assert manifest["sweep_sha256"] == load_sweep(path).sha256 and manifest["runs"][-1]["engines"]["smollm2-135m"]

    # the same command again: nothing runs, nothing is written
    assert run_sweep(load_sweep(path), address=None).rows_written == 0
    assert len(store.row_shards()) == 2

    # a new budget: only its cells run
    path = make_sweep(budgets=[8, 16, 32])
    before = set(keys(store))
    outcome = run_sweep(load_sweep(path), address=None)
    assert outcome.rows_written == 2 * 2
    assert set(keys(store)) > before and len(keys(store)) == ROWS + 4
    assert set(store.read_pandas(["budget"]).budget) == {8, 16, 32}

    # a changed forcing string: new cell ids, never mixed with the old rows
    path = make_sweep(
        budgets=[8, 16, 32], models=[{"name": "smollm2-135m", "threads": 2, "overrides": {"continuation": "\nHmm"}}]
    )
    outcome = run_sweep(load_sweep(path), address=None)
    assert outcome.rows_written == ROWS + 4
    rows = store.read_pandas(["cell_id", "problem_id", "budget", "seed"])
    assert rows.groupby(["budget", "seed"]).cell_id.nunique().eq(2).all()  # old and new ids side by side
    assert not rows.duplicated(["cell_id", "problem_id"]).any()
    configs = store.read_pandas(["config_id", "config"]).drop_duplicates()
    assert len(configs) == 2 and sum("\\nHmm" in c for c in configs.config) == 1  # each row says what made it
    assert len({run["sweep_text"] for run in store.manifest()["runs"]}) == 3  # every run's sweep file is kept

    # ...and analysis shows the two configs as two models instead of averaging them into one curve
    from ttscale.analysis import Results
    from ttscale.errors import TtscaleWarning

    with pytest.warns(TtscaleWarning, match="rows from several configs"):
        results = Results.open(store.root)
    names = set(results.rows.model)
    assert len(names) == 2 and all(name.startswith("smollm2-135m@") for name in names)
    assert set(results.curves("accuracy").model) == names


def test_an_actor_killed_mid_unit_is_retried(ray_local, tmp_path, make_sweep):
    path = make_sweep()
    killed, kill_first_actor_soon = killer(ray_local)
    outcome = run_sweep(load_sweep(path), address=None, on_dispatch=kill_first_actor_soon)
    store = ResultStore(tmp_path / "results")
    assert not outcome.failed_units
    assert len(keys(store)) == len(set(keys(store))) == ROWS
    failures = store.failures()
    assert failures and all("Actor" in f["error"] for f in failures)
    assert killed[0] in {f["unit_id"] for f in failures}  # the killed unit failed once, then was redone


def test_driver_killed_then_rerun_completes_without_redoing_units(tmp_path, make_sweep):
    path = make_sweep()
    store = ResultStore(tmp_path / "results")
    cmd = [sys.executable, "-m", "ttscale.cli", "sweep", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not store.row_shards():
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "no shard appeared"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        _kill_group(proc)
    first_shards = {p.name: p.stat().st_mtime for p in store.row_shards()}
    first_keys = set(keys(store))
    assert 0 < len(first_keys) < ROWS

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600, start_new_session=True)
    assert rerun.returncode == 0, rerun.stderr
    assert len(keys(store)) == len(set(keys(store))) == ROWS
    assert all(p.stat().st_mtime == first_shards[p.name] for p in store.row_shards() if p.name in first_shards)
    second_run = _events_of_last_run(store)
    finished_before = {name.rsplit("-", 1)[0] for name in first_shards}
    assert not finished_before & {e["unit"] for e in second_run if e["event"] == "dispatch"}


def killer(ray):
    """An on_dispatch hook that kills the first actor it sees while it runs that first unit (mid-unit): the
    actor's live progress says when the unit has started generating."""
    killed: list[str] = []

    def kill_when_running(actor, unit_id: str) -> None:
        deadline = time.monotonic() + 120
        while unit_id not in ray.get(actor.progress.remote())["units"] and time.monotonic() < deadline:
            time.sleep(0.05)
        ray.kill(actor, no_restart=True)

    def hook(actor, unit) -> None:
        if not killed:
            killed.append(unit.unit_id)
            threading.Thread(target=kill_when_running, args=(actor, unit.unit_id), daemon=True).start()

    return killed, hook


def _events_of_last_run(store):
    events = store.events()
    start = max(i for i, e in enumerate(events) if e["event"] == "run_start")
    return events[start:]


def _kill_group(proc) -> None:
    """The killed driver's local Ray processes are in its session: take them down too."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _metric(ray, name: str, label: str, expected: float, timeout: float = 30.0) -> float | None:
    """A ray.util.metrics series as Prometheus scrapes it from this node, once it reaches `expected` (it is
    exported every few seconds, so the last unit's increments can lag behind the sweep's end)."""
    import urllib.request

    port = ray._private.worker.global_worker.node.metrics_export_port
    deadline = time.monotonic() + timeout
    values: list[float] = []
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        values = [
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name) and label in line
        ]
        if values and sum(values) >= expected:
            return sum(values)
        time.sleep(1.0)
    return sum(values) if values else None


def test_a_unit_out_of_attempts_is_reported_then_resumed(ray_local, tmp_path, make_sweep):
    from typer.testing import CliRunner

    from ttscale.cli import app

    path = make_sweep(max_attempts=1)
    killed, kill_first_actor_soon = killer(ray_local)
    outcome = run_sweep(load_sweep(path), address=None, on_dispatch=kill_first_actor_soon)
    assert outcome.failed_units == killed

    def no_dataset_loading(*args, **kwargs):
        raise AssertionError("status of a results dir must plan from its manifest, not reload datasets")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("ttscale.sweeps.status.resolve", no_dataset_loading)
        status = CliRunner().invoke(app, ["status", str(tmp_path / "results")], terminal_width=200)
    assert status.exit_code == 0, status.output
    assert "failed work units" in status.output and killed[0] in status.output and "Actor" in status.output
    assert "4 of 8 rows stored" in status.output

    outcome = run_sweep(load_sweep(path), address=None)  # the same command again finishes the job
    assert outcome.rows_written == 4 and not outcome.failed_units
    status = CliRunner().invoke(app, ["status", str(path)], terminal_width=200)
    assert "8 of 8 rows stored" in status.output and "failed work units" not in status.output
