"""The explorer's index: built once, then only new shards are read as a sweep writes them; an unreadable shard is
skipped and left where it is (the explorer writes nothing); an empty or absent results directory is served empty."""

from __future__ import annotations

import json
import shutil
import time

import pytest

import ttscale.serve.index as index_module
from ttscale.serve.api import Explorer
from ttscale.serve.index import ResultsIndex

pytestmark = pytest.mark.ray  # the results are made by a real sweep on a local Ray instance


@pytest.fixture
def copy_without_two_shards(demo_results, tmp_path):
    """A copy of the demo results whose two last rows shards are held back, to land later."""
    root = tmp_path / "live"
    shutil.copytree(demo_results, root)
    held = tmp_path / "held"
    held.mkdir()
    for shard in sorted((root / "rows").glob("*.parquet"))[-2:]:
        shard.rename(held / shard.name)
    return root, held


def test_new_shards_are_read_once_and_old_ones_never_again(copy_without_two_shards, monkeypatch):
    root, held = copy_without_two_shards
    reads = []
    real = index_module.read_shard
    monkeypatch.setattr(
        index_module, "read_shard", lambda path, *a, **k: reads.append(path.name) or real(path, *a, **k)
    )
    index = ResultsIndex([root], rescan_s=0.0, n_boot=20, n_sim=10)
    first = index.snapshot()
    assert len(reads) == 2 and first.generation == 0
    index.snapshot()
    assert len(reads) == 2  # nothing new: nothing read
    for shard in held.iterdir():
        shard.rename(root / "rows" / shard.name)
    second = index.snapshot()
    assert sorted(reads[2:]) == sorted(p.name for p in (root / "rows").glob("*.parquet") if p.name not in reads[:2])
    assert second.generation == 1 and len(second.rows) > len(first.rows)
    assert len(second.rows) == len(second.rows.drop_duplicates(["cell_id", "problem_id"]))


def test_rescans_are_rate_limited(copy_without_two_shards):
    root, held = copy_without_two_shards
    index = ResultsIndex([root], rescan_s=3600.0)
    for shard in held.iterdir():
        shard.rename(root / "rows" / shard.name)
    assert index.snapshot().generation == 0  # listed again only after rescan_s
    assert index.refresh(force=True) and index.snapshot().generation == 1


def test_in_the_background_requests_never_wait_and_the_next_snapshot_comes_warm(copy_without_two_shards):
    from ttscale.serve import queries

    root, held = copy_without_two_shards
    index = ResultsIndex([root], rescan_s=0.0, n_boot=20, n_sim=10, background=True)
    first = index.snapshot()
    queries.curve(first, "fake-a", "demo-arith", "accuracy")  # what the page shows now
    queries.emergence(first, "p_correct")
    queries.compute(first, "fake-a", "demo-arith", "pass")
    for shard in held.iterdir():
        shard.rename(root / "rows" / shard.name)
    assert index.snapshot() is first  # answered at once from the current snapshot; the scan runs in a thread
    deadline = time.monotonic() + 30
    while index.snapshot() is first and time.monotonic() < deadline:
        time.sleep(0.05)
    second = index.snapshot()
    assert second.generation == 1 and len(second.rows) > len(first.rows)
    assert {("curves", "accuracy"), ("emergence", "p_correct", "problem")} <= set(second.results._cache)
    assert {("frontier", "pass"), ("frontier_emergence", "pass", "doubling")} <= set(second.results._cache)


def test_an_unreadable_shard_is_skipped_and_left_in_place(copy_without_two_shards):
    root, _ = copy_without_two_shards
    bad = root / "rows" / "zz-truncated.parquet"
    bad.write_bytes(b"PAR1 not really")
    explorer = Explorer(ResultsIndex([root]))
    (run,) = json.loads(explorer.handle("GET", "/api/runs", {}).body)
    assert run["unreadable_shards"] == ["zz-truncated.parquet"] and bad.exists()
    assert not (root / "corrupt").exists()  # the sweep sets bad shards aside; the explorer only reads


def test_a_results_dir_not_written_yet_is_served_empty(tmp_path):
    explorer = Explorer(ResultsIndex([tmp_path / "not-yet"]))
    assert json.loads(explorer.handle("GET", "/api/options", {}).body)["models"] == []
    (run,) = json.loads(explorer.handle("GET", "/api/progress", {}).body)["runs"]
    assert run["state"] == "idle" and run["rows_done"] == 0
    assert explorer.handle("GET", "/api/emergence", {}).status in (200, 400)
    assert explorer.handle("GET", "/api/curve", {"model": "m", "dataset": "d"}).status == 404
