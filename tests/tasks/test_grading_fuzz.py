"""Fuzzed model output: extraction and grading never raise and take bounded time per answer, in every format."""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from fuzz_figures import record
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttscale.tasks import get_task
from ttscale.tasks._isolated import IsolatedGrader, Overran
from ttscale.tasks.base import Grade
from ttscale.tasks.grading import ANSWER_LIMIT_S, extract_boxed_answer

CASES: Counter[str] = Counter()
TASKS = {
    "integer": get_task("demo-arith"),
    "choice": get_task("demo-mc"),
    "math": get_task("demo-arith", answer_format="math"),
}
GOLDS = {
    "integer": ["42", "007", "0", "999"],
    "choice": ["A", "B", "D"],
    "math": ["\\frac{1}{2}", "3\\sqrt{13}", "x^2+1", "\\{1,2\\}", "204", "\\text{(B)}", "\\infty"],
}
LIMIT_S = ANSWER_LIMIT_S  # seconds one answer may take, whatever it is
FUZZ = settings(
    max_examples=int(os.environ.get("TTSCALE_FUZZ_EXAMPLES", "1200")),  # make soak raises it
    deadline=None,  # time is asserted per answer below, with the limit the grader promises
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

LATEX = st.sampled_from(
    ["\\boxed{", "\\frac{", "\\frac{1}{", "{", "}", "}}", "^", "^{", "_", "\\\\", "\\", "\\{", "\\}", "$", "$$",
     "\\text{", "\\textbf{", "\\mathrm{", "(A)", "A", "b.", "\\sqrt{", "\\sqrt[3]{", "\\begin{pmatrix}", "&",
     "\\end{pmatrix}", "\\left(", "\\right)", "!", "9^{9^{9}}", "10^{100}", "\\infty", "\\pi", "=", "+", "-", ",",
     "1,000", ".", "x", "\\cdot", "\\times", "\\%", "^\\circ", "\\dfrac", "\\int_0^1", "\\sum_{n=1}^{", "\n", " ",
     "####", "\\ud800", "\x00", "\u202e", "٣", "一"]
)  # fmt: skip
OUTPUTS = st.one_of(
    st.lists(st.one_of(LATEX, st.text(alphabet="0123456789", min_size=1, max_size=12)), max_size=30).map("".join),
    st.text(max_size=300),
    st.integers(min_value=0, max_value=6000).map(lambda n: "9" * n),
    st.tuples(LATEX, st.integers(1, 3000)).map(lambda t: t[0] * t[1]),
)
REGRESSIONS = [
    "\\boxed{" * 10_000,  # 10,000 unclosed groups
    "{" * 10_000 + "}" * 10_000,
    "9" * 5000 + "}",  # int() refuses strings over 4300 digits
    "\\frac{1}{",
    "\\frac{" * 300 + "1" + "}{2}" * 300,
    "9^{9^{9^{9}}}}",  # sympy evaluates the tower: held only by the timeout (hung off the main thread)
    "(10^{10})!}",
    "\\sum_{n=1}^{10^{9}} n^{n}}",
    "\\text{" * 5000 + "A" + "}" * 5000,  # unwrapped one level at a time: quadratic without a length cap
]


@pytest.fixture(scope="module", autouse=True)
def _figures():
    yield
    record("answers", sum(CASES.values()))


def grade_in_time(fmt: str, output: str, gold: str) -> Grade:
    """Grade one output; it must not raise, and must come back within LIMIT_S."""
    CASES[fmt] += 1
    start = time.perf_counter()
    grade = TASKS[fmt].grade(output, gold)
    elapsed = time.perf_counter() - start
    assert elapsed < LIMIT_S, f"{elapsed:.1f} s for {fmt} {output[:80]!r}"
    assert isinstance(grade, Grade) and grade.correct in (True, False, None)
    assert grade.correct is not None or grade.error, "correct=None always says why"
    return grade


@FUZZ
@given(fmt=st.sampled_from(sorted(TASKS)), output=OUTPUTS, data=st.data())
def test_any_model_output_grades_without_raising_in_bounded_time(fmt, output, data):
    gold = data.draw(st.sampled_from(GOLDS[fmt]))
    answer, _ = extract_boxed_answer(output)
    assert answer is None or (answer == answer.strip() and answer)
    grade_in_time(fmt, output, gold)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(output=OUTPUTS)
@example(output="9^{9^{9^{9}}}}")
def test_off_the_main_thread_too(output):
    """Ray actors grade on worker threads, where math-verify's signal timeout cannot run."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(grade_in_time, "math", output, "\\frac{1}{2}").result()


@pytest.mark.parametrize("output", REGRESSIONS)
@pytest.mark.parametrize("fmt", sorted(TASKS))
def test_regressions(fmt, output):
    grade = grade_in_time(fmt, output, GOLDS[fmt][0])
    assert grade.correct is not True


def test_a_hung_answer_off_the_main_thread_is_cut_and_the_next_graded():
    """The child grading an answer that overruns is replaced; the next answer is graded as usual."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(grade_in_time, "math", "9^{9^{9^{9}}}}", "1").result()
        fine = pool.submit(grade_in_time, "math", "\\frac{2}{4}}", "\\frac{1}{2}").result()
    assert slow.correct is None and "Timeout" in slow.error
    assert fine.correct is True and fine.error is None


def test_the_grading_child_is_killed_when_it_overruns_and_a_fresh_one_answers():
    grader = IsolatedGrader()
    assert grader.call("math_outcome", ["\\frac{2}{4}", "\\frac{1}{2}"], LIMIT_S * 30) == [True, None, "1/2"]  # started
    with pytest.raises(Overran):
        grader.call("math_outcome", ["(10^{10})!", "1"], 0.05)
    assert grader.call("math_outcome", ["3", "3"], LIMIT_S * 30) == [True, None, "3"]
    grader.close()
