"""Compaction of small shards: every row kept exactly once, before, during and after it; a kill at any step of its
protocol loses and duplicates nothing and is finished by the next run; readers racing it see every row once; the
`ttscale compact` command, its one-line refusals, and the compaction at a run's end. Real Parquet, real store."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import threading
import warnings

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ttscale import compaction
from ttscale.cli import app
from ttscale.errors import TtscaleError, TtscaleWarning
from ttscale.run_lock import ResultsDirInUse
from ttscale.schema import ROW_SCHEMA, TRAJECTORY_SCHEMA, rows_table, trajectories_table
from ttscale.store import JOURNAL_NAME, ResultStore, ShardVanished, apply_journal, read_journal, read_shard
from ttscale.sweeps.run import compact_after_run
from ttscale.sweeps.run_view import RunView

UNITS = 40
BUDGETS = (16, 32, 64)
SEEDS = (0, 1)
ROWS = UNITS * len(BUDGETS) * len(SEEDS)
CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def unit_rows(unit: int, model: str = "m") -> list[dict]:
    """One unit's rows: one problem at every budget and seed, with values that differ from row to row."""
    rows = []
    for seed in SEEDS:
        for budget in BUDGETS:
            row = {f.name: None for f in ROW_SCHEMA}
            row.update(
                model=model, dataset="d", problem_id=f"p{unit:03d}", seed=seed, budget=budget,
                cell_id=f"{model}-d-b{budget}-s{seed}", trajectory_id=f"t{unit}-{seed}", config_id="cfg", config="{}",
                answer=str(unit % 7), answer_key=str(unit % 7), correct=(unit + budget) % 2, gold="3",
                p_correct=(unit % 10) / 10 + budget / 1000, distribution=[0.25, 0.75], prompt_tokens=20,
                thinking_tokens=budget, continuations=seed, injected_tokens=0, answer_tokens=5,
                thinking_chars=budget * 3, trajectory_mode="nested", on_early_stop="continue", temperature=0.6,
                top_p=0.95, top_k=0, rng_seed=seed,
                trajectory_tokens=64, family="fam", engine="fake", engine_version="0", model_path="fake",
                ttscale_version="test", created_at=CREATED,
            )  # fmt: skip
            rows.append(row)
    return rows


def unit_trajectories(unit: int, tokens: int) -> list[dict]:
    """One unit's trajectory per seed, `tokens` long."""
    out = []
    for seed in SEEDS:
        out.append({
            "trajectory_id": f"t{unit}-{seed}", "model": "m", "dataset": "d", "problem_id": f"p{unit:03d}",
            "seed": seed, "budget": None, "rng_seed": seed, "prompt_tokens": 20, "prompt_sha": "sha",
            "model_revision": "fake", "token_ids": list(range(tokens)), "injected": [False] * tokens,
            "injection_starts": [], "text": "x" * tokens, "model_tokens": tokens, "natural_end": None,
            "continuations": 0, "finished": False, "stopped": None,
        })  # fmt: skip
    return out


def write_units(store: ResultStore, units: range) -> None:
    """Each unit's shards as a sweep writes them; every fifth unit's trajectories get a longer version later."""
    for u in units:
        store.write_unit(f"unit{u}", rows_table(unit_rows(u)), trajectories_table(unit_trajectories(u, 32)))
    for u in units:
        if u % 5 == 0:
            store.write_unit(f"ext{u}", rows_table([]), trajectories_table(unit_trajectories(u, 64)))


@pytest.fixture
def store(tmp_path) -> ResultStore:
    store = ResultStore(tmp_path / "results")
    write_units(store, range(UNITS))
    store.write_unit("unit0", rows_table(unit_rows(0)[:2]))  # a unit written twice (a requeue): its rows twice
    return store


