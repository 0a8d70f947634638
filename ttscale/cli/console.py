"""Where the command line writes: its consoles, one-line errors and warnings, progress bars and shared tables."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ttscale.errors import TtscaleWarning

# Piped output (CI logs, files) gets 120 columns instead of rich's 80, so tables keep their names.
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


def fail(message: str) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(1)


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """ttscale's own warnings, printed as one yellow line each when the block ends; others are shown as usual."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TtscaleWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, TtscaleWarning):
            err_console.print(f"[yellow]warning:[/] {warning.message}", soft_wrap=True, highlight=False)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


def progress_bar(rows: bool = False) -> Progress:
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn()]
    if rows:
        columns.append(TextColumn("{task.fields[detail]}"))
    columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(*columns, console=err_console, transient=not rows, refresh_per_second=2)


def si(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(int(n))


def print_summary(summary) -> None:
    table = Table(title="accuracy and p_correct per budget")
    for col in ("model", "dataset", "budget", "problems", "accuracy", "p_correct", "thinking_tokens"):
        table.add_column(col, justify="right" if col not in ("model", "dataset") else "left")
    for row in summary.itertuples(index=False):
        p = "-" if row.p_correct != row.p_correct else f"{row.p_correct:.3f}"  # NaN: no solution set
        table.add_row(
            row.model, row.dataset, str(row.budget), str(row.problems), f"{row.accuracy:.3f}", p,
            f"{row.thinking_tokens:.1f}",
        )  # fmt: skip
    console.print(table)
