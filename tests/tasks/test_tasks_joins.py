"""Golds are joined by problem id: shuffled rows stay right, and a positional mis-join is caught."""

from __future__ import annotations

import random

import pytest

from ttscale.errors import TaskError
from ttscale.tasks import check_golds, get_task, join_golds
from ttscale.tasks.base import Problem


def _rows(task, problems, seeds):
    """Result rows as a runner writes them: one per (problem, seed), gold from the prompt for that seed."""
    return [
        {"problem_id": p.id, "seed": s, "gold": gold, "generated": gold + "}"}
        for p in problems
        for s in seeds
        for gold in [task.prompt(p, s).gold]
    ]


def test_join_golds_by_id():
    problems = get_task("demo-arith").load(20)
    ids = [p.id for p in problems]
    random.Random(0).shuffle(ids)
    assert [p.id for p in join_golds(ids, problems)] == ids


def test_join_golds_unknown_id():
    problems = get_task("demo-arith").load(5)
    with pytest.raises(TaskError, match=r"Unknown problem id 'arith-199': it is not in the dataset \(5 "):
        join_golds(["arith-000", "arith-199"], problems)


def test_join_golds_rejects_duplicate_ids():
    problems = [Problem("x", "q1", "1"), Problem("x", "q2", "2")]
    with pytest.raises(TaskError, match="Problem ids are not unique"):
        join_golds(["x"], problems)


@pytest.mark.parametrize("name", ["demo-arith", "demo-mc"])
def test_shuffled_rows_keep_grades_attached(name):
    task = get_task(name)
    problems = task.load(40)
    rows = _rows(task, problems, seeds=range(3))
    random.Random(1).shuffle(rows)
    check_golds(rows, problems, task)
    joined = join_golds([r["problem_id"] for r in rows], problems)
    for row, problem in zip(rows, joined, strict=True):
        assert problem.id == row["problem_id"]
        gold = task.prompt(problem, row["seed"]).gold
        assert task.grade(row["generated"], gold).correct is True


def test_positional_misjoin_is_caught(shared_file):
    """The original study's bug: golds looked up by position within a batch after the rows were reordered."""
    task = get_task("aime24", path=str(shared_file("aime24.jsonl")))
    problems = task.load()
    rows = _rows(task, problems, seeds=[0])
    random.Random(2).shuffle(rows)
    for position, row in enumerate(rows):
        row["gold"] = problems[position].gold  # positional join
    first_wrong = next(r for r in rows if r["gold"] != task.prompt(_by_id(problems, r), 0).gold)
    with pytest.raises(TaskError, match=f"problem '{first_wrong['problem_id']}' \\(seed 0\\) has gold"):
        check_golds(rows, problems, task)


def test_choice_gold_from_another_seed_is_caught():
    task = get_task("demo-mc")
    problems = task.load(10)
    rows = _rows(task, problems, seeds=range(4))
    bad = next(r for r in rows if task.prompt(_by_id(problems, r), r["seed"] + 1).gold != r["gold"])
    bad["gold"] = task.prompt(_by_id(problems, bad), bad["seed"] + 1).gold
    with pytest.raises(TaskError, match=f"problem '{bad['problem_id']}' \\(seed {bad['seed']}\\)"):
        check_golds(rows, problems, task)


def test_choice_rows_need_a_seed():
    task = get_task("demo-mc")
    problems = task.load(1)
    with pytest.raises(TaskError, match="Row 0: problem 'mc-000' has no seed"):
        check_golds([{"problem_id": "mc-000", "gold": "A"}], problems, task)


def test_check_golds_unknown_id():
    task = get_task("demo-arith")
    with pytest.raises(TaskError, match="Row 0: unknown problem id 'nope'"):
        check_golds([{"problem_id": "nope", "seed": 0, "gold": "1"}], task.load(3), task)


def _by_id(problems, row):
    return next(p for p in problems if p.id == row["problem_id"])
