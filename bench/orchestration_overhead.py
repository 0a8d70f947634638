"""Orchestration overhead: the demo workload through `ttscale sweep` (Ray, one actor) vs in-process measure().

Both run as fresh processes, as a user would start them, on the same work (sweeps/demo.yaml: the same
problems, seeds, budgets and units), model load included; each side runs --repeat times, alternating, and
the best time counts (this 2-core machine's timings vary by ±10% from run to run).
Goal: sweep wall <= 1.15x measure() wall.

    python bench/orchestration_overhead.py [--sweep sweeps/demo.yaml] [--repeat 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import verdict

IN_PROCESS = """
import sys, yaml
from ttscale.actors.engines import Sampling
from ttscale.forcing import ForcingConfig
from ttscale.measure import measure
spec = yaml.safe_load(open(sys.argv[1]))
model, dataset = spec["models"][0], spec["datasets"][0]
budgets = spec["budgets"]
budgets = [2**k for k in range(budgets["log2"][0], budgets["log2"][1] + 1)] if isinstance(budgets, dict) else budgets
result = measure(
    model["name"], dataset["name"], budgets=budgets, seeds=spec["seeds"], limit=dataset.get("limit"),
    forcing=ForcingConfig(**spec.get("forcing", {})), sampling=Sampling(**spec.get("sampling", {})),
    problems_per_unit=spec.get("problems_per_unit", 8),
    engine_options={"threads": model.get("threads", 2)},
)
print(result.rows.num_rows)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default="sweeps/demo.yaml")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {"measure": [], "sweep": []}
    for attempt in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            spec = yaml.safe_load(Path(args.sweep).read_text())
            spec["output_dir"] = str(Path(tmp) / "results")
            sweep_file = Path(tmp) / "sweep.yaml"
            sweep_file.write_text(yaml.safe_dump(spec))
            commands = {
                "measure": [sys.executable, "-c", IN_PROCESS, str(sweep_file)],
                "sweep": [sys.executable, "-m", "ttscale.cli", "sweep", str(sweep_file)],
            }
            for side, cmd in commands.items():
                start = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True)
                seconds[side].append(time.perf_counter() - start)
                assert proc.returncode == 0, proc.stderr[-2000:]
                print(f"run {attempt + 1}: {side:8s} {seconds[side][-1]:6.1f} s", flush=True)
    best = {side: min(times) for side, times in seconds.items()}
    print(f"best: measure() in-process {best['measure']:.1f} s, ttscale sweep (Ray, one actor) {best['sweep']:.1f} s")
    print(verdict("wall sweep/measure", best["sweep"] / best["measure"], 1.15))


if __name__ == "__main__":
    main()
