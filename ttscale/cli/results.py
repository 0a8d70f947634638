"""`ttscale analyze` and `ttscale serve`: a results directory's report, and its live explorer in the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttscale.cli.console import console, fail, progress_bar, warnings_as_lines
from ttscale.cli.options import RayAddress
from ttscale.errors import TtscaleError
from ttscale.metrics import named_list, shown_metrics

RANKABLE = [*shown_metrics(discrete=True), *shown_metrics(discrete=False)]  # ttscale/metrics.py


def analyze(
    results_dirs: Annotated[list[Path], typer.Argument(metavar="RESULTS_DIR...", help="One or more results dirs.")],
    out: Annotated[
        Path | None, typer.Option(help="Where tables and report.html go (default: RESULTS_DIR/analysis).")
    ] = None,
    metric: Annotated[
        str, typer.Option(help=f"Rank problems by: {named_list(RANKABLE)}.")
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
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary (per model and dataset) instead of the report's path.")
    ] = False,
) -> None:
    """Curves, emergence scores, fits and p-values, and a self-contained HTML report."""
    try:
        from ttscale.analysis import Results

        with progress_bar() as progress, warnings_as_lines():
            progress.add_task("reading results", total=None)
            results = Results.open(results_dirs, n_boot=n_boot, n_sim=n_sim)
        target = out or results_dirs[0] / "analysis"
        with progress_bar() as progress, warnings_as_lines():
            progress.add_task(f"analysing {len(results.rows):,} rows", total=None)
            report = results.report(target, metric=metric, k=top, ranking=ranking, min_range=min_range)
            summary = results.summary(report) if as_json else None
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    if summary is not None:
        import json

        print(json.dumps(summary, indent=2, allow_nan=False))
        return
    console.print(f"report: {report}  (tables: {target}/*.parquet, *.csv)")


def serve(
    results_dirs: Annotated[list[Path], typer.Argument(metavar="RESULTS_DIR...", help="One or more results dirs.")],
    host: Annotated[str, typer.Option(help="Address to bind; the default serves this machine only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    address: RayAddress = "local",
) -> None:
    """Explore results in the browser (curves, emergence, each problem's reasoning), live while a sweep writes them."""
    try:
        from ttscale.serve.app import serve_results, stop_explorer

        url, dashboard_url = serve_results(results_dirs, host=host, port=port, address=address)
    except TtscaleError as exc:
        raise fail(str(exc)) from None
    console.print(f"explorer: {url}  (Ray dashboard: {dashboard_url or 'none'}); Ctrl-C stops it")
    import signal
    import time

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it like Ctrl-C
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop_explorer()
