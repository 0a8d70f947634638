"""Engine faults injected for real on a local Ray instance: a hung engine, CUDA's out-of-memory error, and a
real CPU MemoryError in the actor process. The engine is the `fake` double (its fault options), so each test
knows which unit fails and what the rows must be; the retry, replacement and split logic under test is the
driver's, the same for every engine."""

from __future__ import annotations

import pytest
from reliability_figures import record_fault
from typer.testing import CliRunner

from invariants import rows_without_timings
from ttscale.cli import app
from ttscale.store import ResultStore
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.run import run_sweep
from ttscale.tasks import get_task

pytestmark = pytest.mark.ray

PROBLEMS, SEEDS, BUDGETS = 4, 2, [8, 16]
ROWS = PROBLEMS * SEEDS * len(BUDGETS)


def fake_sweep(
    make_sweep,
    filename="sweep.yaml",
    *,
    problems_per_unit=2,
    replicas=2,
    output_dir=None,
    timeout_s=None,
    **engine_options,
):
    more = {"output_dir": output_dir} if output_dir else {}
    return make_sweep(
        filename, **more,
        models=[{"name": "fake", "engine": "fake", "device": "cpu", "threads": 1, "replicas": replicas,
                 "engine_options": engine_options}],
        datasets=[{"name": "demo-arith", "limit": PROBLEMS}], budgets=BUDGETS, seeds=SEEDS,
        problems_per_unit=problems_per_unit, max_attempts=2, unit_timeout_s=timeout_s,
    )  # fmt: skip


def status(path) -> str:
    result = CliRunner().invoke(app, ["status", str(path)], terminal_width=250)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_hung_unit_is_timed_out_retried_on_a_new_actor_then_recorded_failed(ray_local, tmp_path, make_sweep):
    stuck = get_task("demo-arith").load(PROBLEMS)[1]
    path = fake_sweep(make_sweep, problems_per_unit=1, timeout_s=5, hang_on=stuck.question)
    outcome = run_sweep(load_sweep(path), address=None)
    store = ResultStore(tmp_path / "results")

    assert len(outcome.failed_units) == 1 and outcome.rows_written == ROWS - SEEDS * len(BUDGETS)  # the rest ran
    failures = store.failures()
    assert [f["attempt"] for f in failures] == [1, 2] and [f["final"] for f in failures] == [False, True]
    assert all(f["error"].startswith("UnitTimeout: ran over unit_timeout_s=5 s") for f in failures)
    assert len({f["actor"] for f in failures}) == 2  # retried on a fresh actor: the hung one was replaced
    assert stuck.id not in set(store.read_pandas(["problem_id"]).problem_id)
    listed = status(tmp_path / "results")
    assert "failed work units" in listed and outcome.failed_units[0] in listed and "UnitTimeout" in listed

    # the engine mended (engine options never change results): the same sweep finishes the job, nothing twice
    path = fake_sweep(make_sweep, problems_per_unit=1)
    assert run_sweep(load_sweep(path), address=None).rows_written == SEEDS * len(BUDGETS)
    keys = store.read_pandas(["cell_id", "problem_id"])
    assert len(keys) == ROWS and not keys.duplicated().any()
    record_fault("hung engine", injected=2, survived=2, rows_lost=0, duplicates=0)


@pytest.mark.parametrize(
    "fault",
    [
        {"oom_above": 2},  # torch's CUDA OutOfMemoryError, from the double, for any batch over two sequences
        {"memory_per_sequence_mb": 200, "memory_limit_mb": 700},  # a real MemoryError: 4 sequences need 800 MB
    ],
    ids=["cuda-oom", "cpu-memory-error"],
)
def test_out_of_memory_halves_the_unit_until_it_fits(ray_local, tmp_path, make_sweep, fault):
    reference = fake_sweep(make_sweep, "reference.yaml", output_dir=str(tmp_path / "reference"))
    assert run_sweep(load_sweep(reference), address=None).rows_written == ROWS
    path = fake_sweep(make_sweep, **fault)
    outcome = run_sweep(load_sweep(path), address=None)
    store = ResultStore(tmp_path / "results")

    assert outcome.rows_written == ROWS and not outcome.failed_units
    splits = [e for e in store.events() if e["event"] == "split"]
    assert splits and all(len(e["into"]) == 2 for e in splits)
    assert all(not f["final"] and ("MemoryError" in f["error"]) for f in store.failures())
    expected = rows_without_timings(ResultStore(tmp_path / "reference"))
    assert rows_without_timings(store).equals(expected)  # smaller batches, the same rows
    record_fault("out of memory", injected=len(splits), survived=len(splits), rows_lost=0, duplicates=0)


def test_out_of_memory_at_one_sequence_is_recorded_failed(ray_local, tmp_path, make_sweep):
    path = fake_sweep(make_sweep, problems_per_unit=1, replicas=1, oom_above=0)
    path.write_text(path.read_text().replace("limit: 4", "limit: 1"))
    outcome = run_sweep(load_sweep(path), address=None)
    store = ResultStore(tmp_path / "results")
    assert outcome.rows_written == 0 and len(outcome.failed_units) == SEEDS  # split by seed, then out of tries
    assert all(u.count(".") == 1 for u in outcome.failed_units)
    assert sum(f["final"] for f in store.failures()) == SEEDS
    assert "out of memory" in status(tmp_path / "results")
