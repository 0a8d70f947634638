"""The cost of streaming results out of actors: the demo sweep's wall time now vs at a commit before streaming.

Runs `ttscale sweep` on the demo sweep (sweeps/demo.yaml, or --sweep) into fresh results directories, alternating
this checkout and a `git worktree` of `--before` (default: the last commit whose actors returned whole units),
`--repeats` times each, both with this checkout's Python environment (the older code is put first on
PYTHONPATH). Prints each run's wall time, the medians and their ratio. Goal: streaming costs at most 5%.

    python bench/streaming_cost.py [--before 98e6801] [--repeats 2] [--sweep sweeps/demo.yaml]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import verdict

ROOT = Path(__file__).resolve().parents[1]
BEFORE_STREAMING = "98e6801"  # the parent of the commit that made units stream their groups out


def run_sweep(code: Path, sweep: dict, where: Path) -> float:
    """Wall time of one `ttscale sweep` of `sweep` into `where`, with ttscale imported from `code`."""
    path = where / "sweep.yaml"
    path.write_text(yaml.safe_dump({**sweep, "output_dir": str(where / "results")}, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "ttscale.cli", "sweep", str(path)], env=env, cwd=code, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"the sweep failed with {code}:\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE_STREAMING, help="the commit to compare with")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sweep", type=Path, default=ROOT / "sweeps" / "demo.yaml")
    args = parser.parse_args()
    sweep = yaml.safe_load(args.sweep.read_text())
    with tempfile.TemporaryDirectory(prefix="streaming-cost-") as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.before], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
        try:
            times: dict[str, list[float]] = {"streaming": [], "before": []}
            for i in range(args.repeats):
                for name, code in (("streaming", ROOT), ("before", before)):  # alternated: drift hits both
                    seconds = run_sweep(code, sweep, Path(tempfile.mkdtemp(dir=tmp, prefix=f"{name}-{i}-")))
                    times[name].append(seconds)
                    print(f"{name} run {i + 1}: {seconds:.1f} s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, capture_output=True)
    now, then = statistics.median(times["streaming"]), statistics.median(times["before"])
    print(f"median: streaming {now:.1f} s, before ({args.before}) {then:.1f} s")
    print(verdict("wall time of the demo sweep, streaming / before", now / then, 1.05))


if __name__ == "__main__":
    main()
