"""Results too large for one machine: the per-(model, dataset, problem, budget) reduction as Ray Data aggregations
on the cluster, so that only the reduced table (problems × budgets) reaches the driver.

Two shuffles. First, rows are grouped by (model, dataset, problem, budget, vote) — the vote as `votes.vote_codes`
defines it, computed with pyarrow inside each block — into counts and per-column sums. Then those groups are
grouped by (model, dataset, problem, budget): seeds, graded seeds, correct seeds, abstentions, the list of vote
counts of the wrong answers, and each curve metric's sum and count. `ProblemTable` turns that into what
`Results` computes from rows: problem values of every curve metric, maj@k's vote counts and the seeds' tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ttscale.analysis.curves import dataset_curves
from ttscale.analysis.frontier import point_curves, problem_points
from ttscale.analysis.values import PROBLEM_KEYS, pass_at_k
from ttscale.analysis.votes import VoteCounts, padded_counts
from ttscale.metrics import curve_columns, get_metric
from ttscale.store import ResultStore, read_consistently

if TYPE_CHECKING:
    import ray.data

GOLD, ABSTAIN = "\x00gold", "\x00none"  # vote keys of the first shuffle (never an answer's text)
TOKENS = ("thinking_tokens", "answer_tokens")


def _mean_columns() -> list[str]:
    """The columns the reduction sums: every curve metric's column (accuracy's is `correct`), and the tokens."""
    columns = curve_columns()
    return [c for c in columns if c != "correct"] + [c for c in TOKENS if c not in columns]


def _votes(batch: pa.Table) -> pa.Table:
    """Each row's vote (GOLD, ABSTAIN or its normalised wrong answer), as `votes.vote_codes` decides, in pyarrow."""
    answer = pc.replace_substring_regex(batch["answer"], r"\s+", "")
    answer = pc.if_else(pc.equal(answer, ""), pa.scalar(None, pa.string()), answer)
    unfinished = pc.fill_null(batch["unclosed"], False) if "unclosed" in batch.column_names else None
    if unfinished is not None:
        answer = pc.if_else(unfinished, pa.scalar(None, pa.string()), answer)
    key = batch["answer_key"] if "answer_key" in batch.column_names else pa.nulls(len(batch), pa.string())
    vote = pc.fill_null(pc.coalesce(key, answer), ABSTAIN)
    right = pc.fill_null(pc.equal(batch["correct"], 1), False)
    graded = pc.is_valid(batch["correct"])
    vote = pc.if_else(right, GOLD, vote)
    return batch.append_column("vote", vote).append_column("graded", pc.cast(graded, pa.int64()))


def reduce_problems(dirs: str | Path | Sequence[str | Path]) -> ProblemTable:
    """The reduced table of one or more results directories, computed by Ray Data on the cluster this process is
    connected to (or a local one): `ProblemTable`, one row per (model, dataset, problem_id, budget) with seeds,
    graded, correct, abstained, <column>_sum and <column>_count per summed column, and the wrong answers' votes."""
    import ray
    import ray.data

    stores = [ResultStore(d) for d in ([dirs] if isinstance(dirs, (str, Path)) else dirs)]
    columns = [*PROBLEM_KEYS, "correct", "answer", "answer_key", "unclosed", *_mean_columns()]
    if not ray.is_initialized():
        ray.init(log_to_driver=False, include_dashboard=False)

    def reduce() -> pa.Table:  # listed and read at once: a compaction in between lists and reads again
        shards = [str(p) for store in stores for p in store.row_shards()]
        rows: ray.data.Dataset = ray.data.read_parquet(shards, columns=columns)
        partial = rows.map_batches(reduce_block, batch_format="pyarrow", batch_size=None)  # one block at a time
        return pa.concat_tables(ray.get(list(partial.to_arrow_refs())))

    return combine(read_consistently(stores, reduce))


def reduce_block(rows: pa.Table) -> pa.Table:
    """The reduction of one block of rows (pyarrow's hash group-by, in the Ray task that read it): what leaves the
    node is one row per (model, dataset, problem, budget) of the block, not its rows."""
    summed = [c for c in _mean_columns() if c in rows.column_names]
    votes = _votes(rows).group_by([*PROBLEM_KEYS, "vote"], use_threads=False).aggregate(
        [("vote", "count"), ("graded", "sum"), *((c, "sum") for c in summed), *((c, "count") for c in summed)]
    )  # columns: <column>_<function>, then the keys
    first = {"vote_count": "n", "graded_sum": "graded"}
    votes = _split_votes(votes.rename_columns([first.get(n, n) for n in votes.column_names]))
    per_problem = votes.group_by(list(PROBLEM_KEYS), use_threads=False).aggregate(
        [("n", "sum"), ("graded", "sum"), ("correct", "sum"), ("abstained", "sum"), ("wrong_n", "list"),
         *((f"{c}_{part}", "sum") for c in summed for part in ("sum", "count"))]
    )  # fmt: skip
    second = {"n_sum": "seeds", "wrong_n_list": "wrong"}
    return per_problem.rename_columns([second.get(n, n.removesuffix("_sum")) if n.endswith("_sum") or n in second
                                       else n for n in per_problem.column_names])  # fmt: skip


