"""Run a sweep of GPU engine doubles on a local Ray instance with logical GPUs; print what each actor got.

Used by test_gpu_placement.py in a subprocess (its own Ray instance, with `--gpus` logical GPUs). The engine is
the `fake` test double: what is measured is placement (devices, bundles, reuse), never a model.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import ray

from ttscale.store import ResultStore
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.placement import connect
from ttscale.sweeps.run import run_sweep


def main(sweep: str, gpus: int) -> None:
    connect("local", num_cpus=2 * gpus, num_gpus=gpus)
    seen: list[dict] = []
    lock = threading.Lock()

    def record(actor, unit) -> None:
        info = ray.get(actor.info.remote(), timeout=30)  # the monitor group answers while units run
        group = None
        if info["placement_group"]:
            table = ray.util.placement_group_table()[info["placement_group"]]
            group = {"strategy": table["strategy"], "bundles": list(table["bundles"].values()),
                     "nodes": sorted(set(table["bundles_to_node_id"].values()))}  # fmt: skip
        with lock:
            seen.append({**info, "group": group, "unit": unit.unit_id, "model_index": unit.model,
                         "time": time.monotonic()})  # fmt: skip

    loaded = load_sweep(sweep)
    outcome = run_sweep(loaded, address=None, on_dispatch=record)
    events = ResultStore(loaded.spec.output_dir).events()
    print(json.dumps({"seen": seen, "rows": outcome.rows_written, "failed": outcome.failed_units, "events": events}))
    ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
