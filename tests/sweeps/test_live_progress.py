"""A long unit reports progress while it runs: tokens and trajectories reach `on_progress` (the CLI's bar) and
the actor's dashboard counters before its rows land.

The engine is the `fake` double sleeping per token (a slow engine), on CPUs: what is checked is the plumbing
from the engine to the driver and to Ray's metrics, not a model."""

from __future__ import annotations

import pytest

from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.run import run_sweep

pytestmark = pytest.mark.ray


def test_a_running_unit_reports_tokens_and_trajectories_before_its_rows(ray_local, make_sweep):
    from test_driver import _metric

    path = make_sweep(
        name="live",
        models=[
            {
                "name": "fake-slow",
                "engine": "fake",
                "device": "cpu",
                "threads": 1,
                "engine_options": {"seconds_per_token": 0.01},
            }
        ],
        datasets=[{"name": "demo-arith", "limit": 3}],
        budgets=[256],
        seeds=1,
        problems_per_unit=3,
    )  # fmt: skip  one unit: 3 trajectories of 256 tokens, ~8 s of "engine" time
    seen = []

    def on_progress(p) -> None:
        seen.append(p)

    outcome = run_sweep(load_sweep(path), address=None, on_progress=on_progress)
    assert outcome.rows_written == 3 and not outcome.failed_units
    before_rows = [p for p in seen if p.rows_done == 0]
    assert any(p.tokens > 0 for p in before_rows), "no live tokens before the unit's rows landed"
    assert any(p.trajectories_total == 3 for p in before_rows)  # the running unit's trajectories are known
    assert seen[-1].rows_done == 3 and seen[-1].trajectories_done == seen[-1].trajectories_total == 3
    tokens = [p.tokens for p in seen]
    assert tokens == sorted(tokens)  # live counts only grow
    # the actor publishes its live counters itself (every 5 s, whoever asks): the dashboard's Prometheus
    # endpoint has them (an actor's last export can be lost when it is stopped, so only "some" is certain)
    assert (_metric(ray_local, "ray_ttscale_tokens_generated_total", 'model="fake-slow"', 256) or 0) >= 256
