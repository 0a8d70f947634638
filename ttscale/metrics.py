"""The metric registry: each metric declared once, read by the row schema, the runner, the analysis and the report.

A `Metric` says where its values live (a row column and its Arrow type), whether it is discrete (few values per
problem, METHOD.md §4) or continuous (§5), how a scored answer gives its value (for metrics over the solution set),
and how the report names and orients it. The row schema (ttscale/store.py), the runner's rows, the curves
(ttscale/analysis/values.py), the report, `ttscale refine --metric`, `ttscale analyze --metric` and the explorer
read this registry; adding a continuous metric is one declaration here plus its function (CONTRIBUTING.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class SetScore:
    """One forced answer scored over the solution set S: what a continuous metric is computed from."""

    logp: np.ndarray  # (|S|,) log P(c), unnormalised, from the engine's raw logits at temperature 1
    gold_index: int | None  # the gold's candidate in S; None when the gold is not in the set

    @cached_property
    def log_mass(self) -> float:
        """log Σ_c P(c): the probability landing on well-formed answers, in log space."""
        top = float(np.max(self.logp))
        if not math.isfinite(top):
            return top
        return top + math.log(float(np.sum(np.exp(self.logp - top))))

    @cached_property
    def logq(self) -> np.ndarray:
        """log q(c), q = P normalised over S (computed in log space: no underflow)."""
        return self.logp - self.log_mass

    @cached_property
    def q(self) -> np.ndarray:
        return np.exp(self.logq)


ComputeFn = Callable[[SetScore], "float | int"]


@dataclass(frozen=True)
class Metric:
    """One metric, declared once (see the module docstring)."""

    name: str  # what curves, the report, --metric and the explorer call it
    column: str  # the row column its per-answer values are stored in
    discrete: bool  # takes few values per problem (accuracy over n seeds is a multiple of 1/n)
    label: str  # the report's and explorer's axis label
    description: str
    sign: float = 1.0  # direction: the column times `sign` is larger-is-better (neg_entropy = −entropy)
    arrow_type: str = "float64"  # the column's type in the row schema (a pyarrow type name)
    compute: ComputeFn | None = None  # its value for one answer scored over the solution set; None: not a set metric
    needs_gold: bool = False  # null when the gold is not in the set
    curve: bool = True  # offered as a curve metric; False: a stored column only
    shown: bool = True  # drawn in the report's curves and rankable by `analyze --metric`
    k: int | None = None  # pass@k only

    @property
    def over_set(self) -> bool:
        """Computed over the solution set (continuous, METHOD.md §5), rather than from grading or forcing."""
        return self.compute is not None

    def value(self, score: SetScore) -> float | int | None:
        """This metric of one scored answer (None when it needs the gold and the gold is not in the set)."""
        assert self.compute is not None, f"{self.name} is not computed over the solution set"
        if self.needs_gold and score.gold_index is None:
            return None
        return self.compute(score)


# -- the continuous metrics over the solution set (METHOD.md §5) ------------------------------------------------


def p_correct(s: SetScore) -> float:
    """q(gold)."""
    return float(s.q[s.gold_index])


def logp_correct(s: SetScore) -> float:
    """log q(gold), in nats."""
    return float(s.logq[s.gold_index])


def gold_rank(s: SetScore) -> int:
    """1 = the most likely candidate; ties share the best rank."""
    return int(np.sum(s.logp > s.logp[s.gold_index])) + 1


def entropy(s: SetScore) -> float:
    """−Σ q ln q, in nats."""
    return float(-np.sum(np.where(s.q > 0, s.q * s.logq, 0.0)))


def entropy_norm(s: SetScore) -> float:
    """Entropy / ln|S|, in [0, 1]."""
    size = len(s.logp)
    return entropy(s) / math.log(size) if size > 1 else 0.0


def brier(s: SetScore) -> float:
    """Σ_c (q(c) − 1[c = gold])²."""
    onehot = np.zeros(len(s.logp))
    onehot[s.gold_index] = 1.0
    return float(np.sum((s.q - onehot) ** 2))


def mass_on_set(s: SetScore) -> float:
    """Σ_c P(c), unnormalised."""
    return float(math.exp(s.log_mass))


METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Declare a metric (ttscale's own below; CONTRIBUTING.md shows a new one). A name is declared once."""
    if metric.name in METRICS:
        raise ValueError(f"a metric called {metric.name!r} is already declared")
    METRICS[metric.name] = metric
    return metric


