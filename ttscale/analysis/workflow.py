"""The original study's analysis API, `AnalysisWorkflow`, as a thin facade over `Results` (same names, same calls).

    from ttscale.analysis import AnalysisWorkflow

    workflow = AnalysisWorkflow(paths=["results/original_gpqa"], results_save_dir="analysis")
    workflow.aggregate_plots(SHOW=True, SAVE=True)          # scaling curves per (model, dataset), with bands
    scores = workflow.emergence_scores(model_name="deepseek", dataset_name="gpqa")   # per problem
    top = workflow.get_top_k_max_emergence_samples(k=4, plot=True)                   # the k most emergent

Under the original's keys the numbers are the original's (`original_scores`: its breakthroughness clipped to
[0, 100] with flat curves 0, then made absolute; its skewness weighted by the largest step), computed on the
native curves; ttscale's own definitions keep their native names (`p_correct_breakthroughness`, ...). Curves,
scores and the top-k are the native API's (`Results.curves`, `Results.comparable().emergence`, `emergence.top_k`),
one computation for `emergence_scores` and `get_top_k_max_emergence_samples`. What differs from the original is
in docs/migrating.md. Results are read by `Results.open(paths, through_ray=False)` (pyarrow, no Ray);
`from_results` wraps any `Results`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ttscale.analysis.emergence import MIN_RANGE, PROBLEM_CURVE_KEYS, top_k
from ttscale.analysis.notebook import Results
from ttscale.analysis.results import DEFAULT_METRIC, DEFAULT_SCORE
from ttscale.errors import TtscaleError
from ttscale.tasks.original import task_for

if TYPE_CHECKING:
    import plotly.graph_objects as go

SCORE_METRICS = {"probs": "p_correct", "negent": "neg_entropy"}  # the original's prefixes → native metrics
AGGREGATE_METRICS = ("accuracy", "p_correct", "neg_entropy")  # the original's answer score, probability, negentropy
ORIGINAL_SCORES = ("abs_probs_breakthroughness", "abs_negent_breakthroughness", "probs_skewness", "negent_skewness")
NATIVE_SCORES = ("breakthroughness", "skewness", "skewness_weighted")  # beside them, as <metric>_<score>
ORIGINAL_CLIP = 100.0  # the original bounded breakthroughness to [0, 100] ("nan_threshold")


def original_breakthroughness(breakthroughness: pd.Series) -> pd.Series:
    """The original's `abs_*_breakthroughness` from the native score (the same I / (m² · D)): clipped to
    [0, ORIGINAL_CLIP] first, so a falling curve scores 0, a flat one (NaN) 0, and then made absolute."""
    return breakthroughness.clip(0.0, ORIGINAL_CLIP).fillna(0.0).abs()


def original_skewness(skewness_weighted: pd.Series) -> pd.Series:
    """The original's `*_skewness` (its default, `magnitude_weight=True`): the adjusted Fisher–Pearson skewness of
    the steps times the largest |step|, the native `skewness_weighted`."""
    return skewness_weighted


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
        results = Results.open(paths, through_ray=False, n_boot=n_boot, n_sim=n_sim, seed=seed)
        self._use(results, results_save_dir)

    @classmethod
    def from_results(cls, results: Results, results_save_dir: str | Path = "analysis") -> AnalysisWorkflow:
        """A workflow over results already open (e.g. `Results.open(dirs, through_ray=True)`, read through Ray Data)."""
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
        """Per problem (mean over seeds), the original's four scores of p_correct ("probs") and −entropy ("negent")
        with the original's numbers, then ttscale's own under their native names: one row per (model, dataset,
        problem).

        `abs_probs_breakthroughness`, `abs_negent_breakthroughness`: I/(m²·D) clipped to [0, 100] (falling and
        flat curves 0), then absolute, as the original computed them. `probs_skewness`, `negent_skewness`: the
        adjusted Fisher–Pearson skewness of the steps times the largest |step|, the original's default. Then
        `p_correct_breakthroughness` (signed, unclipped, NaN when flat), `p_correct_skewness` (unweighted),
        `p_correct_skewness_weighted`, and the same for `neg_entropy`. `complete`: both curves have a value at
        every budget of their scoring grid. Scores are those `get_top_k_max_emergence_samples` ranks by (one
        computation: `Results.comparable().emergence`, on the doubling budgets every (model, dataset) has). A
        name selects every model or dataset that contains it (case-insensitive); None selects all."""
        keys = list(PROBLEM_CURVE_KEYS)
        table = None
        for prefix, metric in SCORE_METRICS.items():
            scores = self._scores(metric)
            part = pd.DataFrame(
                {
                    **{k: scores[k] for k in keys},
                    f"{prefix}_complete": scores["complete"].astype(bool),
                    f"abs_{prefix}_breakthroughness": original_breakthroughness(scores["breakthroughness"]),
                    f"{prefix}_skewness": original_skewness(scores["skewness_weighted"]),
                    **{f"{metric}_{name}": scores[name] for name in NATIVE_SCORES},
                }
            )
            table = part if table is None else table.merge(part, on=keys, how="outer")
        table["complete"] = table.pop("probs_complete").eq(True) & table.pop("negent_complete").eq(True)
        table = self._select(table, model_name, dataset_name)
        native = [f"{metric}_{name}" for metric in SCORE_METRICS.values() for name in NATIVE_SCORES]
        return table[[*keys, "complete", *ORIGINAL_SCORES, *native]].reset_index(drop=True)

    def _scores(self, metric: str) -> pd.DataFrame:
        """The problem curves' emergence table both `emergence_scores` and the top-k read: on the doubling budgets
        every (model, dataset) has (`Results.comparable`)."""
        return self.results.comparable().emergence(metric, level="problem")

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
        ranking: str = "reviewed",
        min_range: float = MIN_RANGE,
    ) -> pd.DataFrame:
        """The k most emergent problems: distinct (model, dataset, problem) curves of `metric` (default p_correct)
        ranked by the score `by` (default breakthroughness), most emergent first, complete curves only — the
        rows of `emergence.top_k`, as `Results.top_k` gives them: by default (`ranking="reviewed"`) curves moving
        by at least `min_range`, significant first; `ranking="score"` by the score alone. Fewer than k when fewer
        curves qualify.

        plot displays their curves (accuracy and `metric`, hover: the forced answers); save_plots writes them to
        `results_save_dir/top_<k>_samples[_<model>][_<dataset>].html`. The original ranked otherwise
        (docs/migrating.md)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"Got k={k!r}. Give a positive number of problems.")
        top = top_k(self._select(self._scores(metric), model_name, dataset_name), k, by=by, ranking=ranking,
                    min_range=min_range)  # fmt: skip
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


def _slug(name: str) -> str:
    """A name as a file-name part: runs of characters other than letters, digits, _ . - become one -."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "unnamed"