def state(store: ResultStore) -> dict:
    """Everything readers see, as comparable values: rows as a multiset, the done set, trajectories (longest version
    each), their lengths and index keys. (Superseded trajectory versions are no part of it: compaction drops them.)"""
    rows = sorted(json.dumps(r, sort_keys=True, default=str) for r in store.read_table().to_pylist())  # a multiset
    trajectories = sorted(store.read_trajectories().to_pylist(), key=lambda t: t["trajectory_id"])
    index = store.trajectory_index()
    assert all(p.is_file() for paths in index.values() for p in paths)
    return {
        "rows": rows, "done": store.done_keys(), "trajectories": trajectories, "lengths": store.trajectory_lengths(),
        "index": sorted(index),
    }  # fmt: skip


def versions(store: ResultStore) -> list[tuple[str, int]]:
    """Every stored version of every trajectory, (id, model tokens), superseded ones included."""
    columns = ["trajectory_id", "model_tokens"]
    table = store.read_consistently(lambda: store._read_tables_as(store.trajectory_shards(), TRAJECTORY_SCHEMA,
                                                                  columns))  # fmt: skip
    return sorted(tuple(v.values()) for v in table.to_pylist())


def test_rows_and_trajectories_are_the_same_after_compaction(store):
    before = state(store)
    assert len(before["rows"]) == ROWS + 2 and len(before["done"]) == ROWS
    assert {t["model_tokens"] for t in before["trajectories"] if t["trajectory_id"].startswith("t5-")} == {64}
    shards = len(store.row_shards()), len(store.trajectory_shards())
    assert shards == (UNITS + 1 + UNITS // 5, UNITS + UNITS // 5)

    done = compaction.compact(store)

    assert state(store) == before
    assert [(c.kind, c.shards_before, c.shards_after, c.written) for c in done] == [
        ("rows", shards[0], 1, 1), ("trajectories", shards[1], 1, 1)
    ]  # fmt: skip
    assert done[0].rows == ROWS + 2 and done[1].rows == 2 * UNITS + 2 * (UNITS // 5)  # every row read
    assert (done[0].superseded, done[1].superseded) == (0, 2 * (UNITS // 5))  # rows kept, prefixes dropped
    assert versions(store) == sorted((t["trajectory_id"], t["model_tokens"]) for t in before["trajectories"])
    assert [p.name.startswith("compacted-000001-") for p in store.row_shards()] == [True]
    assert read_journal(store.rows_dir).epoch == 1 and not read_journal(store.rows_dir).groups
    assert not list((store.root / "tmp").iterdir())  # nothing staged is left behind
    assert pq.ParquetFile(store.row_shards()[0]).schema_arrow.equals(ROW_SCHEMA)

    again = compaction.compact(store)  # one shard: nothing to merge, nothing rewritten
    assert [c.written for c in again] == [0, 0] and state(store) == before


def test_checkpoint_versions_are_dropped_once_a_longer_one_is_merged_with_them(tmp_path, monkeypatch):
    """A trajectory checkpointed four times (16, 32, 48 tokens, then 64 in a shard too large to merge): compaction
    keeps only the longest version among those it merges, and readers still take the longest of all."""
    store = ResultStore(tmp_path / "results")
    for tokens in (16, 32, 48):
        store.write_trajectories("unit0", trajectories_table(unit_trajectories(0, tokens)))
    store.write_trajectories("unit1", trajectories_table(unit_trajectories(1, 16)))
    store.write_unit("unit0", rows_table(unit_rows(0)), trajectories_table(unit_trajectories(0, 64)))
    large = store.trajectory_shard_of(store.row_shards()[0])
    monkeypatch.setattr(compaction, "SMALL_BYTES", large.stat().st_size)  # the 64-token shard is not small
    before = state(store)
    assert {t["model_tokens"] for t in before["trajectories"]} == {64, 16}

    done = compaction.compact(store)[1]

    assert state(store) == before and large.is_file()
    assert (done.rows, done.superseded) == (8, 4)  # t0-*: 16 and 32 dropped beside 48; t1-*: one version each
    assert versions(store) == [("t0-0", 48), ("t0-0", 64), ("t0-1", 48), ("t0-1", 64), ("t1-0", 16), ("t1-1", 16)]
    assert "4 superseded trajectory versions dropped" in done.line()


def test_targets_hold_at_most_target_rows_and_later_shards_join_them(store, monkeypatch):
    monkeypatch.setattr(compaction, "TARGET_ROWS", 50)
    before = state(store)
    compaction.compact(store)
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in store.row_shards()]
    assert max(sizes) <= 50 and sum(sizes) == ROWS + 2 and len(sizes) >= 5
    assert state(store) == before

    write_units(store, range(UNITS, UNITS + 10))  # the next run's small shards
    before = state(store)
    compaction.compact(store)
    assert state(store) == before and len(before["done"]) == ROWS + 10 * len(BUDGETS) * len(SEEDS)


def test_a_reader_at_every_step_of_the_protocol_sees_every_row_once(store, monkeypatch):
    monkeypatch.setattr(compaction, "TARGET_ROWS", 50)  # several targets: states between their renames too
    before = state(store)
    steps = []

    def read_now(kind: str, step: str, done: int, total: int) -> None:
        if done in (1, 2, total // 2, total - 1, total) or step == "staged":
            steps.append((kind, step))
            assert state(store) == before, (kind, step, done, total)

    compaction.compact(store, progress=read_now)
    for kind in compaction.KINDS:
        assert {s for k, s in steps if k == kind} == {"read", "staged", "journal", "renamed", "unlinked", "cleared"}


KILL = """
import os, signal, sys
from ttscale import compaction
from ttscale.store import ResultStore

root, kind, step, at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
compaction.TARGET_ROWS = 50

def kill_at(k, s, done, total):
    if (k, s) == (kind, step) and done == (total if at < 0 else at):
        os.kill(os.getpid(), signal.SIGKILL)

compaction.compact(ResultStore(root), progress=kill_at)
"""


@pytest.mark.parametrize(
    ("kind", "step", "at"),
    [
        ("rows", "read", 3),  # nothing staged yet
        ("rows", "staged", 2),  # targets in tmp/, no journal
        ("rows", "journal", 1),  # journal written, no target renamed
        ("rows", "renamed", 1),  # one target in place, the others still staged
        ("rows", "renamed", -1),  # every target in place, no source unlinked
        ("rows", "unlinked", 7),  # some sources unlinked
        ("rows", "unlinked", -1),  # every source unlinked, the journal not cleared
        ("trajectories", "renamed", 2),  # rows compacted; trajectories cut short
        ("trajectories", "unlinked", 5),
    ],
)
def test_a_kill_at_any_step_loses_and_duplicates_nothing(store, kind, step, at):
    before = state(store)
    killed = subprocess.run([sys.executable, "-c", KILL, str(store.root), kind, step, str(at)], capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    journal = read_journal(store.rows_dir if kind == "rows" else store.trajectories_dir)
    assert bool(journal.groups) == (step not in ("read", "staged"))
    assert state(store) == before  # read as the kill left it: every row once

    assert compaction.recover(store) == len(journal.groups)  # what a sweep's start does, under its lock
    assert state(store) == before and not read_journal(store.rows_dir).groups
    assert not read_journal(store.trajectories_dir).groups
    assert not [p for p in (store.root / "tmp").iterdir() if p.name.startswith(".compact-")]

    compaction.compact(store)  # and the next compaction finishes the job
    assert state(store) == before
    assert len(store.row_shards()) < 10 and not [p for p in store.row_shards() if p.name.startswith("unit")]


def test_readers_racing_repeated_compactions_see_every_row_exactly_once(tmp_path):
    store = ResultStore(tmp_path / "results")
    written: list[tuple[str, str]] = []  # keys of the units written so far, in order
    stop, errors, reads, spanning = threading.Event(), [], [0], [0]

    def reader() -> None:
        try:
            while not stop.is_set():
                low, epochs = set(written), store.compaction_epochs()
                keys = store.read_table(["cell_id", "problem_id"]).to_pylist()
                done = store.done_keys()
                trajectories = store.read_trajectories().column("trajectory_id").to_pylist()
                high = set(written)
                pairs = [(k["cell_id"], k["problem_id"]) for k in keys]
                assert len(pairs) == len(set(pairs)), "a row read twice"
                assert low <= set(pairs) <= high and low <= done <= high, "a row missing"
                assert len(trajectories) == len(set(trajectories))
                reads[0] += 1
                spanning[0] += store.compaction_epochs() != epochs  # this read overlapped a commit
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TtscaleWarning)  # a listed shard taken for corrupt fails the reader too
        thread.start()
        _write_and_compact(store, written, errors, stop, thread)
    if errors:
        raise errors[0]
    assert reads[0] >= 8 and spanning[0] >= 1, (reads, spanning)
    assert len(store.row_shards()) == 1 and len(store.done_keys()) == 200 * len(BUDGETS) * len(SEEDS)


def _write_and_compact(store, written, errors, stop, thread) -> None:
    try:
        for r in range(8):  # a run's small shards, then its compaction, eight times
            for u in range(r * 25, (r + 1) * 25):
                store.write_unit(f"unit{u}", rows_table(unit_rows(u)), trajectories_table(unit_trajectories(u, 32)))
                written.extend((row["cell_id"], row["problem_id"]) for row in unit_rows(u))
            compaction.compact(store)
            assert not errors
    finally:
        stop.set()
        thread.join(timeout=60)


def test_a_read_whose_listing_overlapped_a_commit_is_read_again(store):
    """The reader read the journal just before a commit began, and listed the directory once the targets were renamed
    but no source was unlinked yet (the compaction killed there, to hold that state): sources and targets both
    listed, every shard readable. Only the epoch tells, and read_consistently reads again."""
    expected = sorted((r["cell_id"], r["problem_id"]) for r in store.read_table(["cell_id", "problem_id"]).to_pylist())
    listings = []

    def read() -> list[tuple[str, str]]:
        journal = read_journal(store.rows_dir)  # what ResultStore.shards_in does, with a commit in between
        if not listings:
            kill = [sys.executable, "-c", KILL, str(store.root), "rows", "renamed", "-1"]
            assert subprocess.run(kill, capture_output=True).returncode == -signal.SIGKILL
        listed = apply_journal(store.rows_dir, journal, store.rows_dir.glob("*.parquet"))
        listings.append(len(listed))
        tables = [read_shard(p, ROW_SCHEMA, ["cell_id", "problem_id"]) for p in listed]
        return sorted((r["cell_id"], r["problem_id"]) for t in tables for r in t.to_pylist())

    assert store.read_consistently(read) == expected
    assert len(listings) == 2 and listings[0] > UNITS + 1 + UNITS // 5 > listings[1]  # sources + targets, then targets


def test_a_shard_that_vanishes_is_never_quarantined(store):
    paths = store.row_shards()
    compaction.compact(store)

    with pytest.raises(ShardVanished):
        store._read_each(paths, ROW_SCHEMA, ["cell_id"])  # listed before the compaction, read after it
    assert not (store.root / "corrupt").exists()
    gone = store.trajectories_dir / paths[0].name  # ext0's trajectories: the longer version of unit 0's
    trajectories = store.read_trajectories(["t0-0", "t0-1"], shards=[gone])
    assert trajectories.column("model_tokens").to_pylist() == [64, 64]  # gone: every shard is read instead


def test_the_explorer_index_and_results_see_the_same_rows_after_compaction(store):
    from ttscale.analysis import Results
    from ttscale.serve import queries
    from ttscale.serve.index import ResultsIndex

    def opened() -> list[dict]:
        rows = Results.open(store.root).rows.astype(str)
        return rows.sort_values(["problem_id", "cell_id"]).to_dict("records")

    before = opened()
    index = ResultsIndex([store.root], rescan_s=0.0, n_boot=20, n_sim=10)
    old = index.snapshot()
    assert len(old.rows) == ROWS
    problem = old.problem_rows("m", "d", "p005").to_dict("records")

    compaction.compact(store)

    assert opened() == before
    new = index.snapshot()
    assert new.generation == 1 and len(new.rows) == ROWS
    assert set(new.rows.shard) == {store.row_shards()[0].name}
    assert index.trajectory(next(iter(index.runs)), "t5-1")["model_tokens"] == 64
    extras = queries._row_extras(index, problem, "p005")  # the rows' old shard is gone: read from every shard
    assert len(extras) == len(problem) and all(e["distribution"] == [0.25, 0.75] for e in extras.values())


def test_ttscale_compact_prints_what_it_did(store):
    before = state(store)
    result = CliRunner().invoke(app, ["compact", str(store.root)])
    assert result.exit_code == 0, result.output
    assert f"rows: {UNITS + 1 + UNITS // 5} → 1 shards ({ROWS + 2:,} rows of" in result.output
    assert "trajectories: " in result.output and state(store) == before


@pytest.mark.parametrize("where", ["missing", "empty", "file"])
def test_ttscale_compact_refuses_what_is_no_results_directory_in_one_line(tmp_path, where):
    path = tmp_path / "x"
    if where == "empty":
        path.mkdir()
    elif where == "file":
        path.write_text("not results")
    result = CliRunner().invoke(app, ["compact", str(path)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith(f"error: {path}"), result.output
    assert "Give a" in lines[0] and "Traceback" not in result.output
    assert (not path.exists()) if where == "missing" else not (path.is_dir() and any(path.iterdir()))


HOLD = "; ".join(
    ["import sys, time", "from ttscale.run_lock import RunLock", "RunLock(sys.argv[1], sweep='demo').acquire()",
     "print('held', flush=True)", "time.sleep(60)"]
)  # fmt: skip


def test_compaction_is_refused_while_a_sweep_holds_the_directory(store):
    before, names = state(store), sorted(p.name for p in store.rows_dir.iterdir())
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ResultsDirInUse, match="another ttscale sweep"):
            compaction.compact(store)
        result = CliRunner().invoke(app, ["compact", str(store.root)])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1, result.output
        assert lines[0].startswith(f"error: {store.root} is being written by another ttscale sweep (demo:")
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in store.rows_dir.iterdir()) == names and state(store) == before


def test_a_run_ends_by_compacting_only_when_worthwhile(store, monkeypatch):
    before = state(store)
    assert compact_after_run(store, RunView()) == []  # 49 small shards: under WORTHWHILE_SHARDS, left as they are
    assert len(store.row_shards()) == UNITS + 1 + UNITS // 5

    monkeypatch.setattr(compaction, "WORTHWHILE_SHARDS", 20)
    shown = []

    class View(RunView):
        def compacted(self, done):
            shown.extend(done)

    done = compact_after_run(store, View())
    assert [c.shards_after for c in done] == [1, 1] and shown == done and state(store) == before
    assert next(e for e in store.events() if e["event"] == "compacted")["rows"]["shards_after"] == 1


def test_a_failed_compaction_at_a_run_end_is_a_warning_and_keeps_every_row(store, monkeypatch):
    monkeypatch.setattr(compaction, "WORTHWHILE_SHARDS", 20)
    before, names = state(store), sorted(p.name for p in store.rows_dir.iterdir())
    (store.root / "tmp").rmdir()
    (store.root / "tmp").write_text("")  # tmp/ is a file: nothing can be staged (as on a full or broken disk)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert compact_after_run(store, RunView()) == []
    messages = [str(w.message) for w in caught if issubclass(w.category, TtscaleWarning)]
    assert len(messages) == 1 and "every row is kept" in messages[0] and f"ttscale compact {store.root}" in messages[0]
    assert sorted(p.name for p in store.rows_dir.iterdir()) == names and state(store) == before
    assert not (store.rows_dir / JOURNAL_NAME).exists()


def test_a_damaged_journal_is_one_line(store):
    (store.rows_dir / JOURNAL_NAME).write_text("{not json")
    with pytest.raises(TtscaleError, match=r"_compaction.json is damaged .* Restore it"):
        store.done_keys()


def test_an_unreadable_shard_is_left_for_readers_to_set_aside(store):
    path = next(p for p in store.row_shards() if p.name.startswith("unit7-"))
    path.write_bytes(path.read_bytes()[:100])  # cut short, as a crashed copy leaves it
    done = compaction.compact(store)
    assert done[0].unreadable == 1 and path.exists() and done[0].shards_after == 2
    with pytest.warns(TtscaleWarning, match="is unreadable"):
        assert len(store.done_keys()) == ROWS - len(BUDGETS) * len(SEEDS)  # its rows count as missing
    assert (store.root / "corrupt" / f"rows-{path.name}").exists()


SWEEP = """
import sys
from ttscale import compaction
from ttscale.cli import main

compaction.WORTHWHILE_SHARDS = int(sys.argv[1])  # a tiny sweep's few shards count as many
sys.argv = ["ttscale", "sweep", sys.argv[2]]
main()
"""


@pytest.mark.ray
def test_a_sweep_finishes_a_killed_compaction_at_its_start_and_compacts_at_its_end(tmp_path):
    import yaml

    spec = {
        "name": "compact", "output_dir": str(tmp_path / "results"), "budgets": [8, 16], "seeds": 2,
        "models": [{"name": "fake-a", "engine": "fake", "device": "cpu", "threads": 1, "replicas": 1}],
        "datasets": [{"name": "demo-arith", "limit": 6}], "problems_per_unit": 1,
    }  # fmt: skip

    def sweep(worthwhile: int, **changes) -> subprocess.CompletedProcess:
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump({**spec, **changes}))
        run = subprocess.run([sys.executable, "-c", SWEEP, str(worthwhile), str(path)], capture_output=True,
                             text=True, timeout=600)  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        return run

    first = sweep(10_000)  # six units, six small shards of each kind: left as they are
    store = ResultStore(tmp_path / "results")
    assert "compacted" not in first.stdout + first.stderr and len(store.row_shards()) == 6
    kill = [sys.executable, "-c", KILL.replace("= 50", "= 10"), str(store.root), "rows", "renamed", "1"]
    assert subprocess.run(kill, capture_output=True).returncode == -signal.SIGKILL
    assert read_journal(store.rows_dir).groups  # a compaction killed mid-commit
    before = state(store)

    second = sweep(4, budgets=[8, 16, 32])  # a budget more: its start finishes the compaction, its end compacts
    assert "compacted rows: " in second.stdout + second.stderr, second.stdout + second.stderr
    assert len(store.row_shards()) == len(store.trajectory_shards()) == 1 and not read_journal(store.rows_dir).groups
    after = state(store)
    assert len(after["rows"]) == len(after["done"]) == 6 * 2 * 3 and before["done"] < after["done"]
    assert set(before["rows"]) < set(after["rows"])


@pytest.mark.ray
def test_a_ray_dataset_consumed_after_a_compaction_is_read_again_inside_read_consistently(store, ray_local):
    """`ResultStore.read()` lists now and Ray Data reads on consumption: a compaction in between makes the read
    fail (its shards are gone), and read_consistently lists and reads again."""
    expected = sorted(state(store)["done"])
    attempts = []

    def read() -> list[tuple[str, str]]:
        dataset = store.read(["cell_id", "problem_id"])  # listed: the small shards
        if not attempts:
            whole = [sys.executable, "-c", KILL, str(store.root), "none", "none", "0"]  # a kill that never comes
            done = subprocess.run(whole, capture_output=True)
            assert done.returncode == 0, done.stderr.decode()[-2000:]  # a whole compaction, in another process
        attempts.append(dataset)
        frame = dataset.to_pandas()
        return sorted(set(zip(frame.cell_id, frame.problem_id, strict=True)))

    assert store.read_consistently(read) == expected
    assert len(attempts) == 2 and len(store.row_shards()) < 10
