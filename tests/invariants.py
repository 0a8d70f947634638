"""Test helpers the suites share: what every result row must satisfy, whatever engine made it, and small
questions about the registries that only tests ask."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pandas as pd

from ttscale.metrics import get_metric
from ttscale.tasks.grading import check_golds


def counted(answers: list[str | None], gold: str, k: int) -> Fraction:
    """maj@k by brute force: every k-subset's vote, a tie split evenly among the answers tied for most votes."""
    wins = Fraction(0)
    subsets = list(itertools.combinations(range(len(answers)), k))
    for subset in subsets:
        votes: dict[str, int] = {}
        for i in subset:
            if answers[i] is not None:
                votes[answers[i]] = votes.get(answers[i], 0) + 1
        if votes:
            top = max(votes.values())
            leaders = [a for a, v in votes.items() if v == top]
            wins += Fraction(int(gold in leaders), len(leaders))
    return wins / len(subsets)


def is_discrete(name: str) -> bool:
    """Whether the metric takes few values per problem (accuracy, pass@k) rather than a continuum."""
    return get_metric(name).discrete


def assert_rows_are_sound(rows: pd.DataFrame, trajectories: pd.DataFrame, task, problems, *, engine: str) -> None:
    """Rows of one model × dataset: unique, exactly forced, scored over their set, joined by problem id."""
    assert len(rows) and not rows.duplicated(["cell_id", "problem_id"]).any()
    assert (rows.engine == engine).all()
    assert rows.groupby(["budget", "seed"]).cell_id.nunique().eq(1).all()  # one cell id per (budget, seed)
    # exact forcing: B model tokens, unless the row says why it stopped short
    assert (rows.thinking_tokens <= rows.budget).all()
    short = rows.thinking_tokens < rows.budget
    assert rows.loc[short, "stopped"].notna().all() and rows.loc[~short, "stopped"].isna().all()
    assert (rows.injected_tokens >= rows.continuations).all()
    # discrete and continuous metrics
    assert rows.correct.isin([0, 1]).all() and rows.error.isna().all()
    scored = rows[rows.solution_set.notna()]
    assert scored.p_correct.between(0, 1).all() and scored.mass_on_set.between(0, 1).all()
    for dist in scored.distribution:
        assert np.sum(dist) == np.float32(1.0) or abs(float(np.sum(dist, dtype=np.float64)) - 1.0) < 1e-5
    check_golds(rows.to_dict("records"), problems, task)  # golds joined by problem id, never by position
    # nested reasoning: every row's trajectory is stored, and the text it saw is a prefix of it
    if (rows.trajectory_mode == "nested").all():
        texts = dict(zip(trajectories.trajectory_id, trajectories.text, strict=True))
        assert set(rows.trajectory_id) == set(texts)
        for row in rows.itertuples():
            assert 0 <= row.thinking_chars <= len(texts[row.trajectory_id])
        by_traj = rows.sort_values("budget").groupby("trajectory_id").thinking_chars
        assert by_traj.apply(lambda c: c.is_monotonic_increasing).all()  # longer budgets saw more


def rows_without_timings(store):
    """Every stored row of a ResultStore as Arrow, in (cell, problem) order, without its timing columns: what two
    runs of a deterministic engine must agree on exactly."""
    table = store.read_table().sort_by([("cell_id", "ascending"), ("problem_id", "ascending")])
    return table.drop_columns([c for c in table.column_names if c.endswith("_seconds") or c == "created_at"])
