"""demo-mc: 200 four-option multiple-choice questions about small numbers, made by code for CPU demos.

Card:
- source: generated here, deterministically (no network); ids "mc-000".."mc-199"
- kinds (cycled): the largest of four numbers, the smallest, the one prime, the one even number, and a
  sum with three near-miss distractors; all numbers are below 200
- answer format: one letter; options are shuffled per (problem id, seed) at prompt time.
- solution set: `letters-4`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import lru_cache

from ttscale.tasks._rng import draw, seeded_rng
from ttscale.tasks.base import Problem
from ttscale.tasks.solution_sets import letters
from ttscale.tasks.spec import TaskSpec

VERSION = 1
N_PROBLEMS = 200
N_OPTIONS = 4


def _is_prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))


def _distinct(rng: random.Random, lo: int, hi: int, k: int, keep: Callable[[int], bool]) -> list[int]:
    """k distinct integers in [lo, hi] satisfying `keep`."""
    out: list[int] = []
    while len(out) < k:
        value = draw(rng, lo, hi)
        if keep(value) and value not in out:
            out.append(value)
    return out


def _largest(rng: random.Random) -> tuple[str, int, list[int]]:
    values = _distinct(rng, 10, 99, N_OPTIONS, lambda v: True)
    return "Which of these numbers is the largest?", max(values), values


def _smallest(rng: random.Random) -> tuple[str, int, list[int]]:
    values = _distinct(rng, 10, 99, N_OPTIONS, lambda v: True)
    return "Which of these numbers is the smallest?", min(values), values


def _prime(rng: random.Random) -> tuple[str, int, list[int]]:
    gold = _distinct(rng, 2, 97, 1, _is_prime)[0]
    others = _distinct(rng, 4, 99, N_OPTIONS - 1, lambda v: not _is_prime(v))
    return "Which of these numbers is a prime?", gold, [gold, *others]


def _even(rng: random.Random) -> tuple[str, int, list[int]]:
    gold = _distinct(rng, 2, 98, 1, lambda v: v % 2 == 0)[0]
    others = _distinct(rng, 1, 99, N_OPTIONS - 1, lambda v: v % 2 == 1)
    return "Which of these numbers is even?", gold, [gold, *others]


def _sum(rng: random.Random) -> tuple[str, int, list[int]]:
    a, b = draw(rng, 2, 89), draw(rng, 2, 89)
    gold = a + b
    others = _distinct(rng, gold - 10, gold + 10, N_OPTIONS - 1, lambda v: v != gold and v > 0)
    return f"What is {a} + {b}?", gold, [gold, *others]


KINDS = (_largest, _smallest, _prime, _even, _sum)


@lru_cache(maxsize=1)
def generate() -> tuple[Problem, ...]:
    """The 200 questions; the source option order is itself random, so gold_index is not always 0."""
    rng = seeded_rng("demo-mc")
    problems = []
    for i in range(N_PROBLEMS):
        kind = KINDS[i % len(KINDS)]
        question, gold, values = kind(rng)
        values = sorted(values, key=lambda _: rng.random())
        choices = tuple(str(v) for v in values)
        meta = {"kind": kind.__name__.lstrip("_")}
        problems.append(Problem(f"mc-{i:03d}", question, str(gold), choices, values.index(gold), meta))
    return tuple(problems)


SPEC = TaskSpec(
    name="demo-mc",
    version=VERSION,
    answer_format="choice",
    solutions=letters(N_OPTIONS),
    generate=generate,
)
