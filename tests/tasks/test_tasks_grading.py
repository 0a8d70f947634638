"""Grading: boxed-answer extraction, integer/math/choice equivalence on real golds, and failure handling."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import math_verify
import pytest
from math_verify.errors import TimeoutException

from ttscale.tasks import get_task
from ttscale.tasks import grading as grading_module
from ttscale.tasks.grading import complete_on_its_own, extract_boxed_answer, grade_choice, grade_integer, grade_math


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- extraction: `generated` is what the model wrote after a forced `\boxed{` -------------------------


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ("42}", ("42", False)),
        ("42", ("42", True)),  # never closed: use what it wrote, flagged
        (" 7 } and then more", ("7", False)),
        ("\\frac{1}{2}}", ("\\frac{1}{2}", False)),
        ("\\sqrt{\\frac{a}{b}}} is it", ("\\sqrt{\\frac{a}{b}}", False)),  # nested braces
        ("\\{1, 2\\}}", ("\\{1, 2\\}", False)),  # escaped braces do not count
        ("\\text{A}}.", ("\\text{A}", False)),
        ("\\frac{1}{", ("\\frac{1}{", True)),
        ("}", (None, False)),
        ("", (None, True)),
        ("   ", (None, True)),
    ],
)
def test_extract_boxed_answer(generated, expected):
    assert extract_boxed_answer(generated) == expected


# --- integers (AIME) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        ("7", "007", True),
        ("007", "7", True),
        ("204", "204", True),
        ("204", " 204 ", True),
        ("12", "1/2", False),  # no digit stripping
        ("12", "12a", False),
        ("12", "1.2", False),
        ("12", "21", False),
        ("204", "\\text{204}", True),  # not a plain integer: math-verify decides
        ("204", "Wait", False),
        ("204", None, False),
    ],
)
def test_grade_integer(gold, answer, expected):
    assert grade_integer(answer, gold).correct is expected


def test_grade_integer_bad_gold_is_an_error():
    grade = grade_integer("5", "five")
    assert grade.correct is None
    assert grade.error == "gold 'five' is not an integer"


def test_aime24_golds_grade_against_themselves(shared_file):
    task = get_task("aime24", path=str(shared_file("aime24.jsonl")))
    problems = task.load()
    assert len(problems) == 30
    for p in problems:
        gold = int(p.gold)
        assert task.grade(f"{gold:03d}}}", p.gold).correct is True, p.id
        assert task.grade(f"{gold}}}", p.gold).correct is True, p.id
        assert task.grade(f"{(gold + 1) % 1000:03d}}}", p.gold).correct is False, p.id
        assert task.solution_set(p).index_of(p.gold) == gold


# --- math-verify (MATH-500 and friends) ---------------------------------------------------------------


def _rewrites(gold: str) -> set[str]:
    """Rewrites that keep the value: \\dfrac for \\frac, no \\left/\\right, surrounding spaces."""
    out = {gold.replace("\\frac", "\\dfrac"), gold.replace("\\left", "").replace("\\right", ""), f"  {gold} "}
    return out - {gold}


def test_math500_golds_verify_against_themselves_and_rewrites(shared_file):
    rows = _jsonl(shared_file("math500.jsonl"))
    assert len(rows) == 500
    failures = []
    for row in rows:
        gold = row["answer"]
        for answer in {gold} | _rewrites(gold):
            if grade_math(answer, gold).correct is not True:
                failures.append((gold, answer))
        if re.fullmatch(r"-?\d+", gold) and grade_math(str(int(gold) + 1), gold).correct is not False:
            failures.append((gold, "neighbour"))
    assert failures == []


@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        ("\\frac{14}{3}", "\\dfrac{14}{3}", True),
        ("\\frac{14}{3}", "14/3", True),
        ("\\frac{1}{4}", "0.25", True),
        ("3\\sqrt{13}", "\\sqrt{117}", True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)", True),
        ("(2,12) \\cup (12,102)", "(12,102)\\cup(2,12)", True),
        ("6+9i", "9i+6", True),
        ("-2,1", "1,-2", True),
        ("\\text{Evelyn}", "Evelyn", True),
        ("\\text{Evelyn}", "\\text{Bob}", False),
        ("x^2+7x+10", "(x+5)(x+2)", True),
        ("10,\\!080", "10080", True),
        ("\\begin{pmatrix} -1 \\\\ 0 \\end{pmatrix}", "\\begin{pmatrix}-1\\\\0\\end{pmatrix}", True),
        ("12", "1/2", False),  # the original study's digit stripping made this true
        ("\\frac{1}{2}", "12", False),
        ("\\frac{1}{3}", "0.333", False),
        ("18", "18 dollars", False),
        ("2", "Wait, let me think", False),
        ("7", None, False),
    ],
)
def test_grade_math(gold, answer, expected):
    assert grade_math(answer, gold).correct is expected


def test_gsm8k_golds_verify_against_themselves(shared_file):
    task = get_task("gsm8k", path=str(shared_file("gsm8k_test.jsonl")))
    for p in task.load(200):
        assert task.grade(p.gold + "}", p.gold).correct is True, p.id


def test_grade_math_exception_becomes_error(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("parser exploded\nsecond line")

    monkeypatch.setattr(math_verify, "parse", broken)
    grading_module._parse_gold.cache_clear()
    grade = grade_math("3", "3")
    assert grade.correct is None
    assert grade.error == "math-verify RuntimeError: parser exploded"


def test_grade_math_timeout_becomes_error(monkeypatch):
    def slow(*args, **kwargs):
        raise TimeoutException("Operation timed out!")

    monkeypatch.setattr(math_verify, "verify", slow)
    grade = grade_math("3", "3")
    assert grade.correct is None
    assert grade.error == "math-verify TimeoutException: Operation timed out!"


def test_grade_math_refuses_huge_answers():
    grade = grade_math("1" * 5000, "1")
    assert grade.correct is None
    assert grade.error is not None and "longer than" in grade.error


def test_grade_math_ungradable_gold_is_an_error():
    grade = grade_math("3", "")
    assert grade.correct is None
    assert grade.error == "math-verify could not parse the gold ''"


def test_grading_works_off_the_main_thread():
    """math-verify's signal timeouts raise off the main thread; grading must still work there (Ray, pools)."""
    pairs = [("\\sqrt{117}", "3\\sqrt{13}"), ("1/2", "12"), ("007", "7")]
    graders = [grade_math, grade_math, grade_integer]
    with ThreadPoolExecutor(max_workers=2) as pool:
        grades = list(pool.map(lambda args: args[0](*args[1]), zip(graders, pairs, strict=True)))
    assert [g.correct for g in grades] == [True, False, True]
    assert all(g.error is None for g in grades)


