"""The original study's launch command lines, and the shell scripts holding them, read as original configs.

The original's studies were launched as `python3 main.py --key value ... --flag` (its YAML keys as flags, a bare
flag meaning true), often from run scripts that set shell variables first and pass them on:

    start_token_budget=7
    python3 main.py --model_name deepseek-ai/DeepSeek-R1-Distill-Qwen-32B \\
        --start_token_budget $start_token_budget --quantization 8 --SAVE_BOOL

`read_commands` turns such text into one mapping of original keys per `main.py` command, expanding the script's
own simple assignments (`name=value`, `export name=value`) and refusing in one line anything it cannot resolve
without running the script: a variable the script does not set, command substitution, arithmetic, loops and
conditionals around a command. Pure Python: no shell is ever run.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

import yaml

from ttscale.errors import ConfigError

ENTRY_POINT = "main.py"  # the original's script: a line running it is a command
_ASSIGNMENT = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_UNRESOLVABLE = (("$(", "command substitution"), ("`", "command substitution"), ("$((", "arithmetic"),
                 ("${", "a parameter expansion"))  # fmt: skip
_CONTROL = {"for", "while", "until", "if", "case", "select", "function"}
_RANGE = re.compile(r"[\[(]\s*(-?\d+)\s*,\s*(-?\d+)\s*[\])]")


@dataclass(frozen=True)
class Command:
    """One `main.py` command of a script: where it starts, and its flags as original config keys."""

    line: int  # 1-based line of the script where the command starts
    config: dict[str, Any]


def is_command_text(text: str) -> bool:
    """Whether `text` (a file's contents or an argument) holds a `main.py` command rather than a YAML config."""
    return any(ENTRY_POINT in line and not line.lstrip().startswith("#") for line in text.splitlines())


def read_commands(text: str, source: str) -> list[Command]:
    """Every `main.py` command of a script or command line, its variables expanded and its flags typed; one-line
    ConfigError naming `source`, the line and the fix for anything that cannot be read without running it."""
    variables: dict[str, str] = {}
    commands, control = [], None
    for number, line in _logical_lines(text):
        first = line.split()[0]
        if first in _CONTROL:
            control = (number, first)
            continue
        assignment = _ASSIGNMENT.fullmatch(line) if ENTRY_POINT not in line else None
        if assignment:
            name, value = assignment.groups()
            variables[name] = _word(_expand(value, variables, source, number), source, number, name)
        elif ENTRY_POINT in line:
            if control is not None:
                raise ConfigError(
                    f"{source}, line {control[0]}: `{control[1]}` decides how often or whether the commands after it "
                    "run, which only running the script tells. Write each command out, one per line."
                )
            commands.append(Command(number, _flags(_expand(line, variables, source, number), source, number)))
    if not commands:
        raise ConfigError(
            f"{source} holds no `python {ENTRY_POINT} ...` command. Give the original study's command line, a run "
            "script holding one, or its YAML config."
        )
    return commands


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each logical line: continuations (a trailing backslash) joined, comments and
    blank lines dropped (a commented-out command stays out)."""
    out, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        stripped = raw.strip()
        if stripped.startswith("#") and not pending:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        out.append((start, _drop_comment(pending + stripped)))
        pending = ""
    if pending:
        out.append((start, _drop_comment(pending)))
    return [(n, line.strip()) for n, line in out if line.strip()]


def _drop_comment(line: str) -> str:
    """The line without a trailing `# comment`: a # outside quotes at the start of a word."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _expand(text: str, variables: dict[str, str], source: str, number: int) -> str:
    """`text` with every `$name` and `${name}` the script set replaced; anything else that needs a shell refused."""
    for marker, what in _UNRESOLVABLE:
        stripped = _VARIABLE.sub("", text) if marker == "${" else text
        if marker in stripped:
            raise ConfigError(
                f"{source}, line {number}: {what} (`{marker}`) needs the script to run. Write the value itself."
            )

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise ConfigError(
                f"{source}, line {number}: `${name}` is not set by the script before this line. Set it (`{name}=...`)"
                " or write the value itself."
            )
        return shlex.quote(variables[name])

    return _VARIABLE.sub(value, text)


def _word(value: str, source: str, number: int, name: str) -> str:
    """A variable's value: one shell word (quotes removed), or refused."""
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ConfigError(f"{source}, line {number}: `{name}=`: {exc}. Close the quotes.") from None
    if len(words) > 1:
        raise ConfigError(
            f"{source}, line {number}: `{name}={value}` runs a command with a variable set, or sets several "
            "words: give it one value, quoted if it has spaces."
        )
    return words[0] if words else ""


def _flags(line: str, source: str, number: int) -> dict[str, Any]:
    """The `--key value` and bare `--flag` arguments after main.py, as original config keys with typed values."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise ConfigError(f"{source}, line {number}: {exc}. Close the quotes.") from None
    at = next(i for i, w in enumerate(words) if w.endswith(ENTRY_POINT))
    config: dict[str, Any] = {}
    i, args = at + 1, words[at + 1 :]
    while i < len(words):
        word = words[i]
        if not word.startswith("--") or len(word) == 2:
            raise ConfigError(
                f"{source}, line {number}: `{word}` is not a `--key value` argument of {ENTRY_POINT} "
                f"({' '.join(args)[:120]}). Give each setting as --key value, or a bare --flag for true."
            )
        key, _, inline = word[2:].partition("=")
        if inline:
            config[key], i = _typed(key, inline), i + 1
        elif i + 1 < len(words) and not words[i + 1].startswith("--"):
            config[key], i = _typed(key, words[i + 1]), i + 2
        else:
            config[key], i = True, i + 1
    return config


def _typed(key: str, value: str) -> Any:
    """A flag's value as the original's YAML would have it: numbers, booleans and None typed, a range
    `(130,198)` as a pair, anything else a string."""
    if value.strip() in ("None", "none", "null"):  # the original's conf.py read the string None as null
        return None
    if key == "sample_idxs_range":
        match = _RANGE.fullmatch(value.strip())
        if match:
            return [int(match.group(1)), int(match.group(2))]
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (int, float, bool)) or parsed is None else value
