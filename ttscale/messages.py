"""One-line messages: a value shown short, a message made one printable line, a rule said of one field."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(message: str) -> str:
    """`message` as one printable line: control characters and lone surrogates escaped."""
    message = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), message)
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def short_repr(value: Any, limit: int = 80) -> str:
    """repr(value) cut to `limit` characters (an int too long to print says how many digits it has)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # ints past Python's 4300-digit repr limit
        text = f"<{type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def said_of(message: str, where: str) -> str:
    """A validator's "Got X. Rule. Fix" said of one field: "Got X for <where>. Rule. Fix."."""
    first, *rest = message.split(". ")
    return f"{first} for {where}. {'. '.join(rest)}."
