"""Test helpers for reuse: the stored trajectories of a results directory, and a trajectory cut at a budget."""

from __future__ import annotations

from ttscale.store import ResultStore

FAKE_MODEL = {"name": "fake", "engine": "fake", "device": "cpu", "threads": 1, "replicas": 1,
              "engine_options": {"stop_every": 11}}  # fmt: skip


def trajectories(store: ResultStore) -> dict[str, dict]:
    return {t["trajectory_id"]: t for t in store.read_trajectories().to_pylist()}


def cut(trajectory: dict, budget: int) -> list[int]:
    """The stored trajectory's tokens up to its `budget`-th model token (injected ones do not count)."""
    model = [i for i, injected in enumerate(trajectory["injected"]) if not injected]
    return trajectory["token_ids"][: model[budget - 1] + 1]
