"""The `ttscale` command line: each command parses, calls one library function and prints."""

from __future__ import annotations

import sys

import typer

from ttscale.cli import inspection, local, results, storage, sweep
from ttscale.cli.console import err_console

app = typer.Typer(
    name="ttscale",
    help="Measure test-time scaling of reasoning models: budget-forced sweeps on Ray, scored and analysed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Measure test-time scaling of reasoning models: budget-forced sweeps on Ray, scored and analysed."""


app.command("run-local")(local.run_local)
app.command()(inspection.plan)
app.command()(sweep.sweep)
app.command()(sweep.refine)
app.command()(inspection.status)
app.command()(inspection.convert)
app.command()(storage.compact)
app.command()(results.analyze)
app.command()(results.serve)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
