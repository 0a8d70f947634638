"""Model families: how each reasoning model opens and closes its thinking, and the strings forcing injects."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

from ttscale.errors import ConfigError

FORCED_ANSWER_AFTER_THINK = "\n</think>\n\n**Final Answer**\n\\boxed{"
FORCED_ANSWER_NO_THINK = "\n\n**Final Answer**\n\\boxed{"


@dataclass(frozen=True)
class Family:
    """The per-family strings of METHOD.md §2–3; a sweep may override any field but `name` and `pattern`."""

    name: str
    pattern: str  # regex matched (case-insensitively) against the model name to infer the family
    think_start: str | None = "<think>\n"
    """Appended to the chat prompt unless the template already ends with it; None if the model has no marker."""
    think_end: str | None = "</think>"
    """The end-of-thinking marker; generation stops at it (when it is one token) or at EOS."""
    continuation: str = "\nWait"
    """Injected after an early stop under on_early_stop=continue (not counted toward the budget)."""
    forced_answer: str = FORCED_ANSWER_AFTER_THINK
    """Appended after the thinking prefix to force the answer; must end inside an open `\\boxed{`."""
    system_prompt: str | None = None
    """A system message, only where the family's model card asks for one."""

    def __post_init__(self) -> None:
        if not self.forced_answer.rstrip().endswith("\\boxed{"):
            raise ConfigError(
                f"Got {self.forced_answer!r} for family '{self.name}': forced_answer. It must end with "
                "'\\boxed{' so the answer can be extracted and scored. Fix the override."
            )
        if not self.continuation:
            raise ConfigError(f"Family '{self.name}': continuation must not be empty.")


OVERRIDABLE = tuple(f.name for f in fields(Family) if f.name not in {"name", "pattern"})

# Order matters: the first pattern that matches wins, so specific names come before generic ones.
FAMILIES: tuple[Family, ...] = (
    # DeepSeek-R1 card: no system prompt, all instructions in the user turn; newer templates open <think>.
    Family(name="deepseek-r1-distill", pattern=r"deepseek-r1"),
    Family(name="qwq", pattern=r"qwq"),
    # Phi-4-reasoning's card asks for its fixed "You are Phi..." system prompt; its template supplies it.
    Family(name="phi-4-reasoning", pattern=r"phi-4-(mini-)?reasoning"),
    # Qwen3's template leaves <think> for the model to write (enable_thinking): we open it ourselves.
    Family(name="qwen3", pattern=r"qwen3"),
    # SmolLM2 has no thinking markers: its whole reply is the "thinking", and EOS is the natural end.
    Family(
        name="smollm2",
        pattern=r"smollm2",
        think_start=None,
        think_end=None,
        forced_answer=FORCED_ANSWER_NO_THINK,
    ),
    Family(name="generic", pattern=r".*", think_start=None, think_end=None, forced_answer=FORCED_ANSWER_NO_THINK),
)


def get_family(name: str) -> Family:
    """The family called `name`; unknown names list the known ones."""
    for family in FAMILIES:
        if family.name == name:
            return family
    known = ", ".join(f.name for f in FAMILIES)
    raise ConfigError(f"Unknown model family '{name}'. Known: {known}.")


def infer_family(model_name: str) -> Family:
    """The first family whose pattern matches the model name (the generic fallback always matches)."""
    for family in FAMILIES:
        if re.search(family.pattern, model_name, flags=re.IGNORECASE):
            return family
    raise AssertionError("the generic family matches every name")


def resolve_family(
    model_name: str, family: str | None = None, overrides: dict[str, str | None] | None = None
) -> Family:
    """The family to use for a model: named or inferred, then with a sweep's overrides applied."""
    base = get_family(family) if family else infer_family(model_name)
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(OVERRIDABLE)
    if unknown:
        raise ConfigError(
            f"Unknown family override(s) {sorted(unknown)} for model '{model_name}'. "
            f"Overridable: {', '.join(OVERRIDABLE)}."
        )
    return replace(base, **overrides) if overrides else base
