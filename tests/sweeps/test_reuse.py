"""Stored trajectories are reused across sweeps (issue 14), on a real local Ray instance with the `fake`
engine: a budget added between two stored ones is cut from the same stored trajectory, token for token, and
no thinking token is generated for it; a budget above the stored ones extends them, generating only the new
tokens. The logic under test is the driver's and the runner's, the same for every engine."""

from __future__ import annotations

import pytest
from stored_trajectories import FAKE_MODEL, cut, trajectories

from ttscale.store import ResultStore
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.run import run_sweep

pytestmark = pytest.mark.ray

PROBLEMS, SEEDS = 2, 2
PAIRS = PROBLEMS * SEEDS


def sweep(make_sweep, budgets):
    path = make_sweep(
        models=[FAKE_MODEL],
        datasets=[{"name": "demo-arith", "limit": PROBLEMS}], budgets=budgets, seeds=SEEDS, problems_per_unit=1,
    )  # fmt: skip
    return load_sweep(path)


def test_added_budgets_cut_stored_trajectories_then_a_larger_one_extends_them(ray_local, tmp_path, make_sweep):
    store = ResultStore(tmp_path / "results")
    first = run_sweep(sweep(make_sweep, [8, 32]), address=None)
    assert first.thinking_tokens == PAIRS * 32 and first.units_reusing == 0
    before = trajectories(store)
    assert len(before) == PAIRS

    between = run_sweep(sweep(make_sweep, [8, 16, 32]), address=None)
    assert between.rows_written == PAIRS and between.units_reusing == PROBLEMS
    assert between.thinking_tokens == 0  # only forced answers and scoring ran
    assert trajectories(store) == before  # nothing stored again
    new = store.read_pandas().query("budget == 16")
    for row in new.itertuples():
        traj = before[row.trajectory_id]
        assert row.trajectory_tokens == 32
        thought = traj["text"][: row.thinking_chars].encode()  # fake tokens are bytes: the text is the tokens
        assert list(thought) == cut(traj, 16)

    above = run_sweep(sweep(make_sweep, [8, 16, 32, 64]), address=None)
    assert above.rows_written == PAIRS and above.thinking_tokens == PAIRS * (64 - 32)  # only the new tokens
    after = trajectories(store)
    assert set(after) == set(before)  # the same trajectories, as longer versions
    for tid, traj in after.items():
        old = before[tid]["token_ids"]
        assert traj["model_tokens"] == 64 and traj["token_ids"][: len(old)] == old
    rows = store.read_pandas()
    assert sorted(rows.query("budget == 64").trajectory_tokens.unique()) == [64]
    assert sorted(rows.query("budget < 64").trajectory_tokens.unique()) == [32]  # cut from the older version
    for row in rows.query("budget == 64").itertuples():
        traj = after[row.trajectory_id]
        assert list(traj["text"][: row.thinking_chars].encode()) == cut(traj, 64)
