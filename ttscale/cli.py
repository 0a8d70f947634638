"""The `ttscale` command line: each command parses, calls one library function and prints."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ttscale.errors import ConfigError, TtscaleError, TtscaleWarning

app = typer.Typer(
    name="ttscale",
    help="Measure test-time scaling of reasoning models: budget-forced sweeps on Ray, scored and analysed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Piped output (CI logs, files) gets 120 columns instead of rich's 80, so tables keep their names.
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


@app.callback()
def _root() -> None:
    """Measure test-time scaling of reasoning models: budget-forced sweeps on Ray, scored and analysed."""


EXIT_STOPPED = 75  # EX_TEMPFAIL: the sweep stopped on a signal (preemption, time limit); rerun to resume


RayAddress = Annotated[
    str, typer.Option(help="local: start a Ray instance here (with dashboard); auto or host:port: join a cluster.")
]


def fail(message: str) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(1)


def _int_list(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ConfigError(f"Got '{text}' for {option}. Give comma-separated integers, e.g. 16,32,64.") from None


@app.command("run-local")
def run_local(
    model: Annotated[
        str, typer.Option(help="Alias (smollm2-135m), local HF directory, .gguf file or hub id.")
    ] = "smollm2-135m",
    dataset: Annotated[str, typer.Option(help="Registered dataset, hub id, or .jsonl/.parquet file.")] = "demo-arith",
    budgets: Annotated[str, typer.Option(help="Thinking budgets in tokens, comma-separated.")] = "16,32,64",
    seeds: Annotated[int, typer.Option(min=1, help="Samples per problem (seeds 0..n-1).")] = 1,
    limit: Annotated[int | None, typer.Option(min=1, help="First N problems only.")] = 4,
    trajectory: Annotated[
        str, typer.Option(help="nested (one trajectory, every budget a prefix) or independent.")
    ] = "nested",
    on_early_stop: Annotated[str, typer.Option(help="continue (inject the continuation) or accept.")] = "continue",
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.6,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.95,
    family: Annotated[str | None, typer.Option(help="Model family (default: inferred from the model name).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write rows here as Parquet (trajectories beside it).")] = None,
) -> None:
    """Run problems × seeds × budgets in this process, without Ray, and print accuracy per budget."""
    try:
        from ttscale.engines import Sampling
        from ttscale.forcing import ForcingConfig
        from ttscale.measure import budget_summary, measure

        if trajectory not in ("nested", "independent"):
            raise ConfigError(f"Got '{trajectory}' for --trajectory. Use nested or independent.")
        if on_early_stop not in ("continue", "accept"):
            raise ConfigError(f"Got '{on_early_stop}' for --on-early-stop. Use continue or accept.")
        budget_list = _int_list(budgets, "--budgets")
        if out is not None and out.suffix != ".parquet":
            raise ConfigError(f"Got '{out}' for --out. Give a path ending in .parquet.")
        with _progress() as progress:
            task_id = progress.add_task("loading model", total=None)

            def on_unit(done: int, total: int, _tokens: int) -> None:
                progress.update(task_id, description="measuring units", completed=done, total=total)

            result = measure(
                model, dataset, budgets=budget_list, seeds=seeds, limit=limit, family=family,
                forcing=ForcingConfig(trajectory=trajectory, on_early_stop=on_early_stop),  # type: ignore[arg-type]
                sampling=Sampling(temperature=temperature, top_p=top_p), on_unit=on_unit,
            )  # fmt: skip
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    _print_summary(budget_summary(result.to_pandas()))
    if out is not None:
        import pyarrow.parquet as pq

        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(result.rows, out)
        if result.trajectories.num_rows:
            pq.write_table(result.trajectories, out.with_name(out.stem + ".trajectories.parquet"))
        console.print(f"wrote {result.rows.num_rows} rows to {out}")


@app.command()
def plan(
    sweep: Annotated[Path, typer.Argument(help="Sweep .yaml file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    cluster: Annotated[
        Path | None,
        typer.Option(help="A `ray up` cluster file: check that every model's actor fits one of its node types."),
    ] = None,
) -> None:
    """Show a sweep's cells, work units and estimated tokens, and what its store already holds; with --cluster,
    refuse a model whose GPUs and custom resources no node type of the cluster file offers."""
    try:
        from ttscale.store import ResultStore
        from ttscale.sweeps.original import load_sweep
        from ttscale.sweeps.resolve import resolve_in

        with _warnings_as_lines():  # a config in the original format, skipped bad dataset rows, an unreadable shard
            loaded = load_sweep(sweep)
            resolved = resolve_in(loaded, ResultStore(loaded.spec.output_dir))
        if cluster is not None:
            from ttscale.sweeps.placement import check_resources, launcher_node_types

            node_types = launcher_node_types(cluster)
            check_resources(loaded, resolved, list(node_types.values()), where=f"{cluster}'s node types")
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    if as_json:
        import json

        print(json.dumps({"sweep": loaded.spec.name, "output_dir": str(loaded.spec.output_dir),
                          **resolved.plan.to_json()}, indent=2))  # fmt: skip
        return
    _print_plan(loaded, resolved.plan)


def _print_plan(loaded, the_plan) -> None:
    spec = loaded.spec
    table = Table(title=f"plan: {spec.name} → {spec.output_dir}")
    columns = ("model", "dataset", "cells", "units", "rows", "done", "remaining", "thinking", "tokens nested",
               "tokens indep.")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "dataset") else "right")
    for p in the_plan.pairs:
        table.add_row(
            p.model, p.dataset, str(p.cells), str(p.units), str(p.rows), str(p.rows_done), str(p.rows_remaining),
            _si(p.thinking_tokens), _si(p.tokens_nested), _si(p.tokens_independent),
        )  # fmt: skip
    console.print(table)
    for p in the_plan.pairs:
        if p.budgets != sorted(spec.budgets):
            console.print(f"{p.model} × {p.dataset}: refined grid {p.budgets}")
    console.print(
        f"budgets {spec.budgets}, seeds {spec.seeds}, trajectory {spec.forcing.trajectory}: "
        f"{the_plan.rows_remaining} of {the_plan.rows_total} rows to run in {len(the_plan.units)} units "
        "(token estimates are upper bounds for the remaining work; `thinking` and `tokens nested` count only what "
        "stored trajectories do not already hold)"
    )


def _si(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(int(n))


@app.command()
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
    loaded = None
    try:
        from ttscale.measure import budget_summary
        from ttscale.store import ResultStore
        from ttscale.sweeps.original import load_sweep
        from ttscale.sweeps.resolve import resolve_in
        from ttscale.sweeps.run import check_models_can_start, is_local

        with _warnings_as_lines():  # a config in the original study's format: what differs, once
            loaded = load_sweep(sweep_file)
        store = ResultStore(loaded.spec.output_dir)
        store.manifest()  # a damaged manifest is one line before Ray starts
        with _warnings_as_lines():  # an unreadable shard is set aside with one line, and its rows measured again
            resolved = resolve_in(loaded, store)  # every input error, first
        with _warnings_as_lines():
            check_models_can_start(loaded, resolved, local=is_local(address))
        plan_ = resolved.plan
        outcome = _run_with_progress(loaded, resolved, address=address, stop_grace=stop_grace, serve=serve,
                                     serve_port=serve_port)  # fmt: skip
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:  # the results directory: a full disk, no permission, a read-only file system
        where = loaded.spec.output_dir if loaded is not None else sweep_file
        raise fail(
            f"Cannot write results to {where}: {exc}. Free space or fix the directory's permissions, then run the "
            "same command again: finished units are kept."
        ) from None
    store = ResultStore(loaded.spec.output_dir)
    _exit_if_stopped(outcome, store)
    if outcome.rows_written == 0 and not outcome.failed_units:
        console.print(f"nothing to do: every row of {loaded.spec.name} is already in {store.root}")
    columns = ["model", "dataset", "problem_id", "budget", "correct", "p_correct", "thinking_tokens"]
    rows = store.rows_where("cell_id", sorted(set(plan_.cell_ids.values())), columns).to_pandas()  # this sweep's
    if len(rows):
        _print_summary(budget_summary(rows))
    console.print(
        f"{outcome.rows_written} rows written in {outcome.seconds:.0f} s ({_si(outcome.thinking_tokens)} thinking "
        f"tokens generated); results: {store.root} (rows/*.parquet, read with "
        f"ttscale.store.ResultStore('{store.root}').read())"
    )
    _exit_if_failed(outcome, store)


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


def _run_with_progress(
    loaded, resolved, *, address: str, stop_grace: float, serve: bool = False, serve_port: int = 8000, before=None
):
    """Claim the results directory, run the planned units on Ray with a progress bar, and return the outcome.

    `before()` runs once the directory is claimed, before any unit (refine records its refinement there)."""
    from ttscale.run_lock import RunLock
    from ttscale.sweeps.run import run_sweep

    plan_ = resolved.plan
    lock = RunLock(loaded.spec.output_dir, sweep=loaded.spec.name)  # claimed before anything is shown
    if plan_.rows_remaining:
        lock.acquire()  # a second driver on this results directory stops here, in one line
    console.print(
        f"{loaded.spec.name}: {plan_.rows_remaining} of {plan_.rows_total} rows to run in {len(plan_.units)} units"
    )
    with contextlib.ExitStack() as held:
        held.callback(lock.release)
        if before is not None and plan_.rows_remaining:
            before()
        progress = held.enter_context(_progress(rows=True))
        held.enter_context(_warnings_as_lines())
        bar = progress.add_task("starting", total=None, detail="")
        started = {"t": None}

        def on_connect(connection) -> None:
            where = "started locally" if connection.started_local else f"at {connection.address}"
            url = connection.dashboard_url or "(no dashboard)"
            progress.console.print(f"Ray {where}; dashboard: {url}")
            if serve:  # beside the sweep, on its Ray instance; it goes when the sweep's local Ray does
                from ttscale.serve.app import start_explorer

                explorer = start_explorer([loaded.spec.output_dir], port=serve_port, dashboard_url=url)
                progress.console.print(f"explorer: {explorer}")

        def on_progress(p) -> None:
            import time

            started["t"] = started["t"] or time.perf_counter()
            rate = p.tokens / max(time.perf_counter() - started["t"], 1e-9)
            thinking = f" · trajectories {p.trajectories_done}/{p.trajectories_total}" if p.trajectories_total else ""
            progress.update(
                bar, description="rows", completed=p.rows_done, total=p.rows_to_do,
                detail=f"cells {p.cells_done}/{p.cells_to_do}{thinking} · {rate:,.0f} tok/s",
            )  # fmt: skip

        return run_sweep(
            loaded, address=address, on_progress=on_progress, on_connect=on_connect, resolved=resolved,
            stop_grace_s=stop_grace,
        )  # fmt: skip


@app.command()
def refine(
    results_dir: Annotated[Path, typer.Argument(metavar="RESULTS_DIR", help="A results directory of a nested sweep.")],
    metric: Annotated[
        str, typer.Option(help="Find gaps on this metric: p_correct, accuracy, neg_entropy, neg_brier, ...")
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
        from ttscale.store import ResultStore
        from ttscale.sweeps.refine import dataset_values, plan_refinement, record_refinement
        from ttscale.sweeps.run import check_models_can_start, is_local

        with _warnings_as_lines():
            refinement = plan_refinement(
                results_dir, metric=metric, level=level, per_gap=per_gap, max_budgets=max_budgets, top=top
            )
        _print_refinement(refinement)
        if dry_run or not refinement.forced_answers:
            return
        with _warnings_as_lines():
            check_models_can_start(refinement.loaded, refinement.resolved, local=is_local(address))
        before = dataset_values(refinement)
        outcome = _run_with_progress(
            refinement.loaded, refinement.resolved, address=address, stop_grace=stop_grace,
            before=lambda: record_refinement(refinement),
        )  # fmt: skip
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(
            f"Cannot write results to {results_dir}: {exc}. Fix the directory, then run the same command."
        ) from None
    store = ResultStore(refinement.loaded.spec.output_dir)
    _exit_if_stopped(outcome, store)
    _print_before_after(before, dataset_values(refinement), metric)
    console.print(
        f"{outcome.rows_written} rows written in {outcome.seconds:.0f} s; {_si(outcome.thinking_tokens)} thinking "
        f"tokens generated; recorded in {store.root / 'manifest.json'}. `ttscale analyze {store.root}` redraws the "
        "report on the refined grid."
    )
    _exit_if_failed(outcome, store)


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


@app.command()
def status(
    target: Annotated[Path, typer.Argument(metavar="RESULTS_DIR|SWEEP.yaml")],
) -> None:
    """Completion per model × dataset × budget, and failed work units with their errors."""
    try:
        from ttscale.sweeps.status import sweep_status

        with _warnings_as_lines():
            report = sweep_status(target)
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"status: {report.sweep} ({report.root})")
    for col in ("model", "dataset", "budget", "done", "rows", "%"):
        table.add_column(col, justify="left" if col in ("model", "dataset") else "right")
    for r in report.completion:
        pct = 100.0 * r["done"] / r["rows"] if r["rows"] else 100.0
        style = "green" if r["done"] == r["rows"] else None
        table.add_row(
            r["model"], r["dataset"], str(r["budget"]), str(r["done"]), str(r["rows"]), f"{pct:.0f}", style=style
        )
    console.print(table)
    console.print(f"{report.rows_done} of {report.rows_total} rows stored in {report.shards} shards")
    if report.failures:
        failed = Table(title="failed work units (not since completed)")
        for col in ("unit", "model", "dataset", "attempts", "last error"):
            failed.add_column(col)
        for f in report.failures:
            failed.add_row(f["unit_id"], f.get("model", ""), f.get("dataset", ""), str(f["attempts"]), f["error"])
        console.print(failed)


@app.command()
def convert(
    config: Annotated[
        str,
        typer.Argument(
            metavar="OLD_CONFIG",
            help="An original-study config (YAML), a run script holding `python main.py ...` commands, or one "
            "such command line in quotes.",
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the native sweep here instead of printing it.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT if it exists.")] = False,
) -> None:
    """Print the native sweep file an original-study config or command line stands for, a comment per mapped key."""
    try:
        from ttscale.sweeps.command_line import is_command_text
        from ttscale.sweeps.original import convert_commands, convert_file

        with _warnings_as_lines():  # written to a file, the notes are also shown here
            if not Path(config).exists() and is_command_text(config):
                text = convert_commands(config, Path("command-line"), output, force=force)
            else:
                text = convert_file(Path(config), output, force=force)
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    if output is None:
        sys.stdout.write(text)
    else:
        console.print(f"wrote {output}; check it with: ttscale plan {output}", highlight=False)


@app.command()
def analyze(
    results_dirs: Annotated[list[Path], typer.Argument(metavar="RESULTS_DIR...", help="One or more results dirs.")],
    out: Annotated[
        Path | None, typer.Option(help="Where tables and report.html go (default: RESULTS_DIR/analysis).")
    ] = None,
    metric: Annotated[
        str, typer.Option(help="Rank problems by: accuracy, p_correct, neg_entropy, neg_brier or mass_on_set.")
    ] = "p_correct",
    top: Annotated[int, typer.Option(min=1, help="How many of the most emergent problems to show.")] = 8,
    n_boot: Annotated[int, typer.Option(min=10, help="Bootstrap resamples for the bands.")] = 1000,
    n_sim: Annotated[int, typer.Option(min=10, help="Parametric-bootstrap simulations per p-value.")] = 200,
    ranking: Annotated[
        str,
        typer.Option(help="Top-k order: reviewed (curves moving by >= --min-range, significant first) or score."),
    ] = "reviewed",
    min_range: Annotated[
        float, typer.Option(min=0.0, help="Reviewed ranking: the least |max - min| of a ranked curve.")
    ] = 0.05,
) -> None:
    """Curves, emergence scores, fits and p-values, and a self-contained HTML report."""
    try:
        from ttscale.analysis import Results

        with _progress() as progress, _warnings_as_lines():
            progress.add_task("reading results through Ray Data", total=None)
            results = Results.open(results_dirs, n_boot=n_boot, n_sim=n_sim)
        target = out or results_dirs[0] / "analysis"
        with _progress() as progress, _warnings_as_lines():
            progress.add_task(f"analysing {len(results.rows):,} rows", total=None)
            report = results.report(target, metric=metric, k=top, ranking=ranking, min_range=min_range)
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    console.print(f"report: {report}  (tables: {target}/*.parquet, *.csv)")


@app.command()
def serve(
    results_dirs: Annotated[list[Path], typer.Argument(metavar="RESULTS_DIR...", help="One or more results dirs.")],
    host: Annotated[str, typer.Option(help="Address to bind; the default serves this machine only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    address: RayAddress = "local",
) -> None:
    """Explore results in the browser (curves, emergence, each problem's reasoning), live while a sweep writes them."""
    try:
        for root in results_dirs:
            if not root.is_dir():
                raise ConfigError(f"Got '{root}' for RESULTS_DIR. It is not a directory; give a ttscale results dir.")
        from ttscale.serve.app import start_explorer, stop_explorer
        from ttscale.sweeps.placement import connect

        connection = connect(address)
        url = start_explorer(results_dirs, host=host, port=port, dashboard_url=connection.dashboard_url)
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    console.print(f"explorer: {url}  (Ray dashboard: {connection.dashboard_url or 'none'}); Ctrl-C stops it")
    import signal
    import time

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it like Ctrl-C
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop_explorer()


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """ttscale's own warnings, printed as one yellow line each when the block ends; others are shown as usual."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TtscaleWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, TtscaleWarning):
            err_console.print(f"[yellow]warning:[/] {warning.message}", soft_wrap=True, highlight=False)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


def _progress(rows: bool = False) -> Progress:
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn()]
    if rows:
        columns.append(TextColumn("{task.fields[detail]}"))
    columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(*columns, console=err_console, transient=not rows, refresh_per_second=2)


def _print_summary(summary) -> None:
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
