"""The original study's analysis API, `AnalysisWorkflow`, as a thin facade over `Results` (same names, same calls).

    from ttscale.analysis import AnalysisWorkflow

    workflow = AnalysisWorkflow(paths=["results/original_gpqa"], results_save_dir="analysis")
    workflow.aggregate_plots(SHOW=True, SAVE=True)          # scaling curves per (model, dataset), with bands
    scores = workflow.emergence_scores(model_name="deepseek", dataset_name="gpqa")   # per problem
    top = workflow.get_top_k_max_emergence_samples(k=4, plot=True)                   # the k most emergent

Every number is the native API's (`Results.curves`, `Results.emergence`, `emergence.top_k`); only names and
selection follow the original (../shared/seed/README.md). Where the original differed it is said where it
matters, and in docs/migrating.md: flat curves score NaN, not 0, and nothing is clipped; "probs" is p_correct,
normalised over the solution set; the top-k ranks the most emergent first (the original returned the least).
Results are read with pyarrow into pandas (no Ray); `from_results` wraps any `Results`, e.g. `Results.open`'s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ttscale.analysis.emergence import PROBLEM_CURVE_KEYS, top_k
from ttscale.analysis.results import ANALYSIS_COLUMNS, DEFAULT_METRIC, DEFAULT_SCORE, Results, recorded_refinements
from ttscale.errors import TtscaleError
from ttscale.store import ResultStore
from ttscale.tasks.original import task_for

if TYPE_CHECKING:
    import plotly.graph_objects as go

SCORE_METRICS = {"probs": "p_correct", "negent": "neg_entropy"}  # the original's prefixes → native metrics
AGGREGATE_METRICS = ("accuracy", "p_correct", "neg_entropy")  # the original's answer score, probability, negentropy
ORIGINAL_SCORES = ("abs_probs_breakthroughness", "abs_negent_breakthroughness", "probs_skewness", "negent_skewness")


class AnalysisWorkflow:
    """The original study's analysis interface over one or more ttscale results directories."""

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        results_save_dir: str | Path = "analysis",
        *,
        n_boot: int = 1000,
        n_sim: int = 200,
        seed: int = 0,
    ) -> None:
        """`paths`: results directories (a sweep's `output_dir`); `results_save_dir`: where SAVE writes figures.
        `n_boot`, `n_sim` and `seed` are `Results`' bootstrap resamples, p-value simulations and seed."""
        self._use(read_results(paths, n_boot=n_boot, n_sim=n_sim, seed=seed), results_save_dir)

    @classmethod
    def from_results(cls, results: Results, results_save_dir: str | Path = "analysis") -> AnalysisWorkflow:
        """A workflow over results already open (e.g. `Results.open(dirs)`, which reads through Ray Data)."""
        workflow = cls.__new__(cls)
        workflow._use(results, results_save_dir)
        return workflow

    def _use(self, results: Results, results_save_dir: str | Path) -> None:
        self.results = results  # the native API over the same rows: .curves(...), .emergence(...), .report(...)
        self.paths = list(results.roots)
        self.results_save_dir = Path(results_save_dir)

    @property
    def model_names(self) -> list[str]:
        return sorted(self.results.rows["model"].astype(str).unique())

    @property
    def dataset_names(self) -> list[str]:
        return sorted(self.results.rows["dataset"].astype(str).unique())

    def aggregate_plots(
        self, SHOW: bool = True, SAVE: bool = False, *, model_name: str | None = None, dataset_name: str | None = None
    ) -> dict[tuple[str, str], go.Figure]:
        """Scaling curves of each (model, dataset): accuracy, p_correct and −entropy, each the mean over problems
        at every budget with its 95% bootstrap band (`Results.curves`). SHOW displays each figure; SAVE writes it
        to `results_save_dir/aggregate_plots/<model>_<dataset>_aggregate.html`. Returns the figures."""
        from ttscale.analysis.report import curve_metrics, fig_curves

        metrics = [m for m in curve_metrics(self.results.rows, 1) if m in AGGREGATE_METRICS]
        if not metrics:  # no row was graded or scored: nothing to draw
            return {}
        curves = pd.concat([self.results.curves(m).assign(metric=m) for m in metrics], ignore_index=True)
        curves = self._select(curves, model_name, dataset_name)
        figures = {}
        for (model, dataset), part in curves.groupby(["model", "dataset"], sort=True):
            fig = fig_curves(part, metrics)
            fig.update_layout(title=f"{dataset} · {model}: mean over problems, 95% bootstrap bands")
            figures[(model, dataset)] = fig
            if SAVE:
                self._save(fig, "aggregate_plots", f"{_slug(model)}_{_slug(dataset)}_aggregate")
            if SHOW:
                fig.show()
        return figures

    def emergence_scores(self, model_name: str | None = None, dataset_name: str | None = None) -> pd.DataFrame:
        """Per problem (mean over seeds), the breakthroughness and skewness of p_correct ("probs") and of −entropy
        ("negent"): one row per (model, dataset, problem), the values of `Results.emergence(metric)`.

        The original's four keys come first: `abs_probs_breakthroughness`, `abs_negent_breakthroughness` (the
        absolute breakthroughness), `probs_skewness`, `negent_skewness` (adjusted Fisher–Pearson skewness of the
        steps); then the signed breakthroughness and `*_skewness_weighted` (skewness × max|step|, as one
        version of the original weighted it). `complete`: both curves have a value at every budget of their
        grid. A name selects every model or dataset that contains it (case-insensitive); None selects all."""
        keys = list(PROBLEM_CURVE_KEYS)
        table = None
        for prefix, metric in SCORE_METRICS.items():
            scores = self.results.emergence(metric, level="problem")
            part = pd.DataFrame(
                {
                    **{k: scores[k] for k in keys},
                    f"{prefix}_complete": scores["complete"].astype(bool),
                    f"abs_{prefix}_breakthroughness": scores["breakthroughness"].abs(),
                    f"{prefix}_skewness": scores["skewness"],
                    f"{prefix}_breakthroughness": scores["breakthroughness"],
                    f"{prefix}_skewness_weighted": scores["skewness_weighted"],
                }
            )
            table = part if table is None else table.merge(part, on=keys, how="outer")
        table["complete"] = table.pop("probs_complete").eq(True) & table.pop("negent_complete").eq(True)
        table = self._select(table, model_name, dataset_name)
        extra = [f"{p}_{s}" for s in ("breakthroughness", "skewness_weighted") for p in SCORE_METRICS]
        return table[[*keys, "complete", *ORIGINAL_SCORES, *extra]].reset_index(drop=True)

    def get_top_k_max_emergence_samples(
        self,
        model_name: str | None = None,
        dataset_name: str | None = None,
        k: int = 4,
        plot: bool = False,
        save_plots: bool = False,
        *,
        metric: str = DEFAULT_METRIC,
        by: str = DEFAULT_SCORE,
    ) -> pd.DataFrame:
        """The k most emergent problems: distinct (model, dataset, problem) curves of `metric` (default p_correct)
        ranked by the score `by` (default breakthroughness), most emergent first, complete curves only — the
        rows of `emergence.top_k`, as `Results.top_k` gives them. Fewer than k when fewer curves qualify.

        plot displays their curves (accuracy and `metric`, hover: the forced answers); save_plots writes them to
        `results_save_dir/top_<k>_samples[_<model>][_<dataset>].html`. The original summed four scores' ranks
        and took the k largest sums: the least emergent problems."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"Got k={k!r}. Give a positive number of problems.")
        ranked = self.results.comparable().emergence(metric, level="problem")  # one grid for every curve ranked
        top = top_k(self._select(ranked, model_name, dataset_name), k, by=by)
        if plot or save_plots:
            from ttscale.analysis.report import fig_top_k

            fig = fig_top_k(self.results, top, metric, by)
            if save_plots:
                name = "_".join(["top", str(k), "samples", *(_slug(n) for n in (model_name, dataset_name) if n)])
                self._save(fig, name)
            if plot:
                fig.show()
        return top

    def _select(self, table: pd.DataFrame, model_name: str | None, dataset_name: str | None) -> pd.DataFrame:
        """The rows of the models and datasets a name selects (see `matching`)."""
        if model_name is not None:
            table = table[table["model"].isin(matching(self.model_names, model_name, "model"))]
        if dataset_name is not None:
            table = table[table["dataset"].isin(matching(self.dataset_names, dataset_name, "dataset"))]
        return table

    def _save(self, fig: go.Figure, *parts: str) -> Path:
        """Write `fig` as HTML under `results_save_dir`; plotly.js is written once beside it (opens offline)."""
        path = self.results_save_dir.joinpath(*parts).with_suffix(".html")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.write_html(path, include_plotlyjs="directory")
        return path


def matching(names: Sequence[str], query: str, what: str) -> list[str]:
    """The names `query` selects: itself if it is one; else every name containing it (case-insensitive), and for
    datasets the task an original id or short name stands for (Idavidrein/gpqa, aime_2024, ...)."""
    if query in names:
        return [query]
    task = task_for(query) if what == "dataset" else None
    hits = [n for n in names if n == task or query.lower() in n.lower()]
    if not hits:
        raise TtscaleError(f"No {what} matches {query!r}. The {what}s here: {', '.join(names) or 'none'}.")
    return hits


def read_results(paths: str | Path | Sequence[str | Path], **options) -> Results:
    """The rows of every results directory in `paths` as one `Results`, read with pyarrow (no Ray); rows stored
    twice (a directory given twice) are kept once, as `Results.open` does."""
    roots = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not roots:
        raise TtscaleError("Got no paths. Give one or more ttscale results directories (a sweep's output_dir).")
    frames, refinements = [], {}
    for root in roots:
        store = ResultStore(root)
        if not store.row_shards():
            raise TtscaleError(f"{root} holds no result rows (no rows/*.parquet). Give a ttscale results directory.")
        frames.append(store.read_pandas(ANALYSIS_COLUMNS))
        refinements.update(recorded_refinements(store.manifest()))  # budgets `ttscale refine` added
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[~rows.duplicated(["cell_id", "problem_id"])].reset_index(drop=True)
    results = Results.from_frame(rows, **options)
    results.roots, results.refinements = roots, refinements
    return results


def _slug(name: str) -> str:
    """A name as a file-name part: runs of characters other than letters, digits, _ . - become one -."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "unnamed"
