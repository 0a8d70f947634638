"""The notebook's `Results`: the result rows and their analyses (analysis/results.py) with the HTML report."""

from __future__ import annotations

from pathlib import Path

from ttscale.analysis import results
from ttscale.analysis.report import write_report


class Results(results.Results):
    """Result rows of one or more results directories (or a DataFrame), with cached analyses and the report.

    The report reads the results, never the reverse: this class sits above both (`ttscale.analysis.Results`)."""

    def report(self, out: str | Path, **options) -> Path:
        """Write the self-contained HTML report (and the tables) into `out`; returns the HTML path."""
        return write_report(self, Path(out), **options)
