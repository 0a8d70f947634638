"""The notebook's `Results`: the result rows and their analyses (analysis/results.py) with the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ttscale.analysis import results
from ttscale.analysis.report import write_report
from ttscale.analysis.summary import analysis_summary


class Results(results.Results):
    """Result rows of one or more results directories (or a DataFrame), with cached analyses and the report.

    The report reads the results, never the reverse: this class sits above both (`ttscale.analysis.Results`)."""

    def report(self, out: str | Path, **options) -> Path:
        """Write the self-contained HTML report (and the tables) into `out`; returns the HTML path."""
        return write_report(self, Path(out), **options)

    def summary(self, report: str | Path) -> dict[str, Any]:
        """What `ttscale analyze --json` prints (analysis/summary.py): per (model, dataset), its grid, dataset-level
        emergence and the sequential-vs-parallel answer, beside the report at `report`."""
        return analysis_summary(self, Path(report))