def combine(partial: pa.Table) -> ProblemTable:
    """Partial reductions of several blocks as one table sorted by (model, dataset, problem, budget): a group whose
    rows lay in several blocks (a unit retried in part, results directories given together) is summed and its
    wrong answers' votes joined. The votes become a 0-padded matrix, never a Python list per group."""
    lists = partial.column("wrong").combine_chunks()
    parent = pc.list_parent_indices(lists).to_numpy()
    votes = pc.list_flatten(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    frame = partial.drop_columns(["wrong"]).to_pandas()
    group = frame.groupby(list(PROBLEM_KEYS), sort=True, observed=True).ngroup().to_numpy()
    groups = int(group.max()) + 1 if len(group) else 0
    if groups < len(frame):  # some group came from several blocks
        frame = frame.groupby(list(PROBLEM_KEYS), sort=True, observed=True).sum(min_count=1).reset_index()
    else:
        frame = frame.iloc[np.argsort(group, kind="stable")].reset_index(drop=True)
    return ProblemTable(frame, padded_counts(group[parent], votes, groups))


def _split_votes(batch: pa.Table) -> pa.Table:
    """Per vote group: its graded seeds counted as correct, abstained, or one wrong answer's votes."""
    graded = batch["graded"]
    zero = pa.scalar(0, pa.int64())
    correct = pc.if_else(pc.equal(batch["vote"], GOLD), graded, zero)
    abstained = pc.if_else(pc.equal(batch["vote"], ABSTAIN), graded, zero)
    wrong = pc.subtract(pc.subtract(graded, correct), abstained)
    return batch.append_column("correct", correct).append_column("abstained", abstained).append_column("wrong_n", wrong)


@dataclass(frozen=True, eq=False)
class ProblemTable:
    """The reduced table of `reduce_problems`, answering what `Results` answers from rows for curves and maj@k."""

    table: pd.DataFrame  # sorted by (model, dataset, problem_id, budget)
    wrong: np.ndarray  # (len(table), W): each group's votes per wrong answer, most first, 0-padded

    @property
    def keys(self) -> pd.DataFrame:
        return self.table[list(PROBLEM_KEYS)]

    def problem_values(self, metric: str) -> pd.DataFrame:
        """As `values.problem_values`: one value per (model, dataset, problem, budget) of a curve metric."""
        spec = get_metric(metric)
        t = self.table
        if spec.k is not None:
            value = pass_at_k(t["graded"], t["correct"], spec.k)
        elif spec.column == "correct":
            value = (t["correct"] / t["graded"].where(t["graded"] > 0)).to_numpy() * spec.sign
        else:
            count = t[f"{spec.column}_count"].where(t[f"{spec.column}_count"] > 0)
            value = (t[f"{spec.column}_sum"] / count).to_numpy() * spec.sign
        out = self.keys.assign(value=np.asarray(value, dtype=np.float64))
        out["budget"] = out["budget"].astype(np.int64)
        return out

    def vote_counts(self) -> VoteCounts:
        """As `votes.vote_counts` (groups with a graded seed)."""
        graded = (self.table["graded"] > 0).to_numpy()
        t = self.table[graded]
        return VoteCounts(t[list(PROBLEM_KEYS)].reset_index(drop=True), t["correct"].to_numpy(np.int64),
                          t["abstained"].to_numpy(np.int64), self.wrong[graded])  # fmt: skip

    def seed_tokens(self) -> pd.DataFrame:
        """As `frontier.seed_tokens`: the mean tokens a seed spent per (model, dataset, budget)."""
        t = self.table
        keys = ["model", "dataset", "budget"]
        spent = t[[f"{c}_sum" for c in TOKENS]].sum(axis=1).groupby([t[k] for k in keys]).sum()
        out = (spent / t.groupby(keys)["seeds"].sum()).rename("tokens_per_seed").reset_index()
        out["budget"] = out["budget"].astype(np.int64)
        return out

    def curves(self, metric: str, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
        """Dataset curves with bootstrap bands over problems, as `Results.curves`."""
        return dataset_curves(self.problem_values(metric), n_boot=n_boot, seed=seed)

    def parallel(self, metric: str = "maj", *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
        """Every (budget, k) point with its band and cost, as `Results.parallel`."""
        return point_curves(problem_points(self.vote_counts(), metric), self.seed_tokens(), n_boot=n_boot, seed=seed)
