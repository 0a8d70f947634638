"""Finite answer sets (METHOD.md §5): the strings a model may write inside `\\boxed{...}`, and lookup."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from ttscale.errors import TaskError

SetKind = Literal["letters", "integers", "declared"]

_INT_RE = re.compile(r"[+-]?\d+")
_LETTER_WRAPPERS = re.compile(r"^\\(?:text|textbf|textrm|texttt|textit|mathrm|mathbf|mathit)\s*\{(.*)\}$")
_LETTER_RE = re.compile(r"^\(?\s*([A-Za-z])\s*(?:\)|\.|:)?$")
_INT_NAME_RE = re.compile(r"^int-(\d{1,18})-(\d{1,18})$")
_LETTERS_NAME_RE = re.compile(r"^letters-(\d+)$")
MAX_LETTER_CHARS = 100  # a letter answer, however wrapped, is shorter than this
MAX_INTEGERS = 1_000_000  # candidates in an integer set: each is scored, so a bigger set is a typo


@dataclass(frozen=True)
class SolutionSet:
    """A finite, ordered answer set; `candidates[i]` is what follows `\\boxed{`, scored with its `}` after."""

    name: str  # e.g. "letters-4", "int-000-999", "int-0-999"
    candidates: tuple[str, ...]
    kind: SetKind = "declared"
    lo: int = 0  # integers: the value of candidates[0]
    width: int | None = None  # integers: zero-padded width, or None for plain decimal
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.kind == "declared":
            object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.candidates)})

    def __len__(self) -> int:
        return len(self.candidates)

    def index_of(self, answer: str | None) -> int | None:
        """Index of `answer` canonicalised the set's way (integers parsed, letters unwrapped), or None."""
        if answer is None:
            return None
        if self.kind == "integers":
            value = parse_int(answer)
            index = None if value is None else value - self.lo
            return index if index is not None and 0 <= index < len(self.candidates) else None
        if self.kind == "letters":
            letter = canonical_letter(answer)
            index = None if letter is None else ord(letter) - ord("A")
            return index if index is not None and index < len(self.candidates) else None
        return self._index.get(answer.strip())


MAX_INT_DIGITS = 1000  # longer digit strings are not answers (and Python refuses to parse past 4300 digits)


def parse_int(text: str) -> int | None:
    """The integer a plain decimal string denotes ("007" -> 7), or None; never strips other characters.

    More than MAX_INT_DIGITS digits is None: no gold is that long, and it is graded like any non-integer."""
    text = text.strip()
    return int(text) if len(text) <= MAX_INT_DIGITS + 1 and _INT_RE.fullmatch(text) else None


def canonical_letter(text: str) -> str | None:
    """The uppercase letter in `A`, `(A)`, `A)`, `A.`, `\\text{A}`, `\\textbf{(a)}`, `$A$`..., else None."""
    if len(text) > MAX_LETTER_CHARS:  # `\\textbf{(A)}` is 13 characters; a long text is no letter
        return None
    text = text.strip().strip("$").strip()
    while (match := _LETTER_WRAPPERS.match(text)) is not None:
        text = match.group(1).strip()
    text = text.strip("*").strip()
    match = _LETTER_RE.match(text)
    return match.group(1).upper() if match else None


@lru_cache(maxsize=32)
def letters(n: int) -> SolutionSet:
    """The first `n` capital letters, e.g. letters(4) = A, B, C, D named "letters-4"."""
    if not 1 <= n <= 26:
        raise TaskError(f"Got {n} options: a letter solution set needs 1 to 26 options.")
    return SolutionSet(f"letters-{n}", tuple(chr(ord("A") + i) for i in range(n)), kind="letters")


@lru_cache(maxsize=32)
def integers(lo: int, hi: int, width: int | None = None) -> SolutionSet:
    """The integers lo..hi as decimals, zero-padded to `width` if given: "int-000-999" or "int-0-999"."""
    if lo > hi or (width is not None and (lo < 0 or width < len(str(hi)))):
        raise TaskError(f"Got lo={lo}, hi={hi}, width={width}: need lo <= hi, lo >= 0 and hi fitting width.")
    if hi - lo + 1 > MAX_INTEGERS:
        raise TaskError(f"Got lo={lo}, hi={hi}: an integer solution set holds at most {MAX_INTEGERS} values.")
    fmt = "{:d}" if width is None else f"{{:0{width}d}}"
    candidates = tuple(fmt.format(v) for v in range(lo, hi + 1))
    name = f"int-{candidates[0]}-{candidates[-1]}"
    return SolutionSet(name, candidates, kind="integers", lo=lo, width=width)


def declared(name: str, values: tuple[str, ...] | list[str]) -> SolutionSet:
    """A dataset's own finite set; answers match a candidate after stripping whitespace only."""
    candidates = tuple(str(v).strip() for v in values)
    if not candidates or len(set(candidates)) != len(candidates) or "" in candidates:
        raise TaskError(f"Solution set '{name}' needs distinct, non-empty values; got {list(values)[:10]}.")
    return SolutionSet(name, candidates, kind="declared")


def solution_set_named(name: str) -> SolutionSet | None:
    """The set a name gives: "letters-N", "int-LO-HI" (zero padding in LO sets the width) or "none"."""
    if name == "none":
        return None
    if (match := _LETTERS_NAME_RE.match(name)) and len(match[1]) <= 3:
        return letters(int(match.group(1)))
    match = _INT_NAME_RE.match(name)
    if match and (solutions := integers(int(match[1]), int(match[2]), _width(match[1]))).name == name:
        return solutions
    raise TaskError(f"Unknown solution set '{name}'. Use letters-N, int-LO-HI (int-000-999) or none.")


def _width(lo: str) -> int | None:
    """Zero padding in a name's lower bound ("000") fixes the width; a bare "0" means plain decimals."""
    return len(lo) if len(lo) > 1 and lo.startswith("0") else None
