"""demo-arith: 200 short arithmetic word problems made by code, for CPU demos with a 135M model.

Card:
- source: generated here, deterministically (no network); ids "arith-000".."arith-199"
- templates: addition, subtraction, multiplication and exact division, one sentence each; every answer
  is an integer from 0 to 99, so that scoring the whole solution set stays cheap on a laptop CPU
- answer format: an integer; the prompt asks for a whole number in \\boxed{}, and the solution set is the
  plain decimal strings `0`..`99` (`int-0-99`).
"""

from __future__ import annotations

import random
from functools import lru_cache

from ttscale.tasks._rng import draw, seeded_rng
from ttscale.tasks.base import Problem
from ttscale.tasks.solution_sets import integers
from ttscale.tasks.spec import TaskSpec

VERSION = 2  # 2: answers within 0..99 (was 0..999)
N_PROBLEMS = 200
NAMES = ("Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana")

# (operator, question template); {n} is a name, {a} and {b} the operands
TEMPLATES = (
    ("+", "{n} has {a} apples and buys {b} more. How many apples does {n} have now?"),
    ("-", "{n} had {a} stickers and gave away {b}. How many stickers are left?"),
    ("*", "A box holds {a} pencils. How many pencils are in {b} boxes?"),
    ("/", "{n} shares {a} sweets equally among {b} friends. How many sweets does each friend get?"),
    ("+", "What is {a} plus {b}?"),
    ("-", "What is {a} minus {b}?"),
)


def _operands(op: str, rng: random.Random) -> tuple[int, int, int]:
    """(a, b, answer) for one operator, with the answer in 0..99."""
    if op == "+":
        a, b = draw(rng, 2, 49), draw(rng, 2, 49)
        return a, b, a + b
    if op == "-":
        a = draw(rng, 10, 99)
        b = draw(rng, 1, a)
        return a, b, a - b
    if op == "*":
        a, b = draw(rng, 2, 9), draw(rng, 2, 11)
        return a, b, a * b
    b, k = draw(rng, 2, 9), draw(rng, 2, 11)
    return b * k, b, k


@lru_cache(maxsize=1)
def generate() -> tuple[Problem, ...]:
    """The 200 problems, cycling through the templates."""
    rng = seeded_rng("demo-arith")
    problems = []
    for i in range(N_PROBLEMS):
        op, template = TEMPLATES[i % len(TEMPLATES)]
        a, b, answer = _operands(op, rng)
        question = template.format(n=NAMES[draw(rng, 0, len(NAMES) - 1)], a=a, b=b)
        problems.append(Problem(f"arith-{i:03d}", question, str(answer), meta={"operation": op}))
    return tuple(problems)


SPEC = TaskSpec(
    name="demo-arith",
    version=VERSION,
    answer_format="integer",
    solutions=integers(0, 99),
    generate=generate,
)
