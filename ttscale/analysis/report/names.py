"""How the report names and picks metrics and datasets: the metric lists (read from the registry,
ttscale/metrics.py), their labels and datasets' short names."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import PurePosixPath

import pandas as pd

from ttscale.errors import ConfigError, TtscaleWarning
from ttscale.metrics import METRICS, get_metric, shown_metrics
from ttscale.tasks.sources import FILE_SUFFIXES  # the endings of local dataset files

DISCRETE = "accuracy"  # the discrete metric every curve figure and fallback uses
CONTINUOUS = tuple(shown_metrics(discrete=False))  # the continuous metrics of the registry (ttscale/metrics.py)
RANKABLE = (DISCRETE, *CONTINUOUS)  # the metrics `metric=` (analyze --metric) may rank problems by
TOKENS = "thinking_tokens"


def ranking_metric(rows: pd.DataFrame, metric: str) -> str:
    """`metric` if it is RANKABLE and has values here; accuracy (with a warning) if it has none."""
    if metric not in RANKABLE:
        raise ConfigError(f"Unknown metric {metric!r} for the report. Use one of: {', '.join(RANKABLE)}.")
    if metric == DISCRETE or _has(rows, metric):
        return metric
    warnings.warn(
        f"metric {metric!r} has no values in these results (no solution set?); ranking by accuracy instead.",
        TtscaleWarning,
        stacklevel=3,
    )
    return DISCRETE


def curve_metrics(rows: pd.DataFrame, pass_k: int) -> list[str]:
    """The metrics of the curves table, in figure order: accuracy, pass@k, continuous, thinking tokens.

    pass@k is left out when k is 1 (pass@1 is accuracy); a metric whose column is absent or all null is too.
    """
    discrete = [DISCRETE, *([f"pass@{pass_k}"] if pass_k >= 2 else [])]
    return [m for m in (*discrete, *CONTINUOUS, TOKENS) if _has(rows, m)]


def label(metric: str) -> str:
    """How a metric is named in the report ("pass@4" stays as it is)."""
    return METRICS[metric].label if metric in METRICS else metric


def distinct(values: Iterable) -> set[str]:
    """The distinct values as strings; a pandas column is reduced to its unique values first (a million rows)."""
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.unique()
    return {str(v) for v in values}


def dataset_labels(datasets: Iterable[str]) -> dict[str, str]:
    """Short display names of datasets: a dataset file's stem ("/home/u/data/aime_local.jsonl" → "aime_local").

    Labels that collide get their parent directories, one at a time, until they differ ("a/test", "b/test");
    names that are not file paths (registered names, hub ids) stay as they are. Tables and hover text keep
    the full name.
    """
    names = sorted(distinct(datasets))
    depth = dict.fromkeys(names, 0)
    while True:
        labels = {name: _short_name(name, depth[name]) for name in names}
        counts = Counter(labels.values())
        deeper = [n for n in names if counts[labels[n]] > 1 and _short_name(n, depth[n] + 1) != labels[n]]
        if not deeper:
            return {n: labels[n] if counts[labels[n]] == 1 else n for n in names}
        for name in deeper:
            depth[name] += 1


def _short_name(name: str, parents: int) -> str:
    """A dataset file's stem after its last `parents` directories ("data/aime_local"); other names unchanged."""
    path = PurePosixPath(name.replace("\\", "/"))
    is_file = path.suffix.lower() in FILE_SUFFIXES or name.startswith(("/", "./", "../", "~"))
    if not is_file:
        return name
    stem = path.name[: -len(path.suffix)] if path.suffix.lower() in FILE_SUFFIXES else path.name
    directories = [part for part in path.parent.parts if part not in ("/", ".")]
    return "/".join([*directories[len(directories) - parents :], stem] if parents else [stem])


def _has(rows: pd.DataFrame, metric: str) -> bool:
    column = get_metric(metric).column
    return column in rows and rows[column].notna().any()
