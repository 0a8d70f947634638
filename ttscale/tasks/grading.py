"""Discrete correctness (METHOD.md §4): extract the forced `\\boxed{` answer, grade it, join golds by id.

Time is bounded per answer. math-verify bounds each parse and comparison with `signal.alarm`, which only works
in the main thread; off it (Ray threaded actors, thread pools) the sympy work runs in a child process
(`_grading_child.py`, started by `_isolated.py`) that is killed and replaced when an answer overruns
`ANSWER_LIMIT_S`. Answers longer than `MAX_ANSWER_CHARS` are refused (an `error`, not a wrong answer).

Known issues:
- math-verify reads `1,000` as one thousand, `1,2` as the set {1, 2}; `204.` does not parse as 204.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ttscale.errors import TaskError
from ttscale.tasks._isolated import IsolatedGrader
from ttscale.tasks.base import Grade, Problem
from ttscale.tasks.solution_sets import canonical_letter, parse_int

if TYPE_CHECKING:
    from ttscale.tasks.base import Task

TIMEOUT_S = 1  # seconds per math-verify parse and per comparison (signal.alarm: whole seconds, main thread)
ANSWER_LIMIT_S = 4.0  # off the main thread: the child grading one answer is killed after this long
MAX_ANSWER_CHARS = 2000  # forced answers are ~16 tokens; anything this long is not an answer


def extract_boxed_answer(generated: str) -> tuple[str | None, bool]:
    """Text up to the brace closing a forced `\\boxed{` (depth starts at 1), and whether it never closed.

    Braces escaped as `\\{`/`\\}` do not count. Returns (answer stripped or None if empty, unclosed).
    """
    depth, i = 1, 0
    while i < len(generated):
        char = generated[i]
        if char == "\\":
            i += 2  # an escaped character (`\\}`, `\\{`, `\\\\`) never opens or closes a group
            continue
        depth += (char == "{") - (char == "}")
        if depth == 0:
            return generated[:i].strip() or None, False
        i += 1
    return generated.strip() or None, True


def complete_on_its_own(answer: str | None, answer_format: str) -> bool:
    """Whether an unclosed answer (the forced `\\boxed{` never closed) is whole, so it may be graded.

    Whole: an integer, an option letter (choice tasks), or LaTeX with balanced braces that parses with
    nothing left over (`2^{10}`, `\\frac{1}{2}`). A truncation is not: `\\frac{1}{`, `x = 3 +`, `\\sqrt{`.
    math-verify's lenient parsing would find the `2` in an unfinished `2^{…` and grade it right.
    """
    if answer is None:
        return False
    if parse_int(answer) is not None:
        return True
    if answer_format == "choice":
        return canonical_letter(answer) is not None
    return len(answer) <= MAX_ANSWER_CHARS and braces_balanced(answer) and _parses_whole(answer)


def braces_balanced(text: str) -> bool:
    """Every unescaped `{` closed by a later `}`, and no `}` without its `{`."""
    depth, i = 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        depth += (text[i] == "{") - (text[i] == "}")
        if depth < 0:
            return False
        i += 1
    return depth == 0


def _parses_whole(latex: str) -> bool:
    """The strict LaTeX parser math-verify is built on reads all of `latex` (it fails on a trailing operator).

    One that takes longer than TIMEOUT_S (`9^{9^{9^{9}}}` is evaluated) counts as not parsing."""
    if not _on_main_thread():
        try:
            return bool(_isolated().call("parses_whole_here", [latex], ANSWER_LIMIT_S))
        except Exception:  # Overran, or the child failed
            return False
    return parses_whole_here(latex)


def parses_whole_here(latex: str) -> bool:
    """`_parses_whole` in this process (main thread: bounded by math-verify's signal timeout)."""
    from latex2sympy2_extended import latex2sympy
    from math_verify.errors import TimeoutException
    from math_verify.utils import timeout

    try:
        timeout(timeout_seconds=TIMEOUT_S)(latex2sympy)(latex)
    except (Exception, TimeoutException):
        return False
    return True


def grade_integer(answer: str | None, gold: str) -> Grade:
    """AIME-style: compare as integers ("007" == "7"); a non-integer answer falls back to math-verify."""
    gold_value = parse_int(gold)
    if gold_value is None:
        return Grade(answer, None, error=f"gold {gold!r} is not an integer")
    if answer is None:
        return Grade(None, False)
    value = parse_int(answer)
    if value is None:  # `\text{204}`, `204^\circ`...; never strip characters to force a number
        return grade_math(answer, str(gold_value))
    return Grade(answer, value == gold_value, key=str(value))


def grade_math(answer: str | None, gold: str) -> Grade:
    """math-verify equivalence: parse gold as `$gold$`, answer as `\\boxed{answer}`; verify(gold, pred)."""
    if answer is None:
        return Grade(None, False)
    if len(answer) > MAX_ANSWER_CHARS:
        return Grade(answer, None, error=f"answer longer than {MAX_ANSWER_CHARS} characters; not graded")
    if not _on_main_thread():  # no signal timeout here: grade in the child process, which can be killed
        try:
            correct, error, key = _isolated().call("math_outcome", [answer, gold], ANSWER_LIMIT_S)
        except Exception as exc:  # Overran, or the child failed
            return Grade(answer, None, error=f"math-verify {type(exc).__name__}: {exc}"[:300])
        return Grade(answer, correct, error=error, key=key)
    return _grade_math_here(answer, gold)


def math_outcome(answer: str, gold: str) -> list[Any]:
    """[correct, error, key] of `grade_math` in this process: what the grading child sends back."""
    grade = _grade_math_here(answer, gold)
    return [grade.correct, grade.error, grade.key]


def _grade_math_here(answer: str, gold: str) -> Grade:
    from math_verify.errors import TimeoutException

    try:
        return _verify(answer, gold)
    except (Exception, TimeoutException) as exc:  # TimeoutException is a BaseException
        message = str(exc).splitlines()[0] if str(exc) else ""
        return Grade(answer, None, error=f"math-verify {type(exc).__name__}: {message}"[:300])


def _verify(answer: str, gold: str) -> Grade:
    from math_verify import parse, verify

    timeout = _timeout_s()
    gold_parsed = list(_parse_gold(gold, timeout))
    if not gold_parsed:
        return Grade(answer, None, error=f"math-verify could not parse the gold {gold!r}")
    pred = parse("\\boxed{" + answer + "}", _extraction_config(), parsing_timeout=timeout, raise_on_error=True)
    correct = bool(verify(gold_parsed, pred, timeout_seconds=timeout, raise_on_error=True))
    return Grade(answer, correct, key=math_key(pred, answer))


def math_key(parsed: Sequence[Any], answer: str) -> str:
    """What an answer votes for: the expression math-verify parsed (`\\frac{1}{2}`, `1/2` and `\\dfrac12` are one
    `1/2`), or the answer's text with its spaces removed when it parsed to nothing."""
    return str(parsed[0]) if parsed else "".join(answer.split())


@lru_cache(maxsize=4096)
def _parse_gold(gold: str, timeout: int | None) -> tuple[Any, ...]:
    """Golds repeat across seeds and budgets: parse each once."""
    from math_verify import parse

    return tuple(parse(f"${gold}$", _extraction_config(), parsing_timeout=timeout, raise_on_error=True))


def _timeout_s() -> int | None:
    """math-verify's signal-based timeout raises off the main thread; there, run without one."""
    return TIMEOUT_S if _on_main_thread() else None


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@lru_cache(maxsize=1)
def _isolated() -> IsolatedGrader:
    """The grading child of this process, started on first use off the main thread."""
    return IsolatedGrader()


@lru_cache(maxsize=1)
def _extraction_config() -> tuple[Any, ...]:
    """Frozen configs built once (hashable, so math-verify's regex cache hits)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    return (LatexExtractionConfig(), ExprExtractionConfig())


def grade_choice(answer: str | None, gold_letter: str, n_choices: int) -> Grade:
    """One letter, as `A`, `(A)`, `A)`, `A.`, `\\text{A}`, `\\textbf{A}`, `\\mathrm{A}`, any case.

    A letter outside the options is wrong; a gold outside them is a grading error.
    """
    gold = canonical_letter(gold_letter)
    if gold is None or ord(gold) - ord("A") >= n_choices:
        return Grade(answer, None, error=f"gold {gold_letter!r} is not one of {n_choices} option letters")
    if answer is None:
        return Grade(None, False)
    letter = canonical_letter(answer)
    in_options = letter is not None and ord(letter) - ord("A") < n_choices
    return Grade(answer, in_options and letter == gold, key=letter if in_options else "".join(answer.split()))



def join_golds(problem_ids: Sequence[str], problems: Sequence[Problem]) -> list[Problem]:
    """The problems for `problem_ids`, joined by id (never by position); an unknown id raises TaskError."""
    by_id = _index_by_id(problems)
    missing = next((pid for pid in problem_ids if pid not in by_id), None)
    if missing is not None:
        raise TaskError(f"Unknown problem id '{missing}': it is not in the dataset ({len(by_id)} problems).")
    return [by_id[pid] for pid in problem_ids]


def check_golds(rows: Iterable[Mapping[str, Any]], problems: Sequence[Problem], task: Task) -> None:
    """Raise TaskError naming the first row whose `gold` is not what its `problem_id` (and `seed`) says.

    This catches the original study's bug: golds looked up by position in a batch, not by problem id.
    """
    by_id = _index_by_id(problems)
    expected: dict[tuple[str, int], str] = {}
    for n, row in enumerate(rows):
        pid, seed = str(row["problem_id"]), _row_seed(row, task, n)
        if pid not in by_id:
            raise TaskError(f"Row {n}: unknown problem id '{pid}'.")
        if (pid, seed) not in expected:
            expected[(pid, seed)] = task.prompt(by_id[pid], seed).gold
        if str(row["gold"]) != expected[(pid, seed)]:
            raise TaskError(
                f"Row {n}: problem '{pid}' (seed {seed}) has gold {str(row['gold'])!r} but the dataset says "
                f"{expected[(pid, seed)]!r}: golds must be joined by problem id, not by position."
            )


def _row_seed(row: Mapping[str, Any], task: Task, n: int) -> int:
    """Choice tasks shuffle options per seed, so their rows must carry one; other golds ignore it."""
    if row.get("seed") is not None:
        return int(row["seed"])
    if task.answer_format == "choice":
        pid = row["problem_id"]
        raise TaskError(f"Row {n}: problem '{pid}' has no seed; a choice task's gold letter needs it.")
    return 0


def _index_by_id(problems: Sequence[Problem]) -> dict[str, Problem]:
    by_id = {p.id: p for p in problems}
    if len(by_id) != len(problems):
        raise TaskError("Problem ids are not unique; give each problem a distinct id.")
    return by_id
