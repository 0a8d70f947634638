"""Commands that run nothing: a sweep's plan, a results directory's status, an original-study config converted."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ttscale.cli.console import console, fail, si, warnings_as_lines
from ttscale.errors import TtscaleError


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
        from ttscale.sweeps.run import plan_sweep

        with warnings_as_lines():  # a config in the original format, skipped bad dataset rows, an unreadable shard
            loaded, resolved = plan_sweep(sweep, cluster=cluster)
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
    sized = the_plan.target_minutes is not None
    table = Table(title=f"plan: {spec.name} → {spec.output_dir}")
    columns = ("model", "dataset", "cells", "units", *(("unit size",) if sized else ()), "rows", "done", "remaining",
               "thinking", "tokens nested", "tokens indep.")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "dataset") else "right")
    for p in the_plan.pairs:
        per_unit = (f"{p.problems_per_unit}×{p.seeds_per_unit}",) if sized else ()
        table.add_row(
            p.model, p.dataset, str(p.cells), str(p.units), *per_unit, str(p.rows), str(p.rows_done),
            str(p.rows_remaining), si(p.thinking_tokens), si(p.tokens_nested), si(p.tokens_independent),
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
    if sized:
        console.print(
            f"units sized to about {the_plan.target_minutes:g} min each (unit_target_minutes): unit size is problems "
            f"× seeds per unit, at most problems_per_unit ({spec.problems_per_unit}) problems",
            highlight=False,
        )
    _print_unit_times(the_plan)


def _print_unit_times(the_plan) -> None:
    """Per model: the rate its units are estimated with, where it comes from, and their estimated wall time."""
    target = the_plan.target_minutes
    table = Table(title="estimated time per unit (tokens / rate)" + (f", target {target:g} min" if target else ""))
    columns = ("model", "tokens/s", "rate", "units", "median", "max", *(("over target",) if target else ()))
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "rate") else "right")
    times = the_plan.unit_times()
    for t in times:
        over = (str(len(t.over_target)),) if target else ()
        table.add_row(
            t.model, _rate(t.rate.tokens_per_s), t.rate.label, str(len(t.minutes)), _duration(t.median),
            _duration(t.max), *over,
        )  # fmt: skip
    console.print(table)
    for t in times:
        console.print(f"{t.model}: {t.rate.label}: {t.rate.basis}", highlight=False)
        if t.over_target:
            console.print(
                f"{t.model}: {len(t.over_target)} units over the {target:g}-minute target (up to "
                f"{_duration(max(t.over_target))}): each is one problem × one seed, and a trajectory is not split. "
                "Raise unit_target_minutes or lower the largest budget.",
                highlight=False,
            )
    console.print(
        "A unit's time is its wall time on its actor (an actor runs 2 units at once on vllm); measured rates come "
        "from earlier runs' events.jsonl (see docs/sweeps.md, Sizing units by time).",
        highlight=False,
    )


def _rate(tokens_per_s: float) -> str:
    return f"{tokens_per_s:,.0f}" if tokens_per_s >= 10 else f"{tokens_per_s:.2g}"


def _duration(minutes: float | None) -> str:
    if minutes is None:
        return "-"
    if minutes < 1:
        return f"{minutes * 60:.0f} s"
    return f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def status(
    target: Annotated[Path, typer.Argument(metavar="RESULTS_DIR|SWEEP.yaml")],
) -> None:
    """Completion per model × dataset × budget, and failed work units with their errors."""
    try:
        from ttscale.sweeps.status import sweep_status

        with warnings_as_lines():
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
        from ttscale.sweeps.original import convert as convert_config

        with warnings_as_lines():  # written to a file, the notes are also shown here
            text = convert_config(config, output, force=force)
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    if output is None:
        sys.stdout.write(text)
    else:
        console.print(f"wrote {output}; check it with: ttscale plan {output}", highlight=False)
