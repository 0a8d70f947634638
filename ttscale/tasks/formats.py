"""Row layouts: recognise a dataset's columns and turn rows into uniquely keyed Problems."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ttscale.errors import TaskError
from ttscale.tasks.base import Problem
from ttscale.tasks.sources import RowTable, UnreadableRow
from ttscale.tasks.validation import BadRow, RowProblem, has_surrogates

COLUMN_KEYS = ("question", "answer", "choices", "id")
ID_COLUMNS = ("id", "unique_id", "idx", "Record ID")  # the first one present names each problem
GPQA_CHOICES = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_META_MAX_CHARS = 200  # short scalar columns (subject, level, url) ride along as Problem.meta


@dataclass(frozen=True)
class Layout:
    """Which columns hold a row's question, gold, options and id."""

    name: str
    question: str
    answer: str | None  # None: the first of `choices` is the right one (GPQA)
    choices: tuple[str, ...] = ()  # one column holding a list, or one column per option
    id: str | None = None
    gsm8k: bool = False  # the gold is the text after "#### " in a worked solution

    @property
    def columns(self) -> tuple[str, ...]:
        used = (self.question, self.answer, *self.choices, self.id)
        return tuple(c for c in used if c is not None)


# Recognised without a column map, tried in order: the first whose columns a file has wins.
KNOWN_LAYOUTS: tuple[Layout, ...] = (
    Layout("gpqa", "Question", None, GPQA_CHOICES),
    Layout("choice", "question", "answer", ("choices",)),
    Layout("math", "problem", "answer"),
    Layout("gsm8k", "question", "answer", gsm8k=True),
)


def layout_for(columns: Collection[str], column_map: Mapping[str, str] | None, source: str) -> Layout:
    """The layout of a table with `columns`: `column_map` if given, else the first known one that fits."""
    if column_map is not None:
        return _mapped_layout(columns, column_map, source)
    for layout in KNOWN_LAYOUTS:
        if set(layout.columns) <= set(columns):
            return replace(layout, id=next((c for c in ID_COLUMNS if c in columns), None))
    raise TaskError(
        f"Cannot tell which columns of {source} hold the question and answer; found {sorted(columns)}. "
        'Pass columns={"question": ..., "answer": ..., "choices": ..., "id": ...} (choices and id optional).'
    )


def _mapped_layout(columns: Collection[str], column_map: Mapping[str, str], source: str) -> Layout:
    unknown = sorted(set(column_map) - set(COLUMN_KEYS))
    if unknown or not {"question", "answer"} <= set(column_map):
        raise TaskError(
            f"Got columns={dict(column_map)} for {source}: the map needs 'question' and 'answer' and may add "
            f"'choices' and 'id'{'; unknown keys ' + str(unknown) if unknown else ''}."
        )
    missing = sorted(set(column_map.values()) - set(columns))
    if missing:
        raise TaskError(f"Columns {missing} named in columns= are not in {source}; found {sorted(columns)}.")
    choices = (column_map["choices"],) if "choices" in column_map else ()
    return Layout("columns", column_map["question"], column_map["answer"], choices, column_map.get("id"))


def rows_to_problems(
    table: RowTable, layout: Layout, source: str, check_gold: Callable[[str], str | None] = lambda gold: None
) -> tuple[list[Problem], list[BadRow]]:
    """Problems in row order, with ids from the id column or derived from the content, and the bad rows left
    out: undecodable, an empty question, a missing gold or one `check_gold` says why it cannot grade, bad
    options, an id already used by an earlier row."""
    problems, wheres, bad = [], [], []
    for n, row in enumerate(table.rows):
        try:
            if isinstance(row, UnreadableRow):
                raise RowProblem(row.kind, row.detail)
            problems.append(_problem(row, layout, check_gold))
            wheres.append((n, table.where(n)))
        except RowProblem as exc:
            bad.append(BadRow(exc.kind, table.where(n), exc.detail, n))
    kept, duplicates = _drop_duplicate_ids(_derive_missing_ids(problems), wheres)
    return kept, sorted(bad + duplicates, key=lambda b: b.index)


def _problem(row: Mapping[str, Any], layout: Layout, check_gold: Callable[[str], str | None]) -> Problem:
    """One row as a Problem; a bad row raises RowProblem naming its kind."""
    question = _text(row.get(layout.question), f"column '{layout.question}'", "empty_question")
    raw_id = _id_text(row.get(layout.id) if layout.id else None)
    meta = _meta(row, layout)
    if not layout.choices:
        gold = _text(row.get(layout.answer or ""), f"column '{layout.answer}'", "bad_gold")
        gold = gsm8k_gold(gold) if layout.gsm8k else gold
        if not gold:
            raise RowProblem("bad_gold", f"column '{layout.answer}' has no number after '####'")
        if (why := check_gold(gold)) is not None:
            raise RowProblem("bad_gold", why)
        return Problem(raw_id, question, gold, meta=meta)
    choices = _choices(row, layout)
    try:
        index = 0 if layout.answer is None else choice_index(row.get(layout.answer), choices, "the row")
    except TaskError as exc:
        raise RowProblem("bad_gold", str(exc).removeprefix("the row: ").rstrip(".")) from None
    return Problem(raw_id, question, choices[index], choices, index, meta)


