"""Fault tests add what they injected and survived to a JSON file, for docs/reliability.md (`make soak`).

Set TTSCALE_RELIABILITY_FIGURES to a path to collect them; unset, recording does nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any


def record_fault(kind: str, **figures: Any) -> None:
    """Add `figures` (counts are summed, lists extended, other values replaced) under `kind`."""
    target = os.environ.get("TTSCALE_RELIABILITY_FIGURES")
    if not target:
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.is_file() else {}
        entry = data.setdefault(kind, {})
        for key, value in figures.items():
            if isinstance(value, bool) or not isinstance(value, int | float | list):
                entry[key] = value
            elif isinstance(value, list):
                entry[key] = entry.get(key, []) + value
            else:
                entry[key] = entry.get(key, 0) + value
        path.write_text(json.dumps(data, indent=2, sort_keys=True))
