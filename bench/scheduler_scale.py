"""The dispatcher at cluster scale: a local Ray instance with 64 logical GPUs, models of TP 1, 2 and 4.

The engine is the `fake` test double with `seconds_per_token` (it sleeps as a GPU would be busy): what is
measured is the driver, never a model. Goals:

- >= 90% of GPU-seconds busy: Σ over units of (unit seconds × the model's GPUs) over Σ over actors of
  (time from the actor being ready to its release × its GPUs). Actor start-up (process, engine load) is left
  out: it is the engine's cost, not the dispatcher's; the whole-run figure is printed beside it.
- <= 5 ms of driver time per unit: the CPU time of the dispatch loop's thread over units (waiting on Ray costs
  it none); the whole driver process's CPU time per unit (the loop, the shard-writer thread, Ray's client
  threads) is printed beside it.

    python bench/scheduler_scale.py [--gpus 64] [--units 60] [--unit-seconds 2.0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import verdict

from ttscale.store import ResultStore
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.placement import connect
from ttscale.sweeps.run import run_sweep

BUDGET = 64  # thinking tokens per trajectory; one problem and one seed per unit
ANSWER_TOKENS = 4  # a fake forced answer ("42}") and its pauses, roughly


def sweep_file(out: Path, units: int, unit_seconds: float) -> Path:
    seconds_per_token = unit_seconds / (BUDGET + ANSWER_TOKENS)
    models = [
        {"name": f"fake-tp{tp}", "engine": "fake", "tensor_parallel": tp,
         "engine_options": {"seconds_per_token": seconds_per_token}}
        for tp in (1, 2, 4)
    ]  # fmt: skip
    spec = {
        "name": "scheduler", "output_dir": str(out / "results"), "models": models,
        "datasets": [{"name": "demo-arith", "limit": units}], "budgets": [BUDGET], "seeds": 1,
        "problems_per_unit": 1, "forcing": {"on_early_stop": "accept"},
    }  # fmt: skip
    path = out / "scheduler.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def busy_fraction(events: list[dict]) -> tuple[float, float, int]:
    """(busy GPU-seconds over ready actors' GPU-seconds, busy over the whole run's GPU-seconds, units)."""
    gpus, ready, released = {}, {}, {}
    busy, units = 0.0, 0
    last = max(e["time"] for e in events)
    for e in events:
        if e["event"] == "actor_ready":
            gpus[e["actor"]], ready[e["actor"]] = e["gpus"], e["time"]
        elif e["event"] == "actor_released":
            released[e["actor"]] = e["time"]
    for e in events:
        if e["event"] == "done":
            busy += e["seconds"] * gpus[e["actor"]]
            units += 1
    held = sum((released.get(a, last) - ready[a]) * g for a, g in gpus.items())
    return busy / held, busy, units


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=64)
    parser.add_argument("--units", type=int, default=100, help="work units per model (one problem each)")
    parser.add_argument("--unit-seconds", type=float, default=6.0, help="simulated GPU time of one unit")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_sweep(sweep_file(Path(tmp), args.units, args.unit_seconds))
        connect("local", num_cpus=2 * args.gpus, num_gpus=args.gpus)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcome = run_sweep(loaded, address=None)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        loop = outcome.driver_seconds
        events = ResultStore(loaded.spec.output_dir).events()

    fraction, busy, units = busy_fraction(events)
    per_actor = defaultdict(int)
    for e in events:
        if e["event"] == "actor_ready":
            per_actor[e["model"]] += 1
    print(f"{args.gpus} logical GPUs; models TP 1, 2, 4; {units} units of ~{args.unit_seconds:g} s; "
          f"actors per model: {dict(per_actor)}")  # fmt: skip
    print(f"run: {wall:.1f} s wall, {outcome.rows_written} rows, {len(outcome.failed_units)} failed units")
    print(f"busy GPU-seconds {busy:.0f} of {args.gpus * wall:.0f} in the whole run ({busy / (args.gpus * wall):.1%})")
    print(verdict("GPU-seconds busy while actors are up", fraction, 0.90, lower_is_better=False))
    print(f"driver process CPU per unit: {1000 * cpu / max(units, 1):.1f} ms (loop, shard writes, Ray client threads)")
    print(verdict("driver loop ms per unit", 1000 * loop / max(units, 1), 5.0))


if __name__ == "__main__":
    main()
