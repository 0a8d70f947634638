"""Bad dataset rows: what is wrong with each, counted per kind, then refused or skipped as the sweep file says."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from ttscale.errors import TaskError, TtscaleWarning

BadRowPolicy = Literal["refuse", "skip"]
BAD_ROW_POLICIES: tuple[str, ...] = ("refuse", "skip")

# Every kind of bad row, in the order reports list them, with how a line names it.
KINDS: dict[str, str] = {
    "invalid_utf8": "invalid UTF-8",
    "invalid_json": "invalid JSON",
    "empty_question": "empty question",
    "bad_gold": "missing or unparsable gold",
    "bad_options": "bad options",
    "duplicate_id": "duplicate id",
}


class RowProblem(ValueError):
    """Raised while reading one row: it is bad in the way `kind` names, and the rest of the file is fine."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


@dataclass(frozen=True)
class BadRow:
    """One row left out: which kind of bad, where (`line 3` of a JSONL file, else `row 2`), and why."""

    kind: str
    where: str
    detail: str
    index: int  # position among the source's rows, for ordering


@dataclass(frozen=True)
class RowReport:
    """What validating a dataset's rows found: the rows read and the bad ones, in row order."""

    source: str
    rows: int
    bad: tuple[BadRow, ...] = field(default=())

    @property
    def counts(self) -> dict[str, int]:
        """Bad rows per kind (only kinds that occur), e.g. {"empty_question": 2, "duplicate_id": 1}."""
        found = Counter(b.kind for b in self.bad)
        return {kind: found[kind] for kind in KINDS if found[kind]}

    def summary(self) -> str:
        """`3 bad rows of 50 (2 empty question, 1 duplicate id); the first, line 4: ...`."""
        per_kind = ", ".join(f"{n} {KINDS[kind]}" for kind, n in self.counts.items())
        first = min(self.bad, key=lambda b: b.index)
        rows = "row" if len(self.bad) == 1 else "rows"
        return f"{len(self.bad)} bad {rows} of {self.rows} ({per_kind}); the first, {first.where}: {first.detail}"


def apply_policy(report: RowReport, policy: BadRowPolicy) -> None:
    """Refuse a dataset with bad rows (one line naming it, the counts and the first), or warn that they were
    dropped (`skip`)."""
    if not report.bad:
        return
    if policy == "skip":
        warnings.warn(f"{report.source}: skipped {report.summary()}.", TtscaleWarning, stacklevel=3)
        return
    raise TaskError(
        f"{report.source} has {report.summary()}. Fix the file, or drop such rows with `bad_rows: skip` on this "
        'dataset in the sweep file (bad_rows="skip" in get_task).'
    )


def check_policy(policy: str) -> BadRowPolicy:
    """`policy` if it is refuse or skip; anything else raises one line."""
    if policy not in BAD_ROW_POLICIES:
        raise TaskError(f"Got bad_rows={policy!r}: use one of {', '.join(BAD_ROW_POLICIES)}.")
    return policy  # type: ignore[return-value]


def has_surrogates(text: str) -> bool:
    """A lone surrogate (JSON's `\\ud800` escape) is not encodable as UTF-8: the row is invalid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
