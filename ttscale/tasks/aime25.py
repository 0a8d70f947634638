"""AIME 2025: the 30 problems of the 2025 AIME I and II exams.

Card:
- hub: `math-ai/aime25` (default config), split `test`, 30 rows
- columns: `id`, `problem`, `answer` (integer). Uncertain: confirmed from public loaders that read
  `record["id"]`, `record["problem"]`, `record["answer"]` from split `test`, not from the dataset card
  itself; if the hub copy changes, pass a local file (`get_task("aime25", path=...)`).
- answer format: an integer 0-999 written with three digits; solution set `int-000-999`.
"""

from __future__ import annotations

from ttscale.tasks.prompts import AIME_INSTRUCTION
from ttscale.tasks.solution_sets import integers
from ttscale.tasks.spec import TaskSpec

VERSION = 1

SPEC = TaskSpec(
    name="aime25",
    version=VERSION,
    answer_format="integer",
    hub_id="math-ai/aime25",
    split="test",
    solutions=integers(0, 999, width=3),
    instruction=AIME_INSTRUCTION,
)