def test_timeout_only_on_main_thread():
    seen = []
    worker = threading.Thread(target=lambda: seen.append(grading_module._timeout_s()))
    worker.start()
    worker.join()
    assert seen == [None]
    assert grading_module._timeout_s() == grading_module.TIMEOUT_S


# --- multiple choice ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        ("A", "A", True),
        ("a", "A", True),
        ("(A)", "A", True),
        ("A)", "A", True),
        ("A.", "A", True),
        ("\\text{A}", "A", True),
        ("\\textbf{A}", "A", True),
        ("\\mathrm{A}", "A", True),
        ("\\text{(b)}", "B", True),
        ("B", "A", False),
        ("E", "A", False),  # outside the options
        ("AB", "A", False),
        ("the first one", "A", False),
        (None, "A", False),
    ],
)
def test_grade_choice(answer, gold, expected):
    assert grade_choice(answer, gold, 4).correct is expected


def test_grade_choice_gold_outside_options_is_an_error():
    grade = grade_choice("E", "E", 4)
    assert grade.correct is None
    assert grade.error == "gold 'E' is not one of 4 option letters"


def test_task_grade_flags_unclosed():
    task = get_task("demo-arith")
    grade = task.grade("42", "42")
    assert (grade.answer, grade.correct, grade.unclosed) == ("42", True, True)
    closed = task.grade("42} because", "42")
    assert (closed.correct, closed.unclosed) == (True, False)


@pytest.mark.parametrize(
    ("task", "generated", "gold"),
    [
        ("demo-arith", "\\begin{aligned}\nRemainder &= & 2^{", "2"),  # seen in a sweep: graded right before
        ("demo-arith", "\\frac{1}{", "1"),
        ("demo-arith", "x = 3 +", "3"),
        ("demo-arith", "\\sqrt{", "2"),
        ("demo-arith", "2^{", "2"),
        ("demo-mc", "\\text{A", "A"),
    ],
)
def test_a_truncated_answer_is_wrong_even_when_a_prefix_matches_the_gold(task, generated, gold):
    grade = get_task(task).grade(generated, gold)  # the model ran out of answer tokens inside \boxed{
    assert (grade.answer, grade.correct, grade.unclosed, grade.error) == (generated.strip(), False, True, None)


@pytest.mark.parametrize(
    ("task", "generated", "gold", "correct"),
    [
        ("demo-arith", "42", "42", True),  # an integer is whole on its own
        ("demo-arith", " 7", "8", False),
        ("demo-arith", "2^{10}", "1024", True),  # balanced, parses with nothing left over
        ("demo-arith", "\\frac{16}{2}", "8", True),
        ("demo-mc", "(B", "B", True),  # a letter
    ],
)
def test_an_unclosed_answer_complete_on_its_own_is_graded(task, generated, gold, correct):
    grade = get_task(task).grade(generated, gold)
    assert (grade.correct, grade.unclosed) == (correct, True)


def test_an_unclosed_answer_cut_by_the_cap_is_wrong_and_one_that_ended_on_its_own_is_graded():
    task = get_task("demo-arith")
    cut = task.grade("70", "70", truncated=True)  # the model was writing 707: graded on nothing it finished
    assert (cut.answer, cut.correct, cut.unclosed) == ("70", False, True)
    ended = task.grade("70", "70", truncated=False)  # it stopped at EOS after 70: graded on what it wrote
    assert (ended.answer, ended.correct, ended.unclosed) == ("70", True, True)
    assert task.grade("70}", "70", truncated=False).correct is True


@pytest.mark.parametrize(
    ("answer", "complete"),
    [("42", True), ("-3", True), ("3+4", True), ("\\sqrt{2}", True), ("x = 3", True), ("x = 3 +", False),
     ("\\frac{1}{", False), ("1}", False), ("3 \\cdot", False), (None, False), ("", False)],
)  # fmt: skip
def test_complete_on_its_own(answer, complete):
    assert complete_on_its_own(answer, "math") is complete


def test_choice_task_grade():
    task = get_task("demo-mc")
    assert task.grade("\\text{C}}", "C").correct is True
    assert task.grade("E}", "C").correct is False
