"""Result rows and their analyses: open one or more results directories and ask for curves, emergence and top-k
problems (the notebook's `ttscale.analysis.Results` adds the report, analysis/notebook.py)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ttscale.analysis.grids import ScoringGrid, scoring_grid
from ttscale.errors import TtscaleError, TtscaleWarning
from ttscale.metrics import curve_columns
from ttscale.store import ResultStore, refinement_budgets

# What analysis reads: never the per-row distributions (1000 floats each) nor the reasoning text. A DataFrame given
# to Results.from_frame may lack `unclosed` (the forced \boxed{ never closed) and `truncated` (cut by the answer cap):
# the report then says they are not counted.
ANALYSIS_COLUMNS = [
    "model", "dataset", "problem_id", "seed", "budget", "cell_id", "trajectory_id", "config_id", "family",
    *dict.fromkeys(["answer", "answer_key", "correct", "gold", *curve_columns(), "thinking_tokens", "answer_tokens"]),
    "continuations", "natural_end", "trajectory_mode", "thinking_chars", "unclosed", "truncated",
]  # fmt: skip  (the curve metrics' columns: ttscale/metrics.py; answer_key and tokens: maj@k and cost, METHOD.md §6b)
# Few distinct values in many rows: categoricals make every group-by and comparison on them cheap (1M rows, 24
# (model, dataset) pairs, 650 problems each); the answers repeat across seeds and budgets.
CATEGORY_COLUMNS = ("model", "dataset", "problem_id", "config_id", "family", "trajectory_mode", "gold", "answer",
                    "answer_key")  # fmt: skip
DEFAULT_METRIC = "p_correct"
DEFAULT_SCORE = "breakthroughness"


@dataclass
class Results:
    """Result rows of one or more results directories (or a DataFrame), with cached analyses.

    Every view that makes new results (`open`, `from_frame`, `on_grid`, `comparable`) makes them of this class, so
    a subclass (`ttscale.analysis.Results`, with `report`) stays one."""

    rows: pd.DataFrame
    roots: list[Path] = field(default_factory=list)
    n_boot: int = 1000
    n_sim: int = 200
    seed: int = 0
    refinements: dict[tuple[str, str], tuple[int, ...]] = field(default_factory=dict)  # budgets refine added
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, dirs: str | Path | Sequence[str | Path], *, through_ray: bool = False, **options) -> Results:
        """Read every results directory (with pyarrow in this process, only ANALYSIS_COLUMNS; `through_ray=True`:
        through Ray Data) and combine them into one view: rows stored twice kept once, every directory's recorded
        refinements merged. On one machine pyarrow is the faster reader (no Ray to start, no copies between
        processes); a study too large for one machine's memory is reduced on the cluster first (analysis/reduce.py)."""
        roots = [Path(dirs)] if isinstance(dirs, (str, Path)) else [Path(d) for d in dirs]
        if not roots:
            raise TtscaleError("Got no results directory. Give one or more (a sweep's output_dir).")
        frames, refinements = [], {}
        for root in roots:
            store = ResultStore(root)
            if not store.row_shards():
                raise TtscaleError(
                    f"{root} holds no result rows (no rows/*.parquet). Give a ttscale results directory."
                )
            if through_ray:  # read while listed: a compaction in between lists and reads again
                rows = store.read_consistently(lambda store=store: store.read(columns=ANALYSIS_COLUMNS).to_pandas())
                frames.append(categorical_keys(rows))
            else:
                frames.append(analysis_frame(store.read_table(ANALYSIS_COLUMNS)))
            for pair, budgets in recorded_refinements(store.manifest()).items():
                refinements[pair] = tuple(sorted({*refinements.get(pair, ()), *budgets}))
        rows = pd.concat(frames, ignore_index=True)
        duplicated = rows.duplicated(["cell_id", "problem_id"])
        if duplicated.any():  # the same results directory given twice, or copies of the same shards
            rows = rows[~duplicated].reset_index(drop=True)
        return cls(rows=categorical_keys(split_configs(rows)), roots=roots, refinements=refinements, **options)

    @classmethod
    def from_frame(cls, rows: pd.DataFrame, **options) -> Results:
        """Result rows already in pandas (e.g. `ResultStore.read_pandas()`), with configs split as in `open`."""
        return cls(rows=categorical_keys(split_configs(rows.reset_index(drop=True))), **options)

    # -- views ------------------------------------------------------------------------------------------

    def problem_values(self, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
        """One value per (model, dataset, problem, budget): the metric averaged over seeds."""
        from ttscale.analysis.values import problem_groups, problem_values

        groups = self._cached(("problem_groups",), lambda: problem_groups(self.rows))
        return self._cached(("values", metric), lambda: problem_values(self.rows, metric, groups))

    def curves(self, metric: str = DEFAULT_METRIC, by: str = "dataset") -> pd.DataFrame:
        """Scaling curves: `by="dataset"` (mean over problems, 95% bootstrap bands) or `by="problem"`."""
        from ttscale.analysis.curves import dataset_curves

        if by == "problem":
            return self.problem_values(metric)
        if by != "dataset":
            raise ValueError(f"Got by={by!r}. Use 'dataset' or 'problem'.")
        return self._cached(
            ("curves", metric),
            lambda: dataset_curves(self.problem_values(metric), n_boot=self.n_boot, seed=self.seed),
        )

    def emergence(self, metric: str = DEFAULT_METRIC, level: str = "problem") -> pd.DataFrame:
        """Emergence scores, fits and p-values for every curve at `level` ("problem" or "dataset")."""
        from ttscale.analysis.emergence import emergence_table

        if level == "problem":
            curves, keys = self.problem_values(metric), ["model", "dataset", "problem_id"]
        elif level == "dataset":
            curves, keys = self.curves(metric, by="dataset"), ["model", "dataset"]
        else:
            raise ValueError(f"Got level={level!r}. Use 'problem' or 'dataset'.")
        self._warn_uneven_grids()
        return self._cached(
            ("emergence", metric, level),
            lambda: emergence_table(curves, keys=keys, n_sim=self.n_sim, seed=self.seed, refined=self.refinements),
        )

    def top_k(
        self,
        k: int = 10,
        by: str = DEFAULT_SCORE,
        metric: str = DEFAULT_METRIC,
        *,
        complete_only: bool = True,
        ranking: str = "reviewed",
        min_range: float | None = None,
    ) -> pd.DataFrame:
        """The k most emergent problems by `by` on `metric`'s per-problem curves, ranked as `emergence.top_k`
        ranks: by default curves moving by at least `min_range` (default `emergence.MIN_RANGE`), significant
        first, then by the oriented score; `ranking="score"` for the scale-free order alone.

        Only complete curves (a value at every budget of their scoring grid) are ranked unless
        `complete_only=False`. A ranking compares curves, so it is made on the doubling budgets every (model,
        dataset) has (`comparable`); budgets `ttscale refine` added change no score, only where the jump lies.
        """
        from ttscale.analysis.emergence import MIN_RANGE, top_k

        table = self.comparable().emergence(metric, level="problem")
        return top_k(table, k, by=by, complete_only=complete_only, ranking=ranking,
                     min_range=MIN_RANGE if min_range is None else min_range)  # fmt: skip

    # -- sequential vs parallel compute (METHOD.md §6b) ------------------------------------------------------

    def parallel(self, metric: str = "maj", by: str = "dataset") -> pd.DataFrame:
        """Every (budget, k) point, k = 1…seeds: `metric` ("maj" for maj@k, "pass" for pass@k, or "accuracy") per
        problem (`by="problem"`), or per (model, dataset) with its 95% bootstrap band over problems and its cost,
        k × the tokens a seed spent at that budget (`by="dataset"`)."""
        from ttscale.analysis.frontier import check_metric, point_curves, problem_points, seed_tokens
        from ttscale.analysis.votes import vote_counts

        check_metric(metric)
        counts = self._cached(("votes",), lambda: vote_counts(self.rows))
        points = self._cached(("points", metric), lambda: problem_points(counts, metric))
        if by == "problem":
            return points
        if by != "dataset":
            raise ValueError(f"Got by={by!r}. Use 'dataset' or 'problem'.")
        return self._cached(
            ("parallel", metric),
            lambda: point_curves(points, self._cached(("seed_tokens",), lambda: seed_tokens(self.rows)),
                                 n_boot=self.n_boot, seed=self.seed),
        )

    def frontier(self, metric: str = "maj") -> pd.DataFrame:
        """The compute frontier of each (model, dataset): at each measured cost, the best `metric` at or below it
        over every (budget, k), the (budget, k) reaching it, and that point's band."""
        from ttscale.analysis.frontier import frontier_table

        return self._cached(("frontier", metric), lambda: frontier_table(self.parallel(metric)))

    def frontier_emergence(self, metric: str = "maj", grid: str = "doubling") -> pd.DataFrame:
        """Emergence scores and p-values of each (model, dataset)'s k = 1 curve (over log2 B) and of its frontier
        (over log2 cost, on a doubling grid of costs by default), with the sentence that compares them (`answer`,
        on the frontier's row): is a jump along k = 1 still one on the frontier?"""
        from ttscale.analysis.frontier import frontier_scores, with_answers

        return self._cached(
            ("frontier_emergence", metric, grid),
            lambda: with_answers(frontier_scores(self.parallel(metric), n_sim=self.n_sim, seed=self.seed, grid=grid,
                                                 steps=self.frontier(metric))),
        )

    # -- budget grids --------------------------------------------------------------------------------------

    def grids(self) -> dict[tuple[str, str], tuple[int, ...]]:
        """(model, dataset) → its budget grid: every budget with a row, sorted (refined grids have more)."""
        return self._cached(("grids",), lambda: budget_grids(self.rows))

    def scoring_grids(self) -> dict[tuple[str, str], ScoringGrid]:
        """(model, dataset) → the budgets its emergence scores use (`grids.scoring_grid`): its doubling budgets,
        leaving out those `ttscale refine` recorded adding; the others only locate the jump."""
        return self._cached(
            ("scoring_grids",),
            lambda: {pair: scoring_grid(grid, self.refinements.get(pair, ())) for pair, grid in self.grids().items()},
        )

    def shared_grid(self) -> tuple[int, ...]:
        """The scoring budgets every (model, dataset) has: where their scores can be compared."""
        grids = [grid.budgets for grid in self.scoring_grids().values()]
        return tuple(sorted(set(grids[0]).intersection(*grids[1:]))) if grids else ()

    def refined_pairs(self) -> dict[tuple[str, str], tuple[int, ...]]:
        """(model, dataset) → the budgets on its grid beyond its scoring grid (those `ttscale refine` added: they
        locate the jump and change no score). Pairs with none are left out."""
        out = {}
        for pair, grid in self.grids().items():
            scoring = set(self.scoring_grids()[pair].budgets)
            added = tuple(b for b in grid if b not in scoring)
            if added:
                out[pair] = added
        return out

    def on_grid(self, budgets: Sequence[int]) -> Results:
        """These results restricted to `budgets` (same options and recorded refinements, own cache)."""
        return self._subset(self.rows["budget"].isin(list(budgets)))

    def comparable(self) -> Results:
        """What comparisons across (model, dataset) use: these results when every scoring grid is the same, else
        the shared scoring budgets, each pair keeping the refined budgets between them (they locate jumps).
        Scores depend on the number of steps (breakthroughness on m steps lies in [1/m, 1]), so a curve scored on
        more budgets is not comparable with one on fewer. With fewer than two shared budgets, each curve keeps
        its own grid (with a warning)."""
        shared = self.shared_grid()
        if len({grid.budgets for grid in self.scoring_grids().values()}) <= 1:
            return self
        if len(shared) < 2:
            warnings.warn(
                f"the (model, dataset) budget grids share {len(shared)} budget(s): scores are compared across "
                "different grids. Run the same budgets (or refine) for a like-for-like comparison.",
                TtscaleWarning,
                stacklevel=3,
            )
            return self
        return self._cached(("comparable",), lambda: self._on_shared_grid(shared))

    def _on_shared_grid(self, shared: tuple[int, ...]) -> Results:
        """The rows at the shared scoring budgets, and each pair's refined budgets strictly between them."""
        lo, hi = shared[0], shared[-1]
        keep = self.rows["budget"].isin(shared)
        for (model, dataset), added in self.refined_pairs().items():
            inside = [b for b in added if lo < b < hi]
            keep |= (self.rows["model"] == model) & (self.rows["dataset"] == dataset) & self.rows["budget"].isin(inside)
        return self._subset(keep)

    def _subset(self, keep: pd.Series) -> Results:
        """These results on the rows `keep` selects: same options and recorded refinements, own cache."""
        rows = self.rows[keep].reset_index(drop=True)
        return type(self)(rows=rows, roots=self.roots, n_boot=self.n_boot, n_sim=self.n_sim, seed=self.seed,
                          refinements=self.refinements)  # fmt: skip

    def _warn_uneven_grids(self) -> None:
        """Say once which (model, dataset) grids are not doubling grids: their scores count uneven steps."""
        uneven = [f"{m} · {d} {list(g.budgets)}" for (m, d), g in self.scoring_grids().items()
                  if not g.doubling and len(g.budgets) > 2]  # fmt: skip
        if uneven and not self._cache.get(("warned_uneven",)):
            self._cache[("warned_uneven",)] = True
            warnings.warn(
                f"not a doubling grid: {'; '.join(uneven)}. Emergence scores count steps between budgets, so "
                "they are comparable only on doubling grids (B, 2B, 4B, ...): sweep such budgets and refine them.",
                TtscaleWarning,
                stacklevel=4,
            )

    def answers(self, model: str, dataset: str, problem_id: str) -> pd.DataFrame:
        """The forced answer and correctness of one problem at each budget and seed."""
        where = self._cached(  # each problem's row positions, found once (the report asks for one problem at a time)
            ("problem_rows",),
            lambda: self.rows.groupby(["model", "dataset", "problem_id"], observed=True, sort=False).indices,
        )
        sel = self.rows.iloc[where.get((model, dataset, problem_id), [])]
        return sel.sort_values(["seed", "budget"])[["seed", "budget", "answer", "correct", "gold", "thinking_tokens"]]

    def _cached(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


def analysis_frame(table: pa.Table) -> pd.DataFrame:
    """Rows read with pyarrow as pandas, CATEGORY_COLUMNS dictionary-encoded first (pandas categoricals)."""
    for name in CATEGORY_COLUMNS:
        i = table.schema.get_field_index(name)
        if i >= 0 and not pa.types.is_dictionary(table.schema.field(i).type):
            table = table.set_column(i, name, table.column(i).dictionary_encode())
    rows = table.to_pandas()
    for name in CATEGORY_COLUMNS:  # categories in sorted order, as `categorical_keys` makes them: tables sort alike
        if name in rows.columns and isinstance(rows[name].dtype, pd.CategoricalDtype):
            rows[name] = rows[name].cat.reorder_categories(sorted(rows[name].cat.categories))
    return rows


def categorical_keys(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with CATEGORY_COLUMNS as pandas categoricals of pandas' own strings (whichever reader made them)."""
    plain = [c for c in CATEGORY_COLUMNS if c in rows.columns and not isinstance(rows[c].dtype, pd.CategoricalDtype)]
    if not plain:
        return rows
    return rows.astype({c: "str" for c in plain}).astype({c: "category" for c in plain})


LEGACY_CONFIG = "unknown"  # the config of rows that carry no config id
CONFIG_CHARS = 8  # of the config id, in split model names


def split_configs(rows: pd.DataFrame) -> pd.DataFrame:
    """Give each config of a model its own name ("model@<config id>") when one name ran under several.

    Changing a forcing string or the sampling makes new cell ids, so both runs' rows stay in the store;
    averaging them into one curve would be a silent mix. Models with a single config keep their name."""
    if "config_id" not in rows or rows.empty:
        return rows
    config = rows["config_id"].astype(object).fillna(LEGACY_CONFIG)  # rows written before config ids existed
    configs = config.groupby(rows["model"].astype(str)).nunique()
    mixed = configs[configs > 1].index
    if len(mixed) == 0:
        return rows
    rows = rows.copy()
    rows["model"] = rows["model"].astype(str)
    where = rows["model"].isin(mixed)
    rows.loc[where, "model"] = rows.loc[where, "model"] + "@" + config[where].astype(str).str[:CONFIG_CHARS]
    warnings.warn(
        f"{', '.join(map(str, mixed))}: rows from several configs (forcing, sampling or family strings "
        "differ); analysed as separate models named model@<config id>. Compare the `config` column of the rows.",
        TtscaleWarning,
        stacklevel=3,
    )
    return rows


def recorded_refinements(manifest: dict | None) -> dict[tuple[str, str], tuple[int, ...]]:
    """(model, dataset) → the budgets the refinements in a manifest added to its grid."""
    return refinement_budgets(manifest, ("model", "dataset"))


def budget_grids(rows: pd.DataFrame) -> dict[tuple[str, str], tuple[int, ...]]:
    """(model, dataset) → the sorted budgets at which it has rows."""
    if rows.empty:
        return {}
    pairs = rows.groupby(["model", "dataset"], sort=True, observed=True)["budget"].unique()
    return {(str(m), str(d)): tuple(sorted(int(b) for b in budgets)) for (m, d), budgets in pairs.items()}


def parameter_count(model: str) -> float | None:
    """Billions of parameters read from a model name ("...-Qwen-7B" → 7.0, "smollm2-135m" → 0.135); a config
    suffix ("name@<config id>", see `split_configs`) is not part of the name."""
    name = model.split("@", 1)[0].replace("_", "-")
    match = re.search(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)\s*([bBmM])(?![A-Za-z])", name)
    if not match:
        return None
    value = float(match.group(1))
    return value if match.group(2) in "bB" else value / 1000.0


def model_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per model: its family and parameter count (billions, NaN when the name does not say)."""
    models = rows.groupby("model", as_index=False).agg(family=("family", "first"))
    models["params_b"] = [parameter_count(m) or np.nan for m in models.model]
    return models
