"""Orchestration overhead: the demo workload through `ttscale sweep` (Ray, one actor) vs in-process measure().

Both run as fresh processes, as a user would start them, on the same work (sweeps/demo.yaml: the same
problems, seeds, budgets and units), model load included. They run in `--pairs` pairs; the order flips
from pair to pair (measure first, then sweep first) so a steady drift in the host's speed hits both sides.

Each run's wall time splits into compute (the sum of its units' times, measured around `run_unit`: inside
the actor for the sweep, read from its events log; inside the process for measure()) and fixed cost (the
rest: imports, Ray's start, the actor's start, model load, stopping). The host's speed drifts by ±20% over
minutes on a shared 2-core VM, so the same unit can take 65 s or 100 s; a single pair's wall ratio
measures that drift as much as orchestration. So the script prints every run and three ratios:

- median of the pairs' wall ratios, and best sweep wall over best measure() wall;
- the goal's verdict, drift-corrected: (fixed_sweep + r_units * U) / (fixed_measure + U), where the
  fixed costs are each side's median, U is the median compute of the measure() runs, and r_units is the
  median over pairs of sweep compute / measure() compute, so a slower engine in the actor still counts.

Goal: sweep wall <= 1.15x measure() wall.

    python bench/orchestration_overhead.py [--sweep sweeps/demo.yaml] [--pairs 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import verdict

from ttscale.store import ResultStore
from ttscale.sweeps.placement import cpu_threads
from ttscale.sweeps.spec import ModelSpec

IN_PROCESS = """
import json, sys, time
from ttscale.engines import create_engine
from ttscale.measure import measure
from ttscale.sweeps.plan import run_settings
from ttscale.sweeps.original import load_sweep
spec = load_sweep(sys.argv[1]).spec
model, dataset = spec.models[0], spec.datasets[0]
settings = run_settings(spec, model)
engine = create_engine(model.engine, model.name, threads=model.threads, dtype=model.resolved_dtype)
marks = [time.perf_counter()]
result = measure(
    engine, dataset.name, budgets=spec.budgets, seeds=spec.seeds, limit=dataset.limit,
    forcing=settings.forcing, sampling=settings.sampling, family=model.family, family_overrides=model.overrides,
    problems_per_unit=spec.problems_per_unit, on_unit=lambda *_: marks.append(time.perf_counter()),
)
print(json.dumps({"rows": result.rows.num_rows, "units": [b - a for a, b in zip(marks, marks[1:])]}))
"""


@dataclass
class Run:
    side: str
    wall: float
    units: list[float]

    @property
    def compute(self) -> float:
        return sum(self.units)

    @property
    def fixed(self) -> float:
        return self.wall - self.compute


def run_once(side: str, sweep_file: Path, output_dir: Path) -> Run:
    if side == "measure":
        cmd = [sys.executable, "-c", IN_PROCESS, str(sweep_file)]
    else:
        cmd = [sys.executable, "-m", "ttscale.cli", "sweep", str(sweep_file)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    if side == "measure":
        units = json.loads(proc.stdout.strip().splitlines()[-1])["units"]
    else:
        units = [e["seconds"] for e in ResultStore(output_dir).events() if e["event"] == "done"]
    return Run(side, wall, units)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default="sweeps/demo.yaml")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch threads of the engine, both sides (default: the sweep's)")
    args = parser.parse_args()
    pairs: list[dict[str, Run]] = []
    for pair in range(args.pairs):
        runs: dict[str, Run] = {}
        for side in ("measure", "sweep") if pair % 2 == 0 else ("sweep", "measure"):
            with tempfile.TemporaryDirectory() as tmp:
                spec = yaml.safe_load(Path(args.sweep).read_text())
                spec["output_dir"] = str(Path(tmp) / "results")
                for model in spec["models"]:  # one engine on both sides, with the same threads
                    model["replicas"] = 1
                    model["threads"] = args.threads or cpu_threads(ModelSpec(**model), {"CPU": os.cpu_count() or 1})
                sweep_file = Path(tmp) / "sweep.yaml"
                sweep_file.write_text(yaml.safe_dump(spec))
                run = runs[side] = run_once(side, sweep_file, Path(spec["output_dir"]))
            print(
                f"pair {pair + 1} {side:8s} wall {run.wall:6.1f} s = compute {run.compute:6.1f} s "
                f"(units {', '.join(f'{u:.1f}' for u in run.units)}) + fixed {run.fixed:5.1f} s",
                flush=True,
            )
        print(f"pair {pair + 1} wall ratio {runs['sweep'].wall / runs['measure'].wall:.3f}", flush=True)
        pairs.append(runs)

    def median(side: str, attr: str) -> float:
        return statistics.median(getattr(p[side], attr) for p in pairs)

    wall_ratios = [p["sweep"].wall / p["measure"].wall for p in pairs]
    unit_ratio = statistics.median(p["sweep"].compute / p["measure"].compute for p in pairs)
    fixed_sweep, fixed_measure = median("sweep", "fixed"), median("measure", "fixed")
    compute = median("measure", "compute")
    best = {side: min(p[side].wall for p in pairs) for side in ("measure", "sweep")}
    print(f"fixed cost, median: sweep {fixed_sweep:.1f} s, measure() {fixed_measure:.1f} s")
    print(f"compute, median: measure() {compute:.1f} s; sweep/measure() per pair, median {unit_ratio:.3f}")
    print(f"wall ratio per pair: {', '.join(f'{r:.3f}' for r in wall_ratios)}; "
          f"median {statistics.median(wall_ratios):.3f}; best/best {best['sweep'] / best['measure']:.3f}")  # fmt: skip
    corrected = (fixed_sweep + unit_ratio * compute) / (fixed_measure + compute)
    print(verdict("wall sweep/measure, drift-corrected", corrected, 1.15))


if __name__ == "__main__":
    main()
