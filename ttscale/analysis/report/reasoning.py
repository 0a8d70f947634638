"""The report's own store reads: the end of the reasoning behind the top-k problems' forced answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ttscale.store import ResultStore

if TYPE_CHECKING:
    from ttscale.analysis.results import Results


def reasoning_tails(results: Results, top: pd.DataFrame, chars: int = 400) -> dict[tuple, str]:
    """The last `chars` characters of thinking at each budget, from the trajectories (nested) or rows."""
    keys = ["model", "dataset", "problem_id"]
    rows = results.rows
    candidates = rows[rows["problem_id"].isin(top["problem_id"].unique())]  # a vectorised cut before the exact match
    sel = candidates.merge(top[keys].drop_duplicates(), on=keys, how="inner")
    texts: dict[tuple, str] = {}
    trajectories, inline = {}, {}
    wanted_ids = sorted(set(sel.trajectory_id))
    for root in results.roots:
        store = ResultStore(root)
        t = store.read_trajectories(wanted_ids).to_pandas()  # only the top-k problems' reasoning
        trajectories.update(dict(zip(t.trajectory_id, t.text, strict=True)))
        rows_inline = store.rows_where("trajectory_id", wanted_ids, ["trajectory_id", "thinking_text"])
        inline.update(zip(rows_inline.column(0).to_pylist(), rows_inline.column(1).to_pylist(), strict=True))
    for r in sel.itertuples():
        key = (r.model, r.dataset, r.problem_id, int(r.seed), int(r.budget))
        if r.trajectory_id in trajectories:  # nested: one text per trajectory, cut where this budget saw it
            texts[key] = "…" + trajectories[r.trajectory_id][: r.thinking_chars][-chars:]
        elif inline.get(r.trajectory_id):  # independent: each row holds its own reasoning
            texts[key] = "…" + inline[r.trajectory_id][-chars:]
    return texts
