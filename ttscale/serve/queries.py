"""The explorer's JSON answers, computed from an index snapshot: runs, curves, the emergence table, sequential vs
parallel compute, one problem."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttscale.analysis.emergence import MIN_RANGE, RANKINGS, top_k, unranked
from ttscale.analysis.frontier import PARALLEL_METRICS, check_metric
from ttscale.analysis.report import curve_metrics, dataset_labels, label
from ttscale.analysis.values import default_pass_k, problem_values
from ttscale.errors import TtscaleError
from ttscale.metrics import get_metric
from ttscale.schema import ROW_SCHEMA
from ttscale.serve.index import COMPUTE, CURVES, RANKED, NotFound, ResultsIndex, Snapshot
from ttscale.store import read_shard

TOP_ANSWERS = 5  # answers of the solution-set distribution shown per budget
MAX_LIMIT = 500  # emergence rows per page
POINT_COLUMNS = ("k", "budget", "cost", "value", "lo", "hi", "n_problems", "tokens_per_seed")
FRONTIER_COLUMNS = ("cost", "value", "budget", "k", "lo", "hi")
SCORE_COLUMNS = ("curve", "n_points", "breakthroughness", "p_breakthroughness", "parallel_points")


def jsonable(value: Any) -> Any:
    """NaN and missing become null, ±inf the strings "inf"/"-inf" (JSON has no infinities), numpy scalars Python."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [jsonable(r) for r in frame.to_dict("records")]


def options(snap: Snapshot) -> dict[str, Any]:
    """What the pickers offer: models, datasets (with short labels), metrics with values, budgets, and which
    (model, dataset) pairs have rows; computed once per snapshot."""
    return snap.memo(("options",), lambda: _options(snap))


def _options(snap: Snapshot) -> dict[str, Any]:
    rows = snap.rows
    if rows.empty:
        return {"models": [], "datasets": [], "labels": {}, "metrics": [], "budgets": [], "pairs": [], "rows": 0,
                "compute_metrics": _compute_metrics()}  # fmt: skip
    pairs = rows[["model", "dataset"]].drop_duplicates().sort_values(["model", "dataset"])
    metrics = curve_metrics(rows, default_pass_k(rows))
    return {
        "models": sorted(rows.model.unique().tolist()),
        "datasets": sorted(rows.dataset.unique().tolist()),
        "labels": dataset_labels(rows.dataset.unique()),
        "metrics": [{"name": m, "label": label(m)} for m in metrics],
        "budgets": sorted(int(b) for b in rows.budget.unique()),
        "pairs": pairs.values.tolist(),
        "compute_metrics": _compute_metrics(),
        "rows": len(rows),
        "generation": snap.generation,
    }


def _compute_metrics() -> list[dict[str, str]]:
    return [{"name": name, "label": text} for name, text in PARALLEL_METRICS.items()]


def _metric(name: str) -> str:
    try:
        get_metric(name)
    except ValueError as exc:
        raise TtscaleError(str(exc)) from None
    return name


def _has_pair(snap: Snapshot, model: str, dataset: str) -> None:
    pairs = snap.memo(("pairs",), lambda: {key[:2] for key in snap.problem_lookup()})
    if (model, dataset) not in pairs:
        raise NotFound(f"no rows for model {model!r} on dataset {dataset!r}")


def curve(snap: Snapshot, model: str, dataset: str, metric: str) -> dict[str, Any]:
    """One dataset curve with its 95% bootstrap band (`Results.curves`, computed once per snapshot and metric)."""
    _has_pair(snap, model, dataset)
    table = snap.memo(
        (CURVES, _metric(metric)),
        lambda: {key: g.sort_values("budget") for key, g in snap.results.curves(metric).groupby(["model", "dataset"])},
    )
    g = table.get((model, dataset))
    points = {c: [] for c in ("budget", "value", "lo", "hi", "n_problems")} if g is None else g
    return jsonable({"model": model, "dataset": dataset, "metric": metric, "label": label(metric),
                     **{c: list(points[c]) for c in ("budget", "value", "lo", "hi", "n_problems")}})  # fmt: skip


