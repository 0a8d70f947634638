"""What an answer votes for in maj@k (METHOD.md §6b): the grader's normalised form, the same for equivalent answers."""

from __future__ import annotations

import threading

import pytest

from ttscale.tasks import get_task
from ttscale.tasks.base import Grade, vote_key
from ttscale.tasks.grading import grade_choice, grade_integer, grade_math


@pytest.mark.parametrize("written", ["\\frac{1}{2}", "1/2", "\\dfrac12", "0.5", " \\frac{1}{2} "])
def test_equivalent_math_answers_share_one_key(written):
    assert grade_math(written, "3").key == grade_math("\\frac{1}{2}", "3").key == "1/2"


def test_integer_answers_vote_by_value_and_letters_by_letter():
    assert grade_integer("007", "9").key == grade_integer("7", "9").key == "7"
    assert grade_choice("(b)", "A", 4).key == grade_choice("\\text{B}", "A", 4).key == "B"


def test_off_the_main_thread_the_grading_child_sends_the_key_back():
    keys = []
    thread = threading.Thread(target=lambda: keys.append(grade_math("\\dfrac{2}{4}", "3").key))
    thread.start()
    thread.join(timeout=120)
    assert keys == ["1/2"]


def test_a_shuffled_letter_votes_for_the_option_it_names_under_its_seed():
    # seed 1 shows source option 2 as "A"; seed 2 shows it as "C": both answers vote for option 2
    first = vote_key(grade_choice("A", "B", 4), choice_order=(2, 0, 1, 3))
    second = vote_key(grade_choice("C", "B", 4), choice_order=(0, 1, 2, 3))
    assert first == second == "#2"


def test_no_vote_without_a_finished_graded_answer():
    task = get_task("demo-arith")
    assert task.grade("12", "12", truncated=True).key is None  # unclosed and cut by the cap: unfinished
    assert vote_key(task.grade("", "12"), None) is None  # nothing written
    assert vote_key(Grade("4", None, error="grading failed"), None) is None
    assert vote_key(task.grade("0012} and more", "12"), None) == "12"
