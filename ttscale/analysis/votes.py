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
from ttscale.analysis.values import PROBLEM_KEYS, first_rows, pass_at_k

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


def vote_codes(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's vote as an integer, (R,): 0 for the gold, -1 for none, i > 0 for the wrong answer `values[i − 1]`.
    Answers are normalised once per distinct answer, not once per row (a study repeats each answer many times)."""
    key = _codes(rows["answer_key"], lambda v: v) if "answer_key" in rows else None
    answer = _codes(rows["answer"], lambda v: "".join(v.split()) or None)  # older rows: the answer as written
    if "unclosed" in rows:  # an unfinished answer is no vote
        unfinished = rows["unclosed"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        answer = (np.where(unfinished, -1, answer[0]), answer[1])
    if key is None:
        text, values = answer
    else:  # one code space for both: the key where there is one, else the answer
        values, joined = np.unique(np.concatenate([key[1], answer[1]]), return_inverse=True)
        key_map, answer_map = joined[: len(key[1])], joined[len(key[1]) :]
        text = np.where(key[0] >= 0, _lookup(key[0], key_map), _lookup(answer[0], answer_map))
    codes = np.where(text >= 0, text + 1, -1)
    right = rows["correct"].eq(1).fillna(False).to_numpy(dtype=bool)
    return np.where(right, 0, codes), np.asarray(values, dtype=object)


def _lookup(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """table[codes], −1 where a code is −1."""
    padded = np.append(np.asarray(table, dtype=np.int64), -1)
    return padded[np.where(codes >= 0, codes, len(table))]


def _codes(column: pd.Series, normalise) -> tuple[np.ndarray, np.ndarray]:
    """(codes, values): each row's index into the distinct normalised values, −1 where null (or normalised away)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    normalised = [None if pd.isna(v) else normalise(str(v)) for v in uniques]
    values, inverse = np.unique([v for v in normalised if v is not None], return_inverse=True)
    mapping = np.full(len(normalised) + 1, -1)
    mapping[[i for i, v in enumerate(normalised) if v is not None]] = inverse.ravel()
    return mapping[codes], values.astype(object)  # codes of −1 (null) read mapping[−1] = −1


def vote_counts(rows: pd.DataFrame) -> VoteCounts:
    """Count each group's votes (see the module's docstring), vectorised over groups."""
    missing = [c for c in (*PROBLEM_KEYS, "correct", "answer") if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack the columns {missing} needed to count votes")
    graded = rows[rows["correct"].notna().to_numpy()]
    group = graded.groupby(list(PROBLEM_KEYS), sort=True, observed=True).ngroup().to_numpy()  # (R,)
    G = int(group.max()) + 1 if len(group) else 0
    keys = graded[list(PROBLEM_KEYS)].iloc[first_rows(group)].reset_index(drop=True)
    code, _ = vote_codes(graded)
    correct = np.bincount(group[code == 0], minlength=G)
    abstained = np.bincount(group[code < 0], minlength=G)
    wrong_rows = code > 0
    span = int(code.max()) + 1 if len(code) else 1
    pairs, sizes = np.unique(group[wrong_rows].astype(np.int64) * span + code[wrong_rows], return_counts=True)
    return VoteCounts(keys, correct, abstained, padded_counts(pairs // span, sizes, G))


def padded_counts(owner: np.ndarray, sizes: np.ndarray, groups: int) -> np.ndarray:
    """(groups, W): each group's vote counts (`sizes` of the answers `owner` says are its), most first, 0-padded."""
    keep = sizes > 0
    owner, sizes = owner[keep], sizes[keep]
    order = np.lexsort((-sizes, owner))  # by group, then most votes first
    owner, sizes = owner[order], sizes[order]
    starts = np.r_[0, np.flatnonzero(owner[1:] != owner[:-1]) + 1] if len(owner) else np.array([], dtype=np.int64)
    rank = np.arange(len(owner)) - np.repeat(starts, np.diff(np.r_[starts, len(owner)]))
    wrong = np.zeros((groups, int(rank.max()) + 1 if len(rank) else 0), dtype=np.int64)
    wrong[owner, rank] = sizes
    return wrong


def maj_values(counts: VoteCounts, ks: Sequence[int]) -> np.ndarray:
    """maj@k of every group at every k: (G, len(ks)), NaN where a group has fewer than k graded seeds."""
    signature = np.column_stack([counts.correct, counts.abstained, counts.wrong])  # (G, 2 + W)
    out = np.full((len(signature), len(ks)), np.nan)
    if not len(signature):
        return out
    unique, inverse = distinct_rows(signature)
    per_unique = np.array(
        [[maj_at_k(int(s[0]), tuple(int(w) for w in s[2:] if w), int(s[1]), k) for k in ks] for s in unique]
    ).reshape(len(unique), len(ks))
    return per_unique[inverse.ravel()]


def distinct_rows(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(M, axis=0, return_inverse=True) for a small non-negative int matrix, by hashing each row as one
    integer (mixed radix) rather than sorting rows: (distinct rows, each row's index among them)."""
    radix = int(M.max()) + 1
    if radix ** M.shape[1] >= 2**62:
        distinct, inverse = np.unique(M, axis=0, return_inverse=True)
        return distinct, inverse.ravel()
    code = M.astype(np.int64) @ (radix ** np.arange(M.shape[1], dtype=np.int64))
    inverse, _ = pd.factorize(code)
    _, where = np.unique(inverse, return_index=True)
    return M[where], inverse


def pass_values(counts: VoteCounts, ks: Sequence[int]) -> np.ndarray:
    """Unbiased pass@k of every group at every k: (G, len(ks)), NaN where n < k."""
    n = counts.seeds
    return np.column_stack([pass_at_k(n, counts.correct, k) for k in ks]) if ks else np.empty((len(n), 0))


def seed_counts(counts: VoteCounts) -> range:
    """k = 1…n for the most graded seeds n of any group."""
    return range(1, int(counts.seeds.max()) + 1 if len(counts.keys) else 1)
