"""Votes of the seeds of each (model, dataset, problem, budget), and their maj@k and pass@k for k = 1…n.

A graded row votes for the gold when it is correct, for its `answer_key` (the grader's normalised answer, so
equivalent answers vote together) when it is wrong, and for nothing when it has no answer or an unfinished one.
Rows from before `answer_key` existed vote for their answer with its whitespace removed. Rows whose grading failed
(`correct` null) are left out of n, as pass@k leaves them out.

The counts of a group make a signature (correct, abstained, wrong counts sorted): a study's 10⁵ groups share a
few hundred signatures, so maj@k is computed once per signature and k (`parallel.maj_at_k`) and spread back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ttscale.analysis.parallel import maj_at_k
from ttscale.analysis.values import PROBLEM_KEYS, pass_at_k

VOTE_COLUMNS = (*PROBLEM_KEYS, "correct", "answer", "answer_key", "unclosed")  # what votes read (older rows: no key)


@dataclass(frozen=True, eq=False)
class VoteCounts:
    """The votes of G groups (model, dataset, problem, budget): `keys` (G, 4) sorted, and per group the seeds that
    were right, that abstained, and how many voted for each distinct wrong answer, most first, 0-padded."""

    keys: pd.DataFrame
    correct: np.ndarray  # (G,) int
    abstained: np.ndarray  # (G,) int
    wrong: np.ndarray  # (G, W) int, each row sorted descending

    @property
    def seeds(self) -> np.ndarray:
        """(G,) graded seeds per group: n of maj@k and pass@k."""
        return self.correct + self.abstained + self.wrong.sum(axis=1)


def votes(rows: pd.DataFrame) -> pd.Series:
    """What each graded row votes for: "" for the gold, its normalised wrong answer, or <NA> (abstains); rows
    whose grading failed are <NA> too (`vote_counts` leaves them out of n)."""
    key = rows["answer_key"].astype("string") if "answer_key" in rows else pd.Series(pd.NA, rows.index, "string")
    answer = rows["answer"].astype("string").str.replace(r"\s+", "", regex=True).replace("", pd.NA)
    if "unclosed" in rows:
        answer = answer.mask(rows["unclosed"].astype("boolean").fillna(False).to_numpy(dtype=bool))
    vote = key.fillna(answer)  # older rows: the answer as written, when it was finished
    return vote.mask(rows["correct"].eq(1).fillna(False).to_numpy(dtype=bool), "")


def vote_counts(rows: pd.DataFrame) -> VoteCounts:
    """Count each group's votes (see the module's docstring), vectorised over groups."""
    missing = [c for c in (*PROBLEM_KEYS, "correct", "answer") if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack the columns {missing} needed to count votes")
    graded = rows[rows["correct"].notna()]
    group = graded.groupby(list(PROBLEM_KEYS), sort=True, observed=True).ngroup().to_numpy()  # (R,)
    G = int(group.max()) + 1 if len(group) else 0
    first = np.unique(group, return_index=True)[1] if len(group) else np.array([], dtype=np.int64)
    keys = graded[list(PROBLEM_KEYS)].iloc[first].reset_index(drop=True)
    vote = votes(graded)
    right = vote.eq("").fillna(False).to_numpy(dtype=bool)
    silent = vote.isna().to_numpy()
    correct = np.bincount(group[right], minlength=G)
    abstained = np.bincount(group[silent], minlength=G)
    wrong_rows = ~right & ~silent
    per_answer = pd.DataFrame({"group": group[wrong_rows], "vote": vote.to_numpy()[wrong_rows]})
    sizes = per_answer.groupby(["group", "vote"], sort=False).size().reset_index(name="n")
    sizes = sizes.sort_values(["group", "n"], ascending=[True, False], kind="stable")
    rank = sizes.groupby("group", sort=False).cumcount().to_numpy()
    wrong = np.zeros((G, int(rank.max()) + 1 if len(rank) else 0), dtype=np.int64)
    wrong[sizes["group"].to_numpy(), rank] = sizes["n"].to_numpy()
    return VoteCounts(keys, correct, abstained, wrong)


def maj_values(counts: VoteCounts, ks: Sequence[int]) -> np.ndarray:
    """maj@k of every group at every k: (G, len(ks)), NaN where a group has fewer than k graded seeds."""
    signature = np.column_stack([counts.correct, counts.abstained, counts.wrong])  # (G, 2 + W)
    out = np.full((len(signature), len(ks)), np.nan)
    if not len(signature):
        return out
    unique, inverse = np.unique(signature, axis=0, return_inverse=True)
    per_unique = np.array(
        [[maj_at_k(int(s[0]), tuple(int(w) for w in s[2:] if w), int(s[1]), k) for k in ks] for s in unique]
    ).reshape(len(unique), len(ks))
    return per_unique[inverse.ravel()]


def pass_values(counts: VoteCounts, ks: Sequence[int]) -> np.ndarray:
    """Unbiased pass@k of every group at every k: (G, len(ks)), NaN where n < k."""
    n = counts.seeds
    return np.column_stack([pass_at_k(n, counts.correct, k) for k in ks]) if ks else np.empty((len(n), 0))


def seed_counts(counts: VoteCounts) -> range:
    """k = 1…n for the most graded seeds n of any group."""
    return range(1, int(counts.seeds.max()) + 1 if len(counts.keys) else 1)