for _metric in [
    # discrete, from grading (METHOD.md §4)
    Metric("accuracy", "correct", True, "accuracy", "mean of `correct` over seeds (METHOD §4)", arrow_type="int8"),
    Metric(
        "pass@k", "correct", True, "pass@k", "unbiased pass@k over seeds; ask for e.g. 'pass@4' (METHOD §4)",
        arrow_type="int8", shown=False,
    ),
    # continuous, over the solution set (METHOD.md §5), in row-schema order
    Metric(
        "p_correct", "p_correct", False, "p(correct)", "q(gold), the normalised probability of the gold (METHOD §5)",
        compute=p_correct, needs_gold=True,
    ),
    Metric(
        "logp_correct", "logp_correct", False, "log p(correct)", "log q(gold) in nats (no underflow)",
        compute=logp_correct, needs_gold=True, curve=False,
    ),
    Metric(
        "rank", "rank", False, "rank of the gold", "the gold's rank in q (1 = most likely)",
        arrow_type="int32", compute=gold_rank, needs_gold=True, curve=False,
    ),
    Metric(
        "neg_entropy", "entropy", False, "−entropy (nats)", "−entropy (nats) of q over the solution set",
        sign=-1.0, compute=entropy,
    ),
    Metric(
        "entropy_norm", "entropy_norm", False, "entropy / ln|S|", "entropy normalised to [0, 1]",
        compute=entropy_norm, curve=False,
    ),
    Metric(
        "neg_brier", "brier", False, "−Brier", "−Brier score of q against the gold",
        sign=-1.0, compute=brier, needs_gold=True,
    ),
    Metric(
        "mass_on_set", "mass_on_set", False, "mass on set", "unnormalised probability mass on the solution set",
        compute=mass_on_set,
    ),
    # from forcing (METHOD.md §3)
    Metric(
        "thinking_tokens", "thinking_tokens", False, "thinking tokens", "real model thinking tokens in the prefix",
        arrow_type="int32", shown=False,
    ),
]:  # fmt: skip
    register_metric(_metric)

_PASS_AT_K = re.compile(r"pass@(\d+)")


def get_metric(name: str) -> Metric:
    """The curve metric called `name`; "pass@4" gives pass@k with k = 4. Unknown names raise ValueError."""
    if name in METRICS and name != "pass@k" and METRICS[name].curve:
        return METRICS[name]
    match = _PASS_AT_K.fullmatch(name)
    if match and int(match.group(1)) >= 1:
        return replace(METRICS["pass@k"], name=name, k=int(match.group(1)))
    known = ", ".join(n if n != "pass@k" else "pass@<k> (e.g. pass@4)" for n in curve_metric_names())
    raise ValueError(f"Unknown metric {name!r}. Known: {known}.")


def curve_metric_names() -> list[str]:
    """Every curve metric's name, in declaration order (pass@k as the template "pass@k")."""
    return [m.name for m in METRICS.values() if m.curve]


def curve_columns() -> list[str]:
    """The row columns the curve metrics read, each once, in declaration order."""
    return list(dict.fromkeys(m.column for m in METRICS.values() if m.curve))


def shown_metrics(*, discrete: bool) -> list[str]:
    """The metrics the report draws and `analyze --metric` may rank by: the discrete or the continuous ones."""
    return [m.name for m in METRICS.values() if m.curve and m.shown and m.discrete == discrete]


def named_list(names: list[str]) -> str:
    """"a, b or c": metric names as help texts and errors list them."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def set_metrics_declared() -> list[Metric]:
    """The metrics computed per answer over the solution set, in row-schema order."""
    return [m for m in METRICS.values() if m.over_set]


class SetMetrics:
    """Every set metric of one forced answer (attributes by column: `.p_correct`, `.rank`, ...) and q itself."""

    def __init__(self, columns: dict[str, Any], distribution: np.ndarray) -> None:
        self.columns = columns  # column -> value, as a result row stores it
        self.distribution = distribution  # q as float32, aligned with the solution set's candidates

    def __getattr__(self, column: str) -> Any:
        try:
            return self.__dict__["columns"][column]
        except KeyError:
            raise AttributeError(column) from None


def set_metrics(logp: np.ndarray, gold_index: int | None) -> SetMetrics:
    """Normalise candidate log-probs over the set and compute every declared set metric; gold-dependent ones are
    None when the gold is not in the set."""
    score = SetScore(np.asarray(logp, dtype=np.float64), gold_index)
    columns = {m.column: m.value(score) for m in set_metrics_declared()}
    return SetMetrics(columns, score.q.astype(np.float32))
