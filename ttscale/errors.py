"""User-facing errors: one line that names the thing, the rule and the fix."""

from __future__ import annotations


class TtscaleError(Exception):
    """An error caused by the user's input or environment, shown as one line without a traceback."""


class ConfigError(TtscaleError):
    """A sweep file, option or argument is invalid."""


class ModelError(TtscaleError):
    """A model cannot be resolved or loaded."""


class TaskError(TtscaleError):
    """A dataset cannot be found, loaded or understood."""


class TtscaleWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints it as one line)."""
