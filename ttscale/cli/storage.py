"""`ttscale compact`: merge a results directory's small shards into few large ones, with a progress bar."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ttscale.cli.console import console, fail, progress_bar, warnings_as_lines
from ttscale.errors import TtscaleError

if TYPE_CHECKING:
    from ttscale.compaction import Progress

STEPS = {
    "read": "reading small {kind} shards", "staged": "writing compacted {kind}", "journal": "committing {kind}",
    "renamed": "committing {kind}", "unlinked": "removing merged {kind} shards", "cleared": "committing {kind}",
}  # fmt: skip


def compact(
    results_dir: Annotated[Path, typer.Argument(metavar="RESULTS_DIR", help="A results directory (a sweep's output).")],
) -> None:
    """Merge the small Parquet shards of a results directory into few large ones: safe while the directory is read
    (the explorer, status, analysis), refused while a sweep writes it. A sweep does this itself when its run ends
    with many small shards."""
    try:
        from ttscale.compaction import check_results_dir
        from ttscale.compaction import compact as compact_store
        from ttscale.store import ResultStore

        store = ResultStore(results_dir)
        check_results_dir(store)  # before the bar: a wrong path is one line and nothing else
        with warnings_as_lines(), _bar() as progress:
            done = compact_store(store, progress=progress)
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:  # a full disk, no permission: every row is still where it was
        raise fail(
            f"Cannot compact {results_dir}: {exc}. Every row is kept where it was; free space or fix the directory's "
            "permissions, then run the same command again."
        ) from None
    for result in done:
        console.print(result.line(), highlight=False)


@contextlib.contextmanager
def _bar() -> Iterator[Progress]:
    """A rich progress bar (on a terminal) fed by compaction's (kind, step, done, total) calls."""
    with progress_bar() as progress:
        task = progress.add_task("listing shards", total=None)

        def show(kind: str, step: str, done: int, total: int) -> None:
            progress.update(task, description=STEPS[step].format(kind=kind), completed=done, total=total or None)

        yield show