def _choices(row: Mapping[str, Any], layout: Layout) -> tuple[str, ...]:
    if len(layout.choices) == 1:
        value = row.get(layout.choices[0])
        values = value.tolist() if hasattr(value, "tolist") else value  # parquet list cells: numpy arrays
        if not isinstance(values, list | tuple):
            column = layout.choices[0]
            raise RowProblem("bad_options", f"column '{column}' must hold a list of options, got {value!r:.80}")
    else:
        values = [row.get(c) for c in layout.choices]
    choices = tuple(_text(v, "an option", "bad_options") for v in values)
    if len(choices) < 2:
        raise RowProblem("bad_options", f"a choice question needs at least 2 options, got {len(choices)}")
    return choices


def choice_index(value: Any, choices: Sequence[str], where: str) -> int:
    """The gold option's index from an index (0-based int or digit string), a letter, or the option's text."""
    text = str(value).strip() if value is not None else ""
    if isinstance(value, int) and not isinstance(value, bool):
        index = value
    elif text.isdigit():
        index = int(text)
    elif len(text) == 1 and text.isalpha():
        index = ord(text.upper()) - ord("A")
    elif text in choices:
        index = choices.index(text)
    else:
        index = -1
    if not 0 <= index < len(choices):
        top = len(choices) - 1
        raise TaskError(f"{where}: answer {value!r} is not an option index 0-{top}, a letter or an option.")
    return index


def gsm8k_gold(answer: str) -> str:
    """The number after GSM8K's "#### " ("#### 1,234" -> "1234"); separators go from golds only."""
    gold = answer.rsplit("####", 1)[-1].strip()
    return gold.replace(",", "") if _THOUSANDS.fullmatch(gold) else gold


def content_id(question: str, choices: Sequence[str] | None) -> str:
    """A stable id for a row without one: the first 12 hex of sha256 over the question (and options)."""
    content = {"question": question, "choices": list(choices or ())}
    payload = json.dumps(content, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _derive_missing_ids(problems: list[Problem]) -> list[Problem]:
    """Rows without an id get a content id; an exact repeat of a row gets "-2", "-3"... in row order."""
    seen: dict[str, int] = {}
    out = []
    for p in problems:
        if p.id:
            out.append(p)
            continue
        base = content_id(p.question, p.choices)
        seen[base] = seen.get(base, 0) + 1
        new_id = base if seen[base] == 1 else f"{base}-{seen[base]}"
        out.append(Problem(new_id, p.question, p.gold, p.choices, p.gold_index, p.meta))
    return out


def unique_ids(problems: list[Problem], source: str) -> list[Problem]:
    """Return `problems` unchanged if their ids are distinct; otherwise raise naming the first repeated id."""
    first_row: dict[str, int] = {}
    for n, p in enumerate(problems):
        if p.id in first_row:
            raise TaskError(
                f"Duplicate problem id '{p.id}' in {source} (rows {first_row[p.id]} and {n}); "
                "problem ids must be unique: fix the id column or pass columns= with another id column."
            )
        first_row[p.id] = n
    return problems


def _drop_duplicate_ids(problems: list[Problem], wheres: list[tuple[int, str]]) -> tuple[list[Problem], list[BadRow]]:
    """The first row with each id is kept; a later row with the same id is a bad row naming the first."""
    first: dict[str, str] = {}
    kept, bad = [], []
    for p, (n, where) in zip(problems, wheres, strict=True):
        if p.id in first:
            bad.append(BadRow("duplicate_id", where, f"duplicate problem id '{p.id:.80}' (first on {first[p.id]})", n))
            continue
        first[p.id] = where
        kept.append(p)
    return kept, bad


def _text(value: Any, what: str, kind: str) -> str:
    """A cell as stripped text; empty raises RowProblem of `kind`, a lone surrogate is invalid UTF-8."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise RowProblem(kind, f"{what} is {'missing' if value is None else 'empty'}")
    if has_surrogates(text):
        raise RowProblem("invalid_utf8", f"{what} holds a lone surrogate (not valid UTF-8)")
    return text


def _id_text(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    if has_surrogates(text):
        raise RowProblem("invalid_utf8", "the id holds a lone surrogate (not valid UTF-8)")
    return text


def _meta(row: Mapping[str, Any], layout: Layout) -> dict[str, str]:
    used = set(layout.columns)
    return {
        k: str(v)
        for k, v in row.items()
        if k not in used
        and isinstance(v, str | int | float)
        and len(str(v)) <= _META_MAX_CHARS
        and not has_surrogates(str(v))
    }
