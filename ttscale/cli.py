"""The `ttscale` command line: each command parses, calls one library function and prints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ttscale.errors import ConfigError, TtscaleError

app = typer.Typer(
    name="ttscale",
    help="Measure test-time scaling of reasoning models: budget-forced sweeps on Ray, scored and analysed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Measure test-time scaling of reasoning models: budget-forced sweeps on Ray, scored and analysed."""


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
        from ttscale.actors.engines import Sampling
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


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True,
    )  # fmt: skip


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
