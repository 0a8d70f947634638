"""Fuzz case counts for docs/reliability.md: merged into the JSON file named by $TTSCALE_FUZZ_FIGURES, if set."""

from __future__ import annotations

import json
import os
from pathlib import Path


def record(key: str, cases: int) -> None:
    """Set `key` to `cases` in $TTSCALE_FUZZ_FIGURES (other keys are kept); nothing when the variable is unset."""
    target = os.environ.get("TTSCALE_FUZZ_FIGURES")
    if not target or not cases:
        return
    path = Path(target)
    try:
        figures = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        figures = {}
    figures = figures if isinstance(figures, dict) else {}
    figures[key] = cases
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
