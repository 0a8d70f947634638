"""User messages (METHOD.md §2): problem text plus format instruction; options shuffled per (id, seed)."""

from __future__ import annotations

import hashlib
import random

from ttscale.errors import TaskError
from ttscale.tasks.base import AnswerFormat, Problem, PromptedProblem

PROMPT_VERSION = 1  # bump when any template or instruction below changes: it is part of every task identity

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
AIME_INSTRUCTION = MATH_INSTRUCTION + " The answer is an integer from 000 to 999; write it with three digits, e.g. 042."
INTEGER_INSTRUCTION = "Please reason step by step, and put your final answer (a number) within \\boxed{}."
CHOICE_INSTRUCTION = "Please reason step by step, and put the letter of your final answer within \\boxed{}."

DEFAULT_INSTRUCTIONS: dict[AnswerFormat, str] = {
    "math": MATH_INSTRUCTION,
    "integer": INTEGER_INSTRUCTION,
    "choice": CHOICE_INSTRUCTION,
}


def option_order(problem_id: str, seed: int, n: int) -> tuple[int, ...]:
    """A permutation of range(n) fixed by (problem id, seed): order[k] = source index shown as letter k.

    The RNG is seeded from sha256, never Python's salted `hash()`, and the Fisher-Yates shuffle draws only
    `random()`, whose output Python guarantees across versions (unlike `shuffle`/`randrange`).
    """
    digest = hashlib.sha256(f"{problem_id}\x00{seed}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = int(rng.random() * (i + 1))
        order[i], order[j] = order[j], order[i]
    return tuple(order)


def letter(k: int) -> str:
    """The option letter at position k (0 -> "A")."""
    return chr(ord("A") + k)


def prompt_problem(problem: Problem, seed: int, instruction: str) -> PromptedProblem:
    """The user message and gold for one (problem, seed); choice problems get their options shuffled."""
    if problem.choices is None:
        message = f"{problem.question.strip()}\n\n{instruction}"
        return PromptedProblem(problem.id, seed, message, problem.gold)
    if problem.gold_index is None:
        raise TaskError(f"Problem '{problem.id}' has options but no gold_index; a choice problem needs both.")
    order = option_order(problem.id, seed, len(problem.choices))
    options = "\n".join(f"{letter(k)}) {problem.choices[src].strip()}" for k, src in enumerate(order))
    message = f"{problem.question.strip()}\n\n{options}\n\n{instruction}"
    gold = letter(order.index(problem.gold_index))
    return PromptedProblem(problem.id, seed, message, gold, choice_order=order)
