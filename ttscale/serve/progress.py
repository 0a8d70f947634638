"""A sweep's progress as the explorer shows it: cells done per model and dataset from the manifest's plan and the
indexed rows, stored tokens per second since the run started, and open failures (`sweeps.status.open_failures`)."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from ttscale.serve.index import ResultsIndex, Run, Snapshot
from ttscale.serve.queries import jsonable
from ttscale.sweeps.status import open_failures

STALE_S = 120.0  # a run.lock whose heartbeat is older than this is a driver that died (run_lock.HEARTBEAT_S is 10 s)


def progress(index: ResultsIndex, snap: Snapshot) -> dict[str, Any]:
    """Every run's progress (see `run_progress`), and when the snapshot was built."""
    return {"generation": snap.generation, "built_at": snap.built_at,
            "runs": [run_progress(run, snap) for run in index.runs.values()]}  # fmt: skip


def run_progress(run: Run, snap: Snapshot) -> dict[str, Any]:
    """Cells and rows done of the run's last sweep, per model and dataset; its state, stored tokens/s, failures."""
    manifest = run.store.manifest() or {}
    events = run.store.events()
    starts = [e for e in events if e["event"] == "run_start"]
    ends = [e for e in events if e["event"] == "run_end"]
    started = starts[-1]["time"] if starts else None
    ended = ends[-1]["time"] if ends and (started is None or ends[-1]["time"] >= started) else None
    state = "finished" if ended else ("running" if _lock_alive(run.store.root) else "stopped") if started else "idle"
    rows = snap.memo(("run_rows", run.name), lambda: snap.rows[snap.rows.run == run.name])
    pairs = _pairs(manifest, rows, snap, run.name)
    since = pd.Timestamp(started, unit="s", tz="UTC") if started else None
    tokens = snap.memo(("tokens", run.name, started), lambda: _generated_tokens(rows[rows.created_at >= since]) if since
                       else 0)  # fmt: skip
    seconds = ((ended or time.time()) - started) if started else None
    failures = open_failures(run.store)
    return jsonable({
        "run": run.name, "sweep": manifest.get("sweep_name"), "state": state, "started": started, "ended": ended,
        "seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds if seconds else None,
        "units_done": sum(1 for e in events if e["event"] == "done" and started and e["time"] >= started),
        "rows_done": sum(p["rows_done"] for p in pairs), "rows_total": sum(p["rows_total"] for p in pairs),
        "cells_done": sum(p["cells_done"] for p in pairs), "cells_total": sum(p["cells_total"] for p in pairs),
        "pairs": pairs, "unreadable_shards": len(run.unreadable),
        "failures": [{"unit": f["unit_id"], "model": f.get("model"), "dataset": f.get("dataset"),
                      "attempts": f["attempts"], "error": str(f["error"])[:300]} for f in failures],
    })  # fmt: skip


def _pairs(manifest: dict[str, Any], rows: pd.DataFrame, snap: Snapshot, name: str) -> list[dict[str, Any]]:
    """Per (model, dataset) of the manifest's sweep: cells (model, dataset, budget, seed) with every problem's row
    stored, and rows stored, against the plan. Without a manifest, what is stored."""
    per_cell = snap.memo(("cell_rows", name), lambda: rows.groupby("cell_id", sort=False).size().to_dict())
    datasets = json.dumps(manifest.get("datasets"), sort_keys=True)  # hashable, for the cache
    refined = json.dumps(manifest.get("refinements", []), sort_keys=True)
    planned = _planned(manifest.get("sweep_text"), manifest.get("sweep_path"), datasets, refined)
    if planned is None:
        counts = snap.memo(("pair_rows", name), lambda: rows.groupby(["model", "dataset"]).agg(
            rows=("cell_id", "size"), cells=("cell_id", "nunique")))  # fmt: skip
        return [{"model": m, "dataset": d, "cells_done": int(r.cells), "cells_total": int(r.cells),
                 "rows_done": int(r.rows), "rows_total": int(r.rows)} for (m, d), r in counts.iterrows()]  # fmt: skip
    out = []
    for model, dataset, cells, n_problems in planned:
        done = [min(per_cell.get(c, 0), n_problems) for c in cells]
        out.append({"model": model, "dataset": dataset, "cells_done": sum(d == n_problems for d in done),
                    "cells_total": len(cells), "rows_done": sum(done),
                    "rows_total": len(cells) * n_problems})  # fmt: skip
    return out


@lru_cache(maxsize=16)
def _planned(
    sweep_text: str | None, sweep_path: str | None, datasets_json: str, refinements_json: str = "[]"
) -> list[tuple] | None:
    """(model, dataset, cell ids, problems) of every pair of a manifest's sweep and its refinements, planned as
    `ttscale status` plans it (from the recorded identities and problem ids: no dataset is loaded); None without
    a usable manifest."""
    from ttscale.sweeps.original import parse_sweep
    from ttscale.sweeps.plan import build_plan
    from ttscale.sweeps.refinement_record import refined_budgets

    datasets = json.loads(datasets_json)
    if not sweep_text or not datasets:
        return None
    spec = parse_sweep(sweep_text, Path(sweep_path or "sweep.yaml")).spec
    if [d["name"] for d in datasets] != [d.name for d in spec.datasets]:
        return None  # a manifest from another version of the sweep
    identities, problem_ids = [d["identity"] for d in datasets], [d["problem_ids"] for d in datasets]
    refined = refined_budgets({"refinements": json.loads(refinements_json)})
    plan = build_plan(spec, identities, problem_ids, set(), refined=refined)
    return [
        (model.name, ds.name, [plan.cell_ids[m, d, b, s] for b in plan.grids[m, d] for s in spec.seeds],
         len(problem_ids[d]))
        for m, model in enumerate(spec.models) for d, ds in enumerate(spec.datasets)
    ]  # fmt: skip


def _generated_tokens(rows: pd.DataFrame) -> int:
    """Tokens the engines generated for these rows: each trajectory's longest prefix once (nested mode shares one
    trajectory between budgets) plus every forced answer."""
    if rows.empty:
        return 0
    thinking = rows.groupby("trajectory_id", sort=False).thinking_tokens.max().sum()
    return int(thinking + rows.answer_tokens.sum())


def _lock_alive(root: Path) -> bool:
    """A driver holds the results directory: run.lock exists and its heartbeat is recent."""
    lock = root / "run.lock"
    try:
        return time.time() - lock.stat().st_mtime < STALE_S
    except OSError:
        return False
