"""Parallel test-time compute (METHOD.md §6b): maj@k as its exact expectation, the cost of (B, k), the frontier.

The n seeds of one (problem, budget) are n independent samples. maj@k draws k of them, takes the answer most of
them gave (a tie broken uniformly at random among the answers tied for most votes) and scores it against the
gold; reported is the expectation over all C(n, k) subsets, the way the unbiased pass@k averages them. Seeds that
gave no answer abstain: they vote for nothing, and a subset of abstainers only scores 0. So maj@1 is accuracy.
A point (B, k) costs k times the tokens a seed really spent at B; the compute frontier is the best value at or
below each cost, and the (B, k) that reaches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from math import comb, nan


def maj_at_k(correct: int, wrong: Sequence[int], abstained: int, k: int) -> float:
    """Expected maj@k over the k-subsets of n = correct + Σ wrong + abstained seeds; NaN when n < k.

    `correct`: seeds whose answer is the gold's; `wrong`: for each distinct wrong answer, how many seeds gave it;
    `abstained`: seeds with no answer."""
    if k < 1 or min(correct, abstained, *wrong, 0) < 0:
        given = f"correct={correct}, wrong={list(wrong)}, abstained={abstained}, k={k}"
        raise ValueError(f"Got {given}: counts >= 0, k >= 1")
    wrong = tuple(sorted(w for w in wrong if w > 0))
    n = correct + sum(wrong) + abstained
    if n < k:
        return nan
    return _expected_wins(correct, wrong, abstained, k) / comb(n, k)


@lru_cache(maxsize=65_536)
def _expected_wins(correct: int, wrong: tuple[int, ...], abstained: int, k: int) -> float:
    """Σ over k-subsets of P(the gold's answer wins the subset's vote): points of one grid share vote counts."""
    total = 0.0
    for drawn in range(1, min(correct, k) + 1):  # the gold's votes in the subset; with none it cannot win
        rest = k - drawn
        for (wrong_votes, top, tied), ways in _wrong_draws(wrong, rest, drawn).items():
            if rest - wrong_votes > abstained:
                continue
            share = 1.0 if top < drawn else 1.0 / (tied + 1)  # top == drawn: a uniform tie-break among tied + 1
            total += comb(correct, drawn) * ways * comb(abstained, rest - wrong_votes) * share
    return total


def _wrong_draws(wrong: tuple[int, ...], most: int, cap: int) -> dict[tuple[int, int, int], int]:
    """Ways to draw at most `most` votes from the wrong answers, with none over `cap` (the gold would lose),
    keyed by (votes drawn, the most any wrong answer got, how many wrong answers got that many)."""
    states = {(0, 0, 0): 1}
    for size in wrong:
        grown: dict[tuple[int, int, int], int] = {}
        for (votes, top, tied), ways in states.items():
            for x in range(min(size, most - votes, cap) + 1):
                if x > top:
                    key = (votes + x, x, 1)
                elif x == top and x > 0:
                    key = (votes + x, top, tied + 1)
                else:
                    key = (votes + x, top, tied)
                grown[key] = grown.get(key, 0) + ways * comb(size, x)
        states = grown
    return states


def point_cost(thinking_tokens: Sequence[float], answer_tokens: Sequence[float], k: int) -> float:
    """The cost of (B, k): k times the mean tokens a seed spent at B (its real thinking tokens, which an accepted
    early stop leaves below B, plus its forced answer's tokens)."""
    spent = [t + a for t, a in zip(thinking_tokens, answer_tokens, strict=True)]
    return k * sum(spent) / len(spent)


def frontier(points: Sequence[tuple[int, int, float, float]]) -> list[tuple[float, float, int, int]]:
    """The compute frontier of (budget, k, cost, value) points: at each measured cost, the best value at or below
    it and the (budget, k) that reaches it, as (cost, value, budget, k) sorted by cost.

    At a tie in value the cheaper point stays on the frontier (then the smaller k: sequential before parallel).
    NaN values (not estimable, e.g. k above the seeds run) never enter it."""
    best: tuple[float, float, int, int] | None = None
    out: list[tuple[float, float, int, int]] = []
    estimable = [p for p in points if p[3] == p[3]]  # NaN != NaN
    for budget, k, cost, value in sorted(estimable, key=lambda p: (p[2], p[1], p[0])):
        if best is None or value > best[1]:
            best = (cost, value, budget, k)
        step = (cost, best[1], best[2], best[3])
        if out and out[-1][0] == cost:
            out[-1] = step
        else:
            out.append(step)
    return out
