"""AIME 2024: the 30 problems of the 2024 AIME I and II exams.

Card:
- hub: `HuggingFaceH4/aime_2024` (default config), split `train`, 30 rows
- columns: `id` (int, 60-89), `problem`, `solution`, `answer` (integer as a string), `url`, `year`
- answer format: an integer 0-999; the prompt asks for three digits, and the solution set is the
  three-digit strings `000`..`999` (`int-000-999`); golds compare as integers ("073" == "73").
- local copy: `get_task("aime24", path="aime24.jsonl")` reads the same columns from a file.
"""

from __future__ import annotations

from ttscale.tasks.prompts import AIME_INSTRUCTION
from ttscale.tasks.solution_sets import integers
from ttscale.tasks.spec import TaskSpec

VERSION = 1

SPEC = TaskSpec(
    name="aime24",
    version=VERSION,
    answer_format="integer",
    hub_id="HuggingFaceH4/aime_2024",
    split="train",
    solutions=integers(0, 999, width=3),
    instruction=AIME_INSTRUCTION,
)
