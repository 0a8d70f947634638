"""Results stream out of the actor as (problem, seed) groups finish: the runner's pieces, the shard writer's flush
policy, and a unit that fails halfway keeping the groups it finished (its retry measures only the rest)."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest
from reliability_figures import record_fault
from test_engine_faults import BUDGETS, PROBLEMS, ROWS, SEEDS, fake_sweep

from ttscale.engines.fake import FakeEngine
from ttscale.families import resolve_family
from ttscale.runner import RunSettings, cell_ids, iter_unit, run_unit, unit_groups
from ttscale.schema import rows_table, trajectories_table
from ttscale.store import ResultStore
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.run import run_sweep
from ttscale.sweeps.writer import ShardWriter, UnexpectedRowsError
from ttscale.tasks import get_task

TASK = get_task("demo-arith")
SETTINGS = RunSettings(model="fake", engine="fake", family=resolve_family("fake", None))


class Slow(FakeEngine):
    """The double, with trajectories that take longer the higher their seed: groups finish at different times."""

    def _one(self, request):
        time.sleep(0.02 * (request.seed or 0) % 0.1)
        return super()._one(request)


def test_groups_stream_out_as_their_trajectories_finish_with_the_same_rows_as_the_whole_unit():
    problems = TASK.load(3)
    pieces = list(iter_unit(Slow(), TASK, problems, seeds=[0, 1], budgets=[8, 16], settings=SETTINGS))
    assert len(pieces) > 1  # groups came out before the unit ended
    assert sum(p.groups for p in pieces) == 3 * 2 and sum(len(p.rows) for p in pieces) == 3 * 2 * 2
    assert sum(len(p.trajectories) for p in pieces) == 3 * 2  # nested: one trajectory per group, with its rows

    whole = run_unit(FakeEngine(), TASK, problems, seeds=[0, 1], budgets=[8, 16], settings=SETTINGS)
    streamed = sorted((r for p in pieces for r in p.rows), key=lambda r: (r["problem_id"], r["seed"], r["budget"]))
    ordered = sorted(whole.rows, key=lambda r: (r["problem_id"], r["seed"], r["budget"]))
    same = ("cell_id", "answer", "answer_key", "correct", "thinking_tokens", "trajectory_id", "p_correct")
    assert [{k: r[k] for k in same} for r in streamed] == [{k: r[k] for k in same} for r in ordered]
    assert sum(p.generated_tokens for p in pieces) == whole.generated_tokens


def test_only_the_groups_holding_a_missing_row_are_measured():
    problems = TASK.load(2)
    cells = cell_ids(TASK, SETTINGS, [8, 16], [0, 1])
    missing = {(cells[16, 1], problems[1].id), (cells[8, 1], problems[1].id)}
    assert unit_groups(TASK, SETTINGS, [8, 16], [0, 1], missing) == {(problems[1].id, 1)}

    engine = FakeEngine()
    pieces = list(
        iter_unit(
            engine, TASK, problems, seeds=[0, 1], budgets=[8, 16], settings=SETTINGS, groups={(problems[1].id, 1)}
        )
    )
    rows = [r for p in pieces for r in p.rows]
    assert {(r["cell_id"], r["problem_id"]) for r in rows} == missing
    assert engine.generated_tokens == sum(p.generated_tokens for p in pieces)  # nothing else was generated


# -- the shard writer's flush policy ---------------------------------------------------------------------


class FakeJob:
    def __init__(self, unit_id: str) -> None:
        self.unit = type("Unit", (), {"unit_id": unit_id})()


def pieces_of(n_problems: int) -> list[tuple[dict, dict]]:
    """One piece per (problem, seed) group of a real unit run on the double: (header, tables)."""
    result = run_unit(FakeEngine(), TASK, TASK.load(n_problems), seeds=[0], budgets=[8, 16], settings=SETTINGS)
    out = []
    for traj in result.trajectories:
        rows = [r for r in result.rows if r["trajectory_id"] == traj["trajectory_id"]]
        keys = [(r["cell_id"], r["problem_id"]) for r in rows]
        header = {"kind": "rows", "keys": keys, "rows": len(rows), "groups": 1, "trajectories": 1, "tokens": 0,
                  "thinking_tokens": 0}  # fmt: skip
        out.append((header, {"rows": rows_table(rows), "trajectories": trajectories_table([traj])}))
    return out


def writer(tmp_path, **policy) -> tuple[ShardWriter, ResultStore]:
    store = ResultStore(tmp_path / "results")
    return ShardWriter(store, fetch=lambda tables: tables, lost_errors=(LookupError,), **policy), store


def test_a_shard_is_written_per_flush_groups_pieces_and_the_rest_when_the_unit_ends(tmp_path):
    shards, store = writer(tmp_path, flush_groups=2, flush_seconds=3600)
    job = FakeJob("u1")
    for header, tables in pieces_of(5):
        shards.submit(job, header, tables)
    written = shards.finished(wait=False)
    deadline = time.monotonic() + 10
    while len(written) < 4 and time.monotonic() < deadline:  # two shards of two pieces each, the fifth buffered
        written += shards.finished()
        time.sleep(0.01)
    assert len(written) == 4 and all(w.error is None and w.lost is None for w in written)
    assert len(store.row_shards()) == 2 and len(store.trajectory_shards()) == 2
    shards.end(job)
    written += shards.close()
    assert len(written) == 5 and len(store.row_shards()) == 3
    assert len(store.done_keys()) == 5 * 2 and len(store.read_trajectories()) == 5


def test_a_piece_waits_at_most_flush_seconds_before_it_is_on_disk(tmp_path):
    shards, store = writer(tmp_path, flush_groups=1000, flush_seconds=0.5)
    (header, tables), *_ = pieces_of(1)
    start = time.monotonic()
    shards.submit(FakeJob("u1"), header, tables)
    (written,) = shards.finished(wait=True)
    assert written.error is None and 0.4 < time.monotonic() - start < 5
    assert len(store.done_keys()) == 2
    shards.close()


def test_a_piece_that_cannot_be_fetched_comes_back_lost_and_one_with_other_rows_is_refused(tmp_path):
    def fetch(tables):
        if tables is None:
            raise LookupError("object lost with its node")
        return tables

    store = ResultStore(tmp_path / "results")
    shards = ShardWriter(store, fetch=fetch, lost_errors=(LookupError,), flush_groups=1)
    (header, tables), (other, _) = pieces_of(2)
    shards.submit(FakeJob("u1"), header, None)
    (lost,) = shards.finished(wait=True)
    assert isinstance(lost.lost, LookupError) and lost.error is None

    shards.submit(FakeJob("u2"), other, tables)  # a header naming rows its tables do not hold
    (refused,) = shards.finished(wait=True)
    assert isinstance(refused.error, UnexpectedRowsError) and store.done_keys() == set()
    shards.close()


def test_close_writes_every_buffered_piece_even_while_a_reader_lists_the_store(tmp_path):
    shards, store = writer(tmp_path, flush_groups=1000, flush_seconds=3600)
    seen: list[int] = []
    stop = threading.Event()
    reader = threading.Thread(target=lambda: [seen.append(len(store.done_keys())) for _ in iter(stop.is_set, True)])
    reader.start()
    jobs = [FakeJob("u0"), FakeJob("u1")]
    for i, (header, tables) in enumerate(pieces_of(4)):
        shards.submit(jobs[i % 2], header, tables)
    written = shards.close()
    stop.set()
    reader.join()
    assert len(written) == 4 and len(store.row_shards()) == 2  # one shard per unit
    assert set(seen) <= {0, 4, 8}  # a reader sees whole shards only: a unit's rows, never part of a shard
    assert len(store.done_keys()) == 8 and isinstance(store.read_table(), pa.Table)


# -- a unit that fails halfway ----------------------------------------------------------------------------


@pytest.mark.ray
def test_a_unit_that_hangs_halfway_keeps_the_groups_it_finished_and_its_retry_measures_only_the_rest(
    ray_local, tmp_path, make_sweep
):
    stuck = TASK.load(PROBLEMS)[1]  # the second problem of the first unit (two problems per unit)
    path = fake_sweep(make_sweep, problems_per_unit=2, replicas=1, timeout_s=5, hang_on=stuck.question)
    outcome = run_sweep(load_sweep(path), address=None)
    store = ResultStore(tmp_path / "results")

    stuck_rows = SEEDS * len(BUDGETS)
    assert outcome.rows_written == ROWS - stuck_rows  # the hung unit's other problem is stored, not thrown away
    assert len(outcome.failed_units) == 1
    (partial,) = [e for e in store.events() if e["event"] == "partial"]
    assert partial["streamed"] == stuck_rows and partial["missing"] == stuck_rows
    failures = store.failures()
    assert [f["attempt"] for f in failures] == [1, 2]  # the retry ran the stuck problem only, and hung again
    assert all(f["problems"] == [stuck.id] and f["rows_missing"] == stuck_rows for f in failures)  # what to look at
    stored = store.read_pandas(["problem_id", "cell_id"])
    assert stuck.id not in set(stored.problem_id) and not stored.duplicated().any()

    path = fake_sweep(make_sweep, problems_per_unit=2, replicas=1)  # the engine mended
    again = run_sweep(load_sweep(path), address=None)
    assert again.rows_written == stuck_rows  # only what was missing
    keys = store.read_pandas(["cell_id", "problem_id"])
    assert len(keys) == ROWS and not keys.duplicated().any()
    record_fault("unit hung halfway (streamed groups kept)", injected=2, survived=2, rows_lost=0, duplicates=0)


@pytest.mark.ray
def test_a_library_run_compacts_its_small_shards_at_its_end(ray_local, tmp_path, make_sweep, monkeypatch):
    """`run_sweep`, as a script calls it, ends as `ttscale sweep` does: many small shards merged (here 'many' is 4)."""
    from ttscale import compaction

    monkeypatch.setattr(compaction, "WORTHWHILE_SHARDS", 4)
    outcome = run_sweep(load_sweep(fake_sweep(make_sweep, problems_per_unit=1)), address=None)
    store = ResultStore(tmp_path / "results")
    assert outcome.rows_written == ROWS and not outcome.stopped
    assert len(store.row_shards()) == len(store.trajectory_shards()) == 1
    assert [e["rows"]["shards_after"] for e in store.events() if e["event"] == "compacted"] == [1]
    keys = store.read_pandas(["cell_id", "problem_id"])
    assert len(keys) == ROWS and not keys.duplicated().any()


def test_a_group_cut_from_a_stored_trajectory_streams_out_while_the_others_still_generate():
    problems = TASK.load(1)
    first = run_unit(FakeEngine(), TASK, problems, seeds=[0], budgets=[8, 16], settings=SETTINGS)
    pieces = list(
        iter_unit(Slow(), TASK, problems, seeds=[0, 1], budgets=[8, 16], settings=SETTINGS, stored=first.trajectories)
    )
    assert [sorted({r["seed"] for r in p.rows}) for p in pieces] == [[0], [1]]  # seed 0 needed no generation
    assert pieces[0].trajectories == [] and pieces[0].thinking_generated == 0  # stored already, nothing new
