"""The cluster reduction (Ray Data, analysis/reduce.py) gives what the rows give: every curve metric's problem
values, maj@k's votes and the seeds' tokens, with a (problem, budget) split across shards and unusual rows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from ttscale.analysis import Results
from ttscale.analysis.reduce import reduce_problems
from ttscale.analysis.votes import maj_values, vote_counts
from ttscale.schema import ROW_SCHEMA
from ttscale.store import ResultStore

pytestmark = pytest.mark.ray


def shard(rows: list[dict]) -> pa.Table:
    """Rows of ROW_SCHEMA from the given columns (the others null, or a placeholder where required)."""
    filler = {"string": "x", "int32": 0, "int64": 0, "double": 0.0, "bool": False}
    arrays = []
    for f in ROW_SCHEMA:
        values = [r.get(f.name) for r in rows]
        if not f.nullable and f.name not in rows[0]:
            values = [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)] * len(rows) if f.name == "created_at" \
                else [filler[str(f.type)]] * len(rows)  # fmt: skip
        arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=ROW_SCHEMA)


def rows_of(problem: str, budget: int, answers: list[tuple[str | None, int | None, str | None]], seed0: int = 0):
    return [
        {"model": "m", "dataset": "d", "problem_id": problem, "budget": budget, "seed": seed0 + i,
         "cell_id": f"{budget}-{seed0 + i}", "trajectory_id": f"{problem}-{seed0 + i}", "answer": answer,
         "correct": correct, "answer_key": key, "gold": "7", "unclosed": answer == "3 +",
         "p_correct": None if correct is None else 0.1 * (i + 1), "thinking_tokens": budget - i, "answer_tokens": 5}
        for i, (answer, correct, key) in enumerate(answers)
    ]  # fmt: skip


def test_the_cluster_reduction_equals_the_rows_analysis(tmp_path, ray_local):
    store = ResultStore(tmp_path / "results")
    half = [("7", 1, "7"), ("0.5", 0, "1/2"), ("\\frac12", 0, "1/2"), (None, 0, None)]
    store.write_unit("a", shard(rows_of("p", 64, half) + rows_of("q", 64, [("9", 0, None), ("9 ", 0, None)])))
    rest = [("7", 1, "7"), ("3 +", 0, None), ("4", None, None), ("8", 0, "8")]  # unfinished, ungraded
    store.write_unit("b", shard(rows_of("p", 64, rest, seed0=4) + rows_of("p", 128, half)))  # p@64 in two shards
    table = reduce_problems(store.root)
    results = Results.open(store.root)
    for metric in ("accuracy", "pass@2", "p_correct", "thinking_tokens"):
        got, want = table.problem_values(metric), results.problem_values(metric)
        assert got["problem_id"].tolist() == want["problem_id"].astype(str).tolist()
        np.testing.assert_allclose(got["value"], want["value"], equal_nan=True, err_msg=metric)
    ks = list(range(1, 8))
    np.testing.assert_allclose(maj_values(table.vote_counts(), ks), maj_values(vote_counts(results.rows), ks),
                               equal_nan=True)  # fmt: skip
    p64 = table.vote_counts()
    assert (p64.correct[0], p64.abstained[0], sorted(p64.wrong[0], reverse=True)[:2]) == (2, 2, [2, 1])
    np.testing.assert_allclose(table.seed_tokens()["tokens_per_seed"],
                               results.parallel("maj").query("k == 1")["tokens_per_seed"])  # fmt: skip
