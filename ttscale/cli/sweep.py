"""`ttscale sweep` and `ttscale refine`: run on Ray with a progress bar, then say what was stored and what failed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from ttscale.cli.console import console, err_console, fail, print_summary, progress_bar, si, warnings_as_lines
from ttscale.cli.options import RayAddress
from ttscale.cli.progress_lines import ProgressLines
from ttscale.errors import TtscaleError
from ttscale.metrics import curve_metric_names, named_list
from ttscale.sweeps.run_view import RunView

GAP_METRICS = [*(m for m in curve_metric_names() if m != "pass@k"), "pass@<k>"]  # ttscale/metrics.py

if TYPE_CHECKING:
    from ttscale.sweeps.progress import ProgressFn

EXIT_STOPPED = 75  # EX_TEMPFAIL: the sweep stopped on a signal (preemption, time limit); rerun to resume


def sweep(
    sweep_file: Annotated[Path, typer.Argument(metavar="SWEEP", help="Sweep .yaml file.")],
    address: RayAddress = "local",
    stop_grace: Annotated[
        float,
        typer.Option(
            help="After SIGTERM or SIGUSR1 (preemption, a time-limit warning): seconds for running units to "
            "finish and be written before the sweep exits (status 75; the same command resumes).",
            min=0,
        ),
    ] = 30.0,
    serve: Annotated[
        bool, typer.Option("--serve", help="Also start the results explorer (`ttscale serve`) on this Ray instance.")
    ] = False,
    serve_port: Annotated[int, typer.Option(min=1, max=65535, help="The explorer's port (on 127.0.0.1).")] = 8000,
) -> None:
    """Run a sweep on Ray: one actor pool per model, results streamed to Parquet, resumable."""
    try:
        from ttscale.sweeps.run import run_sweep_file

        view = _BarView(serve_port=serve_port if serve else None)
        swept = run_sweep_file(sweep_file, address=address, stop_grace_s=stop_grace, view=view)
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    outcome, store = swept.outcome, swept.store
    _exit_if_stopped(outcome, store)
    if outcome.rows_written == 0 and not outcome.failed_units:
        console.print(f"nothing to do: every row of {swept.loaded.spec.name} is already in {store.root}")
    if swept.summary is not None:
        print_summary(swept.summary)
    console.print(
        f"{outcome.rows_written} rows written in {outcome.seconds:.0f} s ({si(outcome.thinking_tokens)} thinking "
        f"tokens generated); results: {store.root} (rows/*.parquet, read with "
        f"ttscale.store.ResultStore('{store.root}').read())"
    )
    _exit_if_failed(outcome, store)


def refine(
    results_dir: Annotated[Path, typer.Argument(metavar="RESULTS_DIR", help="A results directory of a nested sweep.")],
    metric: Annotated[
        str, typer.Option(help=f"Find gaps on this metric: {named_list(GAP_METRICS)}.")
    ] = "p_correct",
    per_gap: Annotated[int, typer.Option(min=1, help="Budgets added inside each chosen gap (log-spaced).")] = 1,
    max_budgets: Annotated[int, typer.Option(min=1, help="At most this many new budgets per model × dataset.")] = 4,
    level: Annotated[
        str,
        typer.Option(help="dataset: gaps of dataset curves; problem: also where the top problems jump."),
    ] = "dataset",
    top: Annotated[int, typer.Option(min=1, help="With --level problem: how many of the most emergent problems.")] = 4,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the budgets and the cost; run nothing.")] = False,
    address: RayAddress = "local",
    stop_grace: Annotated[float, typer.Option(min=0, help="As for `ttscale sweep`.")] = 30.0,
) -> None:
    """Add budgets where the curves change most, cut from the stored trajectories: only forced answers run."""
    try:
        from ttscale.sweeps.refine import plan_refinement
        from ttscale.sweeps.run import run_refinement

        with warnings_as_lines():
            refinement = plan_refinement(
                results_dir, metric=metric, level=level, per_gap=per_gap, max_budgets=max_budgets, top=top
            )
        _print_refinement(refinement)
        if dry_run or not refinement.forced_answers:
            return
        refined = run_refinement(refinement, address=address, stop_grace_s=stop_grace, view=_BarView())
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(
            f"Cannot write results to {results_dir}: {exc}. Fix the directory, then run the same command."
        ) from None
    outcome, store = refined.outcome, refined.store
    _exit_if_stopped(outcome, store)
    _print_before_after(refined.before, refined.after, metric)
    console.print(
        f"{outcome.rows_written} rows written in {outcome.seconds:.0f} s; {si(outcome.thinking_tokens)} thinking "
        f"tokens generated; recorded in {store.root / 'manifest.json'}. `ttscale analyze {store.root}` redraws the "
        "report on the refined grid."
    )
    _exit_if_failed(outcome, store)


class _BarView(RunView):
    """A run as the command line shows it: ttscale's warnings one line each, the plan in one line, a bar of rows;
    with `serve_port`, the results explorer started beside the sweep once Ray is up."""

    def __init__(self, serve_port: int | None = None) -> None:
        self._serve_port = serve_port
        self._output_dir: Path | None = None
        self._progress: Progress | None = None
        self._bar: TaskID | None = None
        self._started: float | None = None  # when the first progress came in: tokens per second count from there
        self._compaction: TaskID | None = None  # the bar of the compaction at the run's end
        # not a terminal (a SLURM batch log, a pipe): plain lines that `tail -f` shows as they come, not a bar
        self._lines = None if console.is_terminal else ProgressLines(_print_line)

    def step(self) -> contextlib.AbstractContextManager[None]:
        return warnings_as_lines()

    def claimed(self, loaded, plan) -> None:
        self._output_dir = loaded.spec.output_dir
        console.print(
            f"{loaded.spec.name}: {plan.rows_remaining} of {plan.rows_total} rows to run in {len(plan.units)} units"
        )

    @contextlib.contextmanager
    def running(self) -> Iterator[ProgressFn]:
        with progress_bar(rows=True) as progress, warnings_as_lines():
            self._progress = progress
            if self._lines is not None:
                try:
                    yield self._lines
                finally:
                    self._lines.close()
                return
            self._bar = progress.add_task("starting", total=None, detail="")
            yield self._show

    def _show(self, p) -> None:
        self._started = self._started or time.perf_counter()
        rate = p.tokens / max(time.perf_counter() - self._started, 1e-9)
        thinking = f" · trajectories {p.trajectories_done}/{p.trajectories_total}" if p.trajectories_total else ""
        self._progress.update(
            self._bar, description="rows", completed=p.rows_done, total=p.rows_to_do,
            detail=f"cells {p.cells_done}/{p.cells_to_do}{thinking} · {rate:,.0f} tok/s",
        )  # fmt: skip

    def compacting(self, kind: str, step: str, done: int, total: int) -> None:
        from ttscale.cli.storage import STEPS

        if self._compaction is None:
            self._compaction = self._progress.add_task("compacting", total=None, detail="")
        description = STEPS[step].format(kind=kind)
        self._progress.update(self._compaction, description=description, completed=done, total=total or None)

    def compacted(self, done) -> None:
        for result in done:
            self._progress.console.print(f"compacted {result.line()}", highlight=False)

    def connected(self, connection) -> None:
        where = "started locally" if connection.started_local else f"at {connection.address}"
        url = connection.dashboard_url or "(no dashboard)"
        self._progress.console.print(f"Ray {where}; dashboard: {url}")
        if self._serve_port is not None:  # on the sweep's Ray instance; it goes when the sweep's local Ray does
            from ttscale.serve.app import start_explorer

            explorer = start_explorer([self._output_dir], port=self._serve_port, dashboard_url=url)
            self._progress.console.print(f"explorer: {explorer}")


def _print_line(line: str) -> None:
    console.print(line, highlight=False, soft_wrap=True, markup=False)


def _exit_if_stopped(outcome, store) -> None:
    """A run stopped by a signal: say what is kept and exit 75 (the same command resumes)."""
    if outcome.stopped:
        err_console.print(
            f"stopped by {outcome.stopped}: {outcome.rows_written} rows of finished units are stored in {store.root}; "
            f"{len(outcome.dropped_units)} running and {outcome.not_started_units} queued units were not run. "
            "Run the same command to resume.",
            soft_wrap=True, highlight=False,
        )  # fmt: skip
        raise typer.Exit(EXIT_STOPPED)


def _exit_if_failed(outcome, store) -> None:
    """Fatal errors and failed units, one line each, and exit 1 when a unit failed."""
    for line in outcome.fatal:
        err_console.print(f"[bold red]error:[/] {line}", soft_wrap=True, highlight=False)
    if outcome.failed_units:
        err_console.print(
            f"[bold red]error:[/] {len(outcome.failed_units)} work unit(s) failed; see `ttscale status {store.root}`",
            highlight=False,
        )
        raise typer.Exit(1)


def _print_refinement(refinement) -> None:
    """The budgets chosen per gap (or the unfinished refinement being resumed) and what they cost."""
    if refinement.resuming:
        console.print(f"finishing an interrupted refinement: {refinement.forced_answers} rows still to run")
    elif not refinement.pairs:
        console.print("nothing to refine: no gap with a change is wide enough for a new budget")
        return
    else:
        table = Table(title=f"refine: {refinement.loaded.spec.name} → {refinement.loaded.spec.output_dir}")
        for col in ("model", "dataset", "gap", "change", "why", "new budgets"):
            table.add_column(col, justify="right" if col == "change" else "left")
        for pair in refinement.pairs:
            for gap, budgets in zip(pair.gaps, pair.budgets, strict=True):
                table.add_row(pair.model, pair.dataset, f"{gap.lo}–{gap.hi}", f"{gap.change:.3g}", gap.source,
                              ", ".join(map(str, budgets)))  # fmt: skip
        console.print(table)
    console.print(
        f"cost: {refinement.thinking_tokens:,} thinking tokens, {refinement.forced_answers:,} forced answers "
        "(each scored over the solution set)"
    )


def _print_before_after(before, after, metric: str) -> None:
    merged = after.merge(before, on=["model", "dataset", "budget"], how="left", suffixes=("", "_before"))
    table = Table(title=f"{metric} per budget after refining (new budgets marked +)")
    for col in ("model", "dataset", "budget", metric):
        table.add_column(col, justify="left" if col in ("model", "dataset") else "right")
    for r in merged.itertuples(index=False):
        new = r.value_before != r.value_before  # NaN: not on the grid before
        table.add_row(r.model, r.dataset, f"{'+' if new else ''}{r.budget}", f"{r.value:.3f}",
                      style="bold" if new else None)  # fmt: skip
    console.print(table)
