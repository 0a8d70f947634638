"""Where `ttscale refine` adds budgets: the largest changes first, log-spaced inside each gap, capped per pair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ttscale.analysis.gaps import Gap, choose_budgets, dataset_gaps, log_spaced, problem_gaps, refine_grid


def test_log_spaced_budgets_are_even_in_log2_and_strictly_inside():
    assert log_spaced(512, 1024, 1) == [724]  # 2^9.5
    assert log_spaced(16, 256, 3) == [32, 64, 128]  # quarter points of 4..8 in log2
    assert log_spaced(8, 9, 1) == []  # no whole token strictly between
    assert log_spaced(8, 10, 3) == [9]  # fewer when the gap is narrow: duplicates dropped
    for lo, hi, k in [(16, 32, 1), (100, 3000, 4), (128, 32768, 7)]:
        budgets = log_spaced(lo, hi, k)
        assert all(lo < b < hi for b in budgets) and budgets == sorted(set(budgets))
        steps = np.diff(np.log2([lo, *budgets, hi]))
        assert np.allclose(steps, steps.mean(), atol=0.05)  # rounding to whole tokens


def test_dataset_gaps_are_ordered_by_change_and_flat_gaps_are_dropped():
    gaps = dataset_gaps([16, 32, 64, 128, 256], [0.1, 0.1, 0.2, 0.8, 0.9])
    assert [(g.lo, g.hi) for g in gaps] == [(64, 128), (32, 64), (128, 256)]  # 16–32 has no change
    assert gaps[0].change == pytest.approx(0.6) and gaps[0].source == "dataset"
    falling = dataset_gaps([16, 32, 64], [0.9, 0.2, 0.1])  # a drop is a change too
    assert (falling[0].lo, falling[0].hi) == (16, 32)


def test_choose_budgets_fills_gaps_in_order_up_to_the_cap():
    gaps = [Gap(64, 128, 0.6, "dataset"), Gap(32, 64, 0.1, "dataset"), Gap(8, 9, 0.05, "dataset")]
    taken, added = choose_budgets(gaps, existing=[8, 9, 32, 64, 128], per_gap=1, max_budgets=4)
    assert [(g.lo, g.hi) for g in taken] == [(64, 128), (32, 64)] and added == [[91], [45]]  # 8–9 too narrow
    taken, added = choose_budgets(gaps, existing=[32, 64, 128], per_gap=2, max_budgets=3)
    assert added == [[81, 102]]  # a second gap's two budgets would pass the cap of 3


def problem_frame(curves: dict[str, list[float]], budgets: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"model": "m", "dataset": "d", "problem_id": pid, "budget": b, "value": v}
            for pid, ys in curves.items()
            for b, v in zip(budgets, ys, strict=True)
        ]
    )


def test_problem_level_puts_the_most_emergent_problems_jump_right_after_the_largest_dataset_change():
    budgets = [16, 32, 64, 128, 256]
    curves = {
        "ramp": [0.0, 0.25, 0.5, 0.75, 1.0],
        "ramp2": [0.0, 0.25, 0.5, 0.75, 1.0],
        "jump": [0.0, 0.0, 0.0, 0.0, 1.0],  # breakthroughness 1: jumps in 128–256
    }
    values = problem_frame(curves, budgets)
    dataset_only = refine_grid(values, max_budgets=1)
    assert dataset_only[0].gaps[0].lo == 128  # mean curve: 0, .17, .33, .5, 1 → its largest change is 128–256 too
    Y = np.array(list(curves.values()))
    assert [g.source for g in problem_gaps(Y, budgets, list(curves), top=1)] == ["problem jump"]

    # Five problems rise early and late (mean changes: 16–32 most, then 128–256); one jumps at 32–64.
    curves = {**{f"p{i}": [0.0, 0.5, 0.55, 0.6, 0.9] for i in range(5)}, "late": [0.0, 0.0, 0.9, 0.9, 0.9]}
    values = problem_frame(curves, budgets)
    (pair,) = refine_grid(values, level="dataset", max_budgets=2)
    assert [(g.lo, g.hi, g.source) for g in pair.gaps] == [(16, 32, "dataset"), (128, 256, "dataset")]
    (pair,) = refine_grid(values, level="problem", max_budgets=2, top=1)
    assert [(g.lo, g.hi, g.source) for g in pair.gaps] == [(16, 32, "dataset"), (32, 64, "problem late")]
    assert pair.added == [23, 45]


def test_flat_curves_have_nothing_to_refine():
    values = problem_frame({"a": [0.5, 0.5, 0.5]}, [16, 32, 64])
    assert refine_grid(values) == []
    with pytest.raises(ValueError):
        refine_grid(values, level="token")
