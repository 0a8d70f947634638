"""Golds are joined by problem id through the whole measurement path (METHOD.md §7.3), not by position.

The engine here is the FakeEngine double: what is checked is the runner's bookkeeping, not a model."""

import random

from ttscale.engines.fake import FakeEngine
from ttscale.families import get_family
from ttscale.forcing import ForcingConfig
from ttscale.runner import RunSettings, run_unit
from ttscale.tasks import get_task

SETTINGS = RunSettings(model="fake", engine="fake", family=get_family("generic"), forcing=ForcingConfig())


def shuffled(problems, seed=7):
    problems = list(problems)
    random.Random(seed).shuffle(problems)
    return problems


def test_rows_of_shuffled_problems_carry_their_own_golds_and_grades():
    task = get_task("demo-arith")
    problems = shuffled(task.load(limit=12))
    target = problems[5]  # the fake engine answers this problem's gold to every problem
    result = run_unit(FakeEngine(answer=target.gold), task, problems, seeds=[0, 1], budgets=[8, 16], settings=SETTINGS)
    gold_by_id = {p.id: p.gold for p in problems}
    assert len(result.rows) == 12 * 2 * 2
    for row in result.rows:
        assert row["gold"] == gold_by_id[row["problem_id"]]
        assert row["correct"] == int(gold_by_id[row["problem_id"]] == target.gold)
    assert any(row["correct"] for row in result.rows) and not all(row["correct"] for row in result.rows)


def test_choice_rows_carry_the_gold_letter_of_their_own_problem_and_seed():
    task = get_task("demo-mc")
    problems = shuffled(task.load(limit=8))
    result = run_unit(FakeEngine(answer="A"), task, problems, seeds=[0, 1, 2], budgets=[8], settings=SETTINGS)
    by_id = {p.id: p for p in problems}
    for row in result.rows:
        problem = by_id[row["problem_id"]]
        shown_as = "ABCD"[list(row["choice_order"]).index(problem.gold_index)]
        assert row["gold"] == shown_as == task.prompt(problem, row["seed"]).gold
        assert row["correct"] == int(shown_as == "A")
        assert row["p_correct"] is not None and 0 < row["p_correct"] < 1