def compute(snap: Snapshot, model: str, dataset: str, metric: str = "maj") -> dict[str, Any]:
    """Sequential vs parallel compute (METHOD.md §6b) for one (model, dataset): every (B, k) point with its band and
    cost, the compute frontier, and the emergence scores of k = 1 and of the frontier with the sentence comparing
    them (`Results.parallel`, `frontier`, `frontier_emergence`, computed once per snapshot and metric)."""
    _has_pair(snap, model, dataset)
    check_metric(metric)  # a ValueError: answered with 400
    table = snap.memo((COMPUTE, metric), lambda: _compute_by_pair(snap, metric))
    view = table.get((model, dataset)) or _compute_view(metric, None, None, None)
    return {"model": model, "dataset": dataset, **view}


def _compute_by_pair(snap: Snapshot, metric: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(model, dataset) → its compute view, from the three tables of every pair."""
    results = snap.results
    tables = [results.parallel(metric), results.frontier(metric), results.frontier_emergence(metric)]
    groups = [{key: g for key, g in t.groupby(["model", "dataset"], observed=True, sort=False)} for t in tables]
    pairs = {key for group in groups for key in group}
    return {pair: _compute_view(metric, *(group.get(pair) for group in groups)) for pair in pairs}


def _compute_view(
    metric: str, points: pd.DataFrame | None, steps: pd.DataFrame | None, scores: pd.DataFrame | None
) -> dict[str, Any]:
    """One pair's points, frontier, scores and sentence as JSON (empty lists where a table has no rows for it)."""
    scores = pd.DataFrame(columns=[*SCORE_COLUMNS, "answer"]) if scores is None else scores
    answers = [a for a in scores["answer"] if isinstance(a, str)]
    return jsonable({
        "metric": metric, "label": PARALLEL_METRICS[metric],
        "points": _columns(points, POINT_COLUMNS), "frontier": _columns(steps, FRONTIER_COLUMNS),
        "scores": [{c: r[c] for c in SCORE_COLUMNS} for r in scores.to_dict("records")],
        "answer": answers[0] if answers else None,
    })  # fmt: skip


def _columns(frame: pd.DataFrame | None, columns: tuple[str, ...]) -> dict[str, list]:
    """`columns` of `frame` as lists (empty when there is no frame)."""
    return {c: [] if frame is None else frame[c].tolist() for c in columns}


def emergence(
    snap: Snapshot, metric: str, *, by: str = "breakthroughness", ascending: bool = False, level: str = "problem",
    model: str | None = None, dataset: str | None = None, limit: int = 50, offset: int = 0, complete_only: bool = True,
    ranking: str = "reviewed", min_range: float = MIN_RANGE,
) -> dict[str, Any]:  # fmt: skip
    """A page of the emergence table (`Results.emergence`), ranked by `by` as `emergence.top_k` ranks: by default
    curves moving by at least `min_range`, significant first, then oriented so that more emergent comes first
    (p-values smallest first); `ranking="score"` by the score alone; `ascending` reverses it."""
    if level not in ("problem", "dataset"):
        raise TtscaleError(f"Got level={level!r}. Use 'problem' or 'dataset'.")
    if ranking not in RANKINGS:
        raise TtscaleError(f"Got ranking={ranking!r}. Use one of: {', '.join(RANKINGS)}.")
    table = snap.results.emergence(_metric(metric), level=level)
    if by not in table.columns:
        raise TtscaleError(f"Unknown column {by!r} to sort by. Use one of: {', '.join(map(str, table.columns))}.")
    keys = ["model", "dataset", "problem_id"] if level == "problem" else ["model", "dataset"]
    complete = complete_only and "complete" in table.columns
    ranked = snap.memo(
        (RANKED, metric, level, by, ascending, complete, ranking, min_range),
        lambda: top_k(table, len(table), by=by, ascending=ascending, complete_only=complete, keys=keys,
                      ranking=ranking, min_range=min_range),
    )  # fmt: skip
    if model is not None:
        ranked = ranked[ranked.model == model]
    if dataset is not None:
        ranked = ranked[ranked.dataset == dataset]
    scope = table if model is None else table[table.model == model]
    scope = scope if dataset is None else scope[scope.dataset == dataset]
    left_out = unranked(scope, min_range, complete_only=complete) if ranking == "reviewed" else 0
    limit = max(1, min(int(limit), MAX_LIMIT))
    page = ranked.iloc[offset : offset + limit]
    return {"metric": metric, "level": level, "by": by, "ascending": ascending, "ranking": ranking,
            "min_range": min_range, "unranked": left_out, "total": len(ranked), "offset": offset,
            "columns": list(map(str, page.columns)), "rows": records(page)}  # fmt: skip


def problem(
    index: ResultsIndex, snap: Snapshot, model: str, dataset: str, problem_id: str, *, metric: str = "p_correct",
    seed: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One problem: question, gold, its curves, and per budget every seed's forced answer and correctness, the
    top answers of the solution-set distribution, and the chosen seed's reasoning up to where the budget cut it."""
    frame = snap.problem_rows(model, dataset, problem_id)  # sorted by seed, then budget
    rows = frame.to_dict("records")  # a few dozen rows: plain dicts are faster than pandas here
    seeds = sorted({int(r["seed"]) for r in rows})
    seed = seeds[0] if seed is None else int(seed)
    if seed not in seeds:
        raise NotFound(f"problem {problem_id!r} has no seed {seed} (seeds: {seeds})")
    extra = _row_extras(index, rows, problem_id)
    chosen = {int(r["budget"]): r for r in rows if r["seed"] == seed}
    reasoning = _reasoning(index, list(chosen.values()), extra)
    by_budget: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_budget.setdefault(int(r["budget"]), []).append(r)
    budgets = []
    for budget, g in sorted(by_budget.items()):
        mine = chosen.get(budget)
        cut = reasoning["cuts"].get(budget)
        inline = extra.get(mine["cell_id"], {}).get("thinking_text") if mine else None
        budgets.append({
            "budget": budget,
            "answers": [{"seed": int(r["seed"]), "answer": r["answer"], "correct": r["correct"],
                         "unclosed": _flag(r.get("unclosed")), "truncated": _flag(r.get("truncated")),
                         "p_correct": r["p_correct"], "thinking_tokens": int(r["thinking_tokens"]),
                         "continuations": int(r["continuations"]),
                         "answer_text": extra.get(r["cell_id"], {}).get("answer_text")} for r in g],
            "accuracy": _mean(r["correct"] for r in g),
            "p_correct": _mean(r["p_correct"] for r in g),
            "top_answers": _top_answers(g, extra),
            "thinking_tokens": int(mine["thinking_tokens"]) if mine else None,
            "cut": cut,
            "thinking": reasoning["text"][:cut] if cut is not None else inline,  # nested: the prefix this budget saw
        })  # fmt: skip
    metrics = list(dict.fromkeys(["accuracy", _metric(metric)]))
    curves = {m: problem_values(frame, m) for m in metrics}  # sorted by budget
    question, note = _question(index, rows[0]["run"], dataset, problem_id)
    return jsonable({
        "model": model, "dataset": dataset, "problem_id": problem_id, "question": question, "question_note": note,
        "gold": rows[0]["gold"], "seeds": seeds, "seed": seed, "metric": metric,
        "curve": {"budget": list(curves["accuracy"].budget), **{m: list(c.value) for m, c in curves.items()}},
        "budgets": budgets,
        "reasoning": {"seed": seed, "mode": reasoning["mode"], "text": reasoning["text"],
                      "cuts": [{"budget": b, "chars": c} for b, c in sorted(reasoning["cuts"].items())]},
    })  # fmt: skip


def _flag(value) -> bool | None:
    """A row's nullable flag as JSON: true, false or null (not recorded)."""
    return None if value is None or value is pd.NA or value != value else bool(value)


def _mean(values) -> float | None:
    """The mean of the values that are numbers (null and NaN left out), or None."""
    numbers = [float(v) for v in values if v is not None and v is not pd.NA and v == v]
    return sum(numbers) / len(numbers) if numbers else None


def _row_extras(index: ResultsIndex, rows: list[dict[str, Any]], problem_id: str) -> dict[str, dict[str, Any]]:
    """cell id → the columns the index leaves out (distribution, solution set, raw answer, inline reasoning),
    read from only the shards holding this problem's rows, filtered to this problem while reading."""
    columns = ["cell_id", "distribution", "answer_text", "thinking_text"]
    where = [("problem_id", "=", problem_id)]
    out: dict[str, dict[str, Any]] = {}
    for run, shard in dict.fromkeys((r["run"], r["shard"]) for r in rows):
        store = index.run(run).store
        try:
            table = read_shard(store.rows_dir / shard, ROW_SCHEMA, columns, filters=where)
        except FileNotFoundError:  # a compaction merged it since the last scan: look in every shard
            table = store.rows_where("problem_id", [problem_id], columns)
        for r in table.to_pylist():
            out[r["cell_id"]] = r
    return out


def _top_answers(g: list[dict[str, Any]], extra: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The most probable answers of the solution set at one budget: each seed's distribution, averaged."""
    from ttscale.tasks.solution_sets import solution_set_named

    dists = [extra.get(r["cell_id"], {}).get("distribution") for r in g]
    dists = [np.asarray(d, dtype=np.float64) for d in dists if d is not None]
    names = [r["solution_set"] for r in g if isinstance(r["solution_set"], str)]
    if not dists or not names or len({len(d) for d in dists}) != 1:
        return []
    try:
        candidates = solution_set_named(names[0])
    except TtscaleError:
        candidates = None  # a set the dataset declared itself: shown by index
    mean = np.mean(dists, axis=0)
    top = np.argsort(-mean, kind="stable")[:TOP_ANSWERS]
    return [{"answer": candidates.candidates[i] if candidates and i < len(candidates) else f"#{i}", "p": mean[i]}
            for i in top]  # fmt: skip


def _reasoning(index: ResultsIndex, chosen: list[dict[str, Any]], extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One seed's reasoning (its rows by budget): nested mode, the trajectory's text and where each budget cut it
    (`thinking_chars`); independent mode, the longest budget's own text (each budget's text is in its row)."""
    if not chosen:
        return {"mode": None, "text": None, "cuts": {}}
    first = chosen[0]
    if first["trajectory_mode"] == "nested":
        trajectory = index.trajectory(first["run"], first["trajectory_id"])
        if trajectory is not None:
            cuts = {int(r["budget"]): int(r["thinking_chars"]) for r in chosen}
            return {"mode": "nested", "text": trajectory["text"], "cuts": cuts}
    text = extra.get(chosen[-1]["cell_id"], {}).get("thinking_text")
    return {"mode": str(first["trajectory_mode"]), "text": text, "cuts": {}}


def _question(index: ResultsIndex, run: str, dataset: str, problem_id: str) -> tuple[str | None, str | None]:
    """The problem's question from its dataset as the run's manifest names it, or None and why not."""
    manifest = index.run(run).store.manifest() or {}
    text, path = manifest.get("sweep_text"), manifest.get("sweep_path", "sweep.yaml")
    if not text:
        return None, "no manifest: the dataset is unknown"
    try:
        questions = _questions(text, path, dataset)
    except Exception as exc:  # the dataset cannot be loaded here (no hub, a moved file): say so, show the rest
        return None, f"the dataset could not be loaded here ({type(exc).__name__}: {str(exc)[:160]})"
    if problem_id not in questions:
        return None, "the dataset no longer holds this problem id"
    return questions[problem_id], None


@lru_cache(maxsize=16)
def _questions(sweep_text: str, sweep_path: str, dataset: str) -> dict[str, str]:
    """problem id → question of one dataset of a sweep file (loaded once per sweep text and dataset)."""
    from ttscale.sweeps.original import parse_sweep
    from ttscale.tasks import get_task

    spec = parse_sweep(sweep_text, Path(sweep_path)).spec
    for ds in spec.datasets:
        if ds.name == dataset:
            task = get_task(ds.name, path=ds.path, columns=ds.columns, answer_format=ds.answer_format,
                            solution_set=ds.solution_set)  # fmt: skip
            return {p.id: _with_choices(p.question, p.choices) for p in task.load(ds.limit, ds.offset)}
    raise NotFound(f"dataset {dataset!r} is not in the run's sweep file")


def _with_choices(question: str, choices: tuple[str, ...] | None) -> str:
    """The question, and its options in source order (each seed's rows may show them shuffled: see `gold`)."""
    if not choices:
        return question
    return question + "\n" + "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(choices))
