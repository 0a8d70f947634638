"""The columns of a result row, and of a stored trajectory, each built from the part of a unit's results it records.

`runner.py` measures; these turn what it measured into the dicts `ROW_SCHEMA` and `TRAJECTORY_SCHEMA` store
(ttscale/store.py), one group of columns per function, so that what each column means sits beside how it is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import ttscale
from ttscale.engines.base import Engine
from ttscale.forcing import ForcedAnswer, ForcingConfig, Stopwatch, Trajectory, prompt_digest
from ttscale.metrics import set_metrics, set_metrics_declared
from ttscale.tasks.base import PromptedProblem, Task, vote_key

__all__ = [
    "answer_fields", "per_row_seconds", "row_base", "set_fields", "text_offset", "thinking_fields", "token_fields",
    "trajectory_row",
]  # fmt: skip


def per_row_seconds(watch: Stopwatch, n_traj: int, n_items: int, n_scored: int) -> dict[str, float | None]:
    s = watch.seconds
    return {
        "trajectory_seconds": s.get("trajectory", 0.0) / max(n_traj, 1),
        "answer_seconds": s.get("answer", 0.0) / max(n_items, 1),
        "score_seconds": s.get("score", 0.0) / n_scored if n_scored else None,
    }


def row_base(settings, info, task, pid, seed, budget, cell_id, traj_id, now) -> dict[str, Any]:
    return {
        "model": settings.model, "dataset": task.name, "problem_id": pid, "seed": seed, "budget": budget,
        "cell_id": cell_id, "trajectory_id": traj_id,
        "config_id": settings.config_id, "config": settings.config_json,
        "trajectory_mode": settings.forcing.trajectory, "on_early_stop": settings.forcing.on_early_stop,
        "temperature": settings.sampling.temperature, "top_p": settings.sampling.top_p,
        "top_k": settings.sampling.top_k, "family": settings.family.name,
        "engine": info.engine, "engine_version": info.engine_version, "model_path": info.model_path,
        "ttscale_version": ttscale.__version__, "created_at": now,
    }  # fmt: skip


def token_fields(prompt_ids, thinking, answer_ids) -> dict[str, Any]:
    return {
        "prompt_tokens": len(prompt_ids), "thinking_tokens": thinking.thinking_tokens,
        "natural_end": thinking.natural_end, "continuations": thinking.continuations,
        "injected_tokens": thinking.injected_tokens, "answer_tokens": len(answer_ids), "stopped": thinking.stopped,
    }  # fmt: skip


def answer_fields(engine: Engine, task: Task, prompted: PromptedProblem, forced: ForcedAnswer) -> dict[str, Any]:
    text = engine.decode(forced.answer_ids)
    try:
        grade = task.grade(text, prompted.gold, truncated=forced.truncated)
        answer, correct, unclosed, error = grade.answer, grade.correct, grade.unclosed, grade.error
        key = vote_key(grade, prompted.choice_order)
    except Exception as exc:  # a grader bug must not lose the row: record it, keep going
        answer, correct, unclosed, error = None, None, None, f"grading failed: {type(exc).__name__}: {exc}"
        key = None
    return {
        "answer": answer, "answer_key": key, "answer_text": text, "unclosed": unclosed, "truncated": forced.truncated,
        "correct": None if correct is None else int(correct), "gold": prompted.gold,
        "choice_order": list(prompted.choice_order) if prompted.choice_order is not None else None,
        "error": error,
    }  # fmt: skip


def set_fields(solution_set, prompted: PromptedProblem, logp: np.ndarray | None) -> dict[str, Any]:
    """The solution-set columns of a row: every set metric of the registry (ttscale/metrics.py) and q itself."""
    if solution_set is None or logp is None:
        return {"solution_set": None, **dict.fromkeys(m.column for m in set_metrics_declared()), "distribution": None}
    m = set_metrics(logp, solution_set.index_of(prompted.gold))
    return {"solution_set": solution_set.name, **m.columns, "distribution": m.distribution.tolist()}


def thinking_fields(
    engine: Engine, forcing: ForcingConfig, token_ids: Sequence[int], trajectory_text: str | None
) -> dict[str, Any]:
    """The reasoning at this budget: inline in independent mode; in nested mode the offset in the trajectory's
    text up to which this budget saw it (`text[:thinking_chars]`)."""
    text = engine.decode(token_ids)
    if forcing.trajectory == "nested":
        assert trajectory_text is not None
        return {"thinking_chars": text_offset(text, trajectory_text), "thinking_token_ids": None, "thinking_text": None}
    return {"thinking_chars": len(text), "thinking_token_ids": list(token_ids), "thinking_text": text}


def text_offset(prefix_text: str, full_text: str) -> int:
    """Where a token prefix's decoded text ends inside the whole trajectory's decoded text.

    Usually `len(prefix_text)`. When the cut splits a multi-byte character, the prefix decodes to a
    replacement character (U+FFFD) that the full text does not hold; the offset then stops before it, at the
    longest common prefix of the two texts, so `full_text[:offset]` never cuts inside a character."""
    if full_text.startswith(prefix_text):
        return len(prefix_text)
    n = 0
    for a, b in zip(prefix_text, full_text, strict=False):
        if a != b:
            break
        n += 1
    return n


def trajectory_row(settings, task, key, traj: Trajectory, traj_id: str, text: str, revision: str) -> dict[str, Any]:
    return {
        "trajectory_id": traj_id, "model": settings.model, "dataset": task.name, "problem_id": key[0],
        "seed": key[1], "budget": key[2] if len(key) == 3 else None, "rng_seed": traj.rng_seed,
        "prompt_tokens": len(traj.prompt_ids), "prompt_sha": prompt_digest(traj.prompt_ids),
        "model_revision": revision, "token_ids": list(traj.token_ids), "injected": list(traj.injected),
        "injection_starts": list(traj.injection_starts), "text": text, "model_tokens": traj.model_tokens,
        "natural_end": traj.natural_end, "continuations": traj.continuations, "finished": traj.finished,
        "stopped": traj.stopped,
    }  # fmt: skip
