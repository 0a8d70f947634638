"""Prompts: one user message per format, and options shuffled deterministically per (problem id, seed)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from ttscale.errors import TaskError
from ttscale.tasks import get_task
from ttscale.tasks.base import Problem
from ttscale.tasks.prompts import (
    AIME_INSTRUCTION,
    CHOICE_INSTRUCTION,
    MATH_INSTRUCTION,
    option_order,
    prompt_problem,
)

_OPTION_LINE = re.compile(r"^([A-Z])\) (.*)$", re.M)


def _shown_options(message: str) -> dict[str, str]:
    return dict(_OPTION_LINE.findall(message))


def test_math_prompt_is_question_plus_instruction():
    problem = Problem("p1", "What is $1+1$?", "2")
    prompted = prompt_problem(problem, 0, MATH_INSTRUCTION)
    instruction = "Please reason step by step, and put your final answer within \\boxed{}."
    assert prompted.user_message == "What is $1+1$?\n\n" + instruction
    assert (prompted.problem_id, prompted.seed, prompted.gold, prompted.choice_order) == ("p1", 0, "2", None)
    assert prompt_problem(problem, 5, MATH_INSTRUCTION).user_message == prompted.user_message


def test_aime_prompt_asks_for_three_digits(shared_file):
    task = get_task("aime24", path=str(shared_file("aime24.jsonl")))
    prompted = task.prompt(task.load(1)[0], 0)
    assert prompted.user_message.endswith(AIME_INSTRUCTION)
    assert "integer from 000 to 999" in prompted.user_message and "three digits" in prompted.user_message
    assert prompted.gold == "204"


def test_option_order_is_pinned():
    """The permutation must never change between versions: results on disk depend on it."""
    assert option_order("q1", 0, 4) == (2, 1, 3, 0)
    assert option_order("q1", 1, 4) == (0, 3, 2, 1)


def test_option_order_is_a_permutation():
    for seed in range(20):
        assert sorted(option_order("x", seed, 5)) == [0, 1, 2, 3, 4]


def test_mmlu_shuffle_follows_gold(shared_file):
    task = get_task(str(shared_file("mmlu_stem.jsonl")))
    assert task.answer_format == "choice"
    problems = task.load(60)
    gold_letters = Counter()
    for problem in problems:
        orders = set()
        for seed in range(6):
            prompted = task.prompt(problem, seed)
            assert prompted == task.prompt(problem, seed)  # deterministic
            shown = _shown_options(prompted.user_message)
            assert list(shown) == ["A", "B", "C", "D"]
            assert shown[prompted.gold] == problem.choices[problem.gold_index]  # the gold letter follows
            assert problem.choices[prompted.choice_order[ord(prompted.gold) - ord("A")]] == problem.gold
            assert prompted.user_message.endswith(CHOICE_INSTRUCTION)
            orders.add(prompted.choice_order)
            gold_letters[prompted.gold] += 1
        assert len(orders) > 1, f"seeds gave one order for {problem.id}"
    assert set(gold_letters) == {"A", "B", "C", "D"}
    assert min(gold_letters.values()) > 40  # 360 prompts: each letter about 90 times


def test_shuffle_depends_on_problem_id():
    a = Problem("a", "Pick one.", "w", ("w", "x", "y", "z"), 0)
    b = Problem("b", "Pick one.", "w", ("w", "x", "y", "z"), 0)
    orders_a = [prompt_problem(a, s, CHOICE_INSTRUCTION).choice_order for s in range(8)]
    orders_b = [prompt_problem(b, s, CHOICE_INSTRUCTION).choice_order for s in range(8)]
    assert orders_a != orders_b


def test_choice_problem_without_gold_index_raises():
    problem = Problem("q", "Pick one.", "x", ("x", "y"), None)
    with pytest.raises(TaskError, match="Problem 'q' has options but no gold_index"):
        prompt_problem(problem, 0, CHOICE_INSTRUCTION)


def test_demo_mc_prompt_is_short_and_graded_by_letter():
    task = get_task("demo-mc")
    problem = task.load(1)[0]
    prompted = task.prompt(problem, 3)
    assert len(prompted.user_message) < 250
    assert task.grade(prompted.gold + "}", prompted.gold).correct is True
    assert _shown_options(prompted.user_message)[prompted.gold] == problem.gold
