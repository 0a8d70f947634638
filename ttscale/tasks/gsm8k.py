"""GSM8K: 1,319 grade-school math word problems (the test split).

Card:
- hub: `openai/gsm8k`, config `main`, split `test`
- columns: `question`, `answer` (a worked solution ending "#### 18"); the gold is the text after "#### ",
  with thousands separators dropped ("#### 1,234" -> "1234"). Rows have no id on the hub, so the id is
  the first 12 hex of sha256 over the question (local copies with an `idx` column use that instead).
- answer format: a number graded by math-verify equivalence; no solution set (discrete metrics only).
"""

from __future__ import annotations

from ttscale.tasks.spec import TaskSpec

VERSION = 1

SPEC = TaskSpec(
    name="gsm8k",
    version=VERSION,
    answer_format="math",
    hub_id="openai/gsm8k",
    config="main",
    split="test",
)
