"""maj@k (METHOD.md §6b): the exact expectation over k-subsets, checked against counting every subset."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invariants import counted
from ttscale.analysis.parallel import frontier, maj_at_k, point_cost


def test_three_correct_of_eight_against_two_wrong_answers_split_three_and_two():
    answers = ["7"] * 3 + ["9"] * 3 + ["4"] * 2
    got = [maj_at_k(3, [3, 2], 0, k) for k in range(1, 9)]
    assert got == pytest.approx([float(counted(answers, "7", k)) for k in range(1, 9)], abs=1e-12)
    assert got[0] == pytest.approx(3 / 8)  # maj@1 is accuracy
    assert got[7] == pytest.approx(1 / 2)  # all eight: 3 against 3 (and 2), a coin flip between "7" and "9"
    # k = 2: a win needs both from the gold (3 of 28 pairs) or one gold and one other answer, then a coin flip
    assert got[1] == pytest.approx((3 + (3 * 5) / 2) / 28)


def test_ties_split_evenly_and_abstainers_never_win():
    assert maj_at_k(1, [1], 0, 2) == pytest.approx(0.5)
    assert maj_at_k(1, [1, 1], 0, 3) == pytest.approx(1 / 3)
    assert maj_at_k(0, [], 4, 2) == 0.0  # nobody answered
    assert maj_at_k(1, [], 3, 4) == 1.0  # the only vote cast is the gold's
    assert maj_at_k(2, [], 2, 1) == pytest.approx(0.5)  # maj@1 = accuracy, abstainers included in n


def test_too_few_seeds_is_not_estimable_and_bad_counts_are_refused():
    assert math.isnan(maj_at_k(1, [1], 0, 3))
    with pytest.raises(ValueError, match="counts >= 0, k >= 1"):
        maj_at_k(1, [-1], 0, 1)
    with pytest.raises(ValueError, match="counts >= 0, k >= 1"):
        maj_at_k(1, [], 0, 0)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=1, max_size=9), st.data())
def test_the_exact_expectation_equals_counting_every_subset(answers, data):
    k = data.draw(st.integers(1, len(answers)))
    counts = {a: answers.count(a) for a in set(answers) if a is not None}
    wrong = [v for a, v in counts.items() if a != "a"]
    got = maj_at_k(counts.get("a", 0), wrong, answers.count(None), k)
    assert got == pytest.approx(float(counted(answers, "a", k)), abs=1e-12)


def test_the_cost_of_a_point_is_k_times_the_tokens_a_seed_really_spent():
    assert point_cost([100, 60], [10, 10], k=4) == 4 * 90  # one seed stopped early at 60 of B = 100


def test_a_frontier_that_switches_from_parallel_to_sequential_at_a_known_cost():
    # Budgets 64..512 at k = 1 (cost = B), and budget 64 at k = 2, 4, 8 (cost 128, 256, 512). Sampling more at 64
    # beats thinking longer up to cost 256; at 512 the longer thought wins.
    sequential = [(64, 1, 64.0, 0.10), (128, 1, 128.0, 0.12), (256, 1, 256.0, 0.20), (512, 1, 512.0, 0.60)]
    parallel = [(64, 2, 128.0, 0.15), (64, 4, 256.0, 0.25), (64, 8, 512.0, 0.30)]
    got = frontier(sequential + parallel)
    steps = [(cost, budget, k) for cost, _, budget, k in got]
    assert steps == [(64, 64, 1), (128, 64, 2), (256, 64, 4), (512, 512, 1)]
    assert [value for _, value, _, _ in got] == [0.10, 0.15, 0.25, 0.60]


def test_the_frontier_never_falls_and_ignores_points_that_are_not_estimable():
    points = [(64, 1, 64.0, 0.5), (128, 1, 128.0, 0.2), (64, 16, 1024.0, math.nan)]
    assert frontier(points) == [(64.0, 0.5, 64, 1), (128.0, 0.5, 64, 1)]
    assert frontier([(64, 1, 64.0, 0.3), (32, 2, 64.0, 0.3)]) == [(64.0, 0.3, 64, 1)]  # a tie: sequential stays
