"""The data every task shares: problems, per-seed prompts, grades and the Task protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ttscale.tasks.solution_sets import SolutionSet

AnswerFormat = Literal["integer", "math", "choice"]


@dataclass(frozen=True)
class Problem:
    """One dataset item, keyed by a stable id; `gold` is the answer text (choice tasks: the right option)."""

    id: str
    question: str
    gold: str
    choices: tuple[str, ...] | None = None  # choice tasks: source order; gold = choices[gold_index]
    gold_index: int | None = None
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptedProblem:
    """A problem as shown to the model for one seed: the user message and the gold in that rendering."""

    problem_id: str
    seed: int
    user_message: str
    gold: str  # what a correct answer looks like in this rendering (the gold letter after the shuffle)
    choice_order: tuple[int, ...] | None = None  # choice_order[k]: source index of option shown as letter k


@dataclass(frozen=True)
class Grade:
    """The outcome of grading one extracted answer against one gold."""

    answer: str | None  # the extracted answer (None when nothing could be extracted)
    correct: bool | None  # None when grading itself failed
    unclosed: bool = False  # the model never closed the forced \boxed{
    error: str | None = None  # why grading failed, or None
    key: str | None = None  # the answer after the grader's normalisation: equivalent answers share it (maj@k votes)


def vote_key(grade: Grade, choice_order: Sequence[int] | None) -> str | None:
    """What a row's answer votes for in maj@k: the grader's normalised answer, and for shuffled options the option
    itself (`#2`: source option 2), since one letter names a different option under each seed's shuffle. None when
    the answer is no vote: nothing written, unfinished (graded incorrect), or not graded."""
    if grade.key is None or grade.correct is None:
        return None
    if choice_order is not None and len(grade.key) == 1 and 0 <= ord(grade.key) - ord("A") < len(choice_order):
        return f"#{choice_order[ord(grade.key) - ord('A')]}"
    return grade.key

class Task(Protocol):
    """A dataset definition: how to load it, prompt it, grade it and which solution set it has."""

    name: str
    version: int
    answer_format: AnswerFormat

    def load(self, limit: int | None = None) -> Sequence[Problem]: ...

    def prompt(self, problem: Problem, seed: int) -> PromptedProblem: ...

    def grade(self, generated: str, gold: str) -> Grade: ...

    def solution_set(self, problem: Problem) -> SolutionSet | None: ...

    def identity(self) -> dict[str, Any]: ...  # what changes results; the caller hashes it into cell ids
