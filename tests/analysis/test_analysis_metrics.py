"""Metric table and per-problem values: pass@k, nulls, signs, errors."""

import math

import numpy as np
import pandas as pd
import pytest

from invariants import is_discrete
from ttscale.analysis.values import default_pass_k, pass_at_k, problem_values
from ttscale.metrics import METRICS, get_metric


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (4, 1, 1, 0.25),
        (4, 0, 1, 0.0),
        (4, 0, 3, 0.0),
        (4, 4, 2, 1.0),
        (4, 2, 2, 1 - 1 / 6),  # 1 − C(2,2)/C(4,2)
        (4, 1, 4, 1.0),  # every seed drawn: the one success is always in
        (8, 3, 4, 1 - 5 / 70),  # 1 − C(5,4)/C(8,4)
        (3, 1, 4, math.nan),  # k > n: not estimable
        (0, 0, 1, math.nan),
    ],
)
def test_pass_at_k_hand_cases(n, c, k, expected):
    got = pass_at_k(np.array([n]), np.array([c]), k)[0]
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def _rows():
    rows = []
    for budget in (128, 256):
        for seed, correct, entropy in [(0, 1, 0.5), (1, 0, 1.5), (2, None, 1.0), (3, 1, None)]:
            rows.append(("m", "d", "p1", seed, budget, correct, entropy, 0.3 * seed, 100 + seed))
        for seed in range(4):  # p2: grading failed everywhere
            rows.append(("m", "d", "p2", seed, budget, None, None, None, 50))
    columns = ["model", "dataset", "problem_id", "seed", "budget", "correct", "entropy", "p_correct", "thinking_tokens"]
    df = pd.DataFrame(rows, columns=columns)
    df["correct"] = df["correct"].astype("Int8")  # nullable, as ROW_SCHEMA's int8 reads back
    return df


def test_problem_values_mean_over_seeds_with_nulls_dropped():
    acc = problem_values(_rows(), "accuracy")
    assert list(acc.columns) == ["model", "dataset", "problem_id", "budget", "value"]
    assert len(acc) == 4  # problems × budgets
    p1 = acc[acc.problem_id == "p1"]
    assert p1["value"].tolist() == pytest.approx([2 / 3, 2 / 3])  # the null seed is dropped, not a zero
    assert acc[acc.problem_id == "p2"]["value"].isna().all()  # all null stays null
    ent = problem_values(_rows(), "neg_entropy")
    assert ent[ent.problem_id == "p1"]["value"].tolist() == pytest.approx([-1.0, -1.0])
    tok = problem_values(_rows(), "thinking_tokens")
    assert tok[tok.problem_id == "p1"]["value"].tolist() == pytest.approx([101.5, 101.5])


def test_pass_at_k_from_rows():
    values = problem_values(_rows(), "pass@2")
    p1 = values[values.problem_id == "p1"]["value"]
    assert p1.tolist() == pytest.approx([1 - 0 / 3] * 2)  # n = 3 graded, c = 2: C(1,2) = 0
    assert values[values.problem_id == "p2"]["value"].isna().all()
    assert problem_values(_rows(), "pass@4")["value"].isna().all()  # only 3 graded seeds


def test_metric_table_flags_and_errors():
    assert is_discrete("accuracy") and is_discrete("pass@8")
    assert not any(is_discrete(m) for m in ("p_correct", "neg_entropy", "neg_brier", "mass_on_set"))
    assert get_metric("pass@4").k == 4 and get_metric("neg_brier").sign == -1.0
    assert set(METRICS) >= {"accuracy", "pass@k", "p_correct", "neg_entropy", "neg_brier", "mass_on_set"}
    with pytest.raises(ValueError, match=r"Unknown metric 'entropy'\. Known: accuracy, pass@<k> \(e\.g\. pass@4\)"):
        get_metric("entropy")
    with pytest.raises(ValueError, match="Unknown metric 'pass@0'"):
        get_metric("pass@0")
    with pytest.raises(ValueError, match=r"rows lack the columns \['brier'\] needed for metric 'neg_brier'"):
        problem_values(_rows(), "neg_brier")


def test_default_pass_k_is_the_fewest_seeds_any_point_ran():
    rows = _rows()
    assert default_pass_k(rows) == 4  # null grades still count as run seeds
    fewer = rows.drop(rows[(rows.problem_id == "p2") & (rows.budget == 256) & (rows.seed >= 2)].index)
    assert default_pass_k(fewer) == 2  # one (problem, budget) with 2 seeds sets k for all
    assert default_pass_k(rows[rows.seed == 0]) == 1
    assert default_pass_k(rows.iloc[:0]) == 1
    with pytest.raises(ValueError, match=r"rows lack the columns \['budget'\] needed to count seeds"):
        default_pass_k(rows.drop(columns="budget"))
