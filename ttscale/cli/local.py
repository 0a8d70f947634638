"""`ttscale run-local`: problems × seeds × budgets in this process, without Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttscale.cli.console import console, fail, print_summary, progress_bar
from ttscale.errors import ConfigError, TtscaleError


def _int_list(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ConfigError(f"Got '{text}' for {option}. Give comma-separated integers, e.g. 16,32,64.") from None


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
        with progress_bar() as progress:
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
    print_summary(budget_summary(result.to_pandas()))
    if out is not None:
        result.write(out)
        console.print(f"wrote {result.rows.num_rows} rows to {out}")
