"""Soak: the fault tests run longer (200 driver SIGKILLs by default), then a table of what was survived.

    python bench/soak.py [--driver-kills 200] [--actor-kills 40] [--node-losses 5] [--out results/soak]

Runs tests/cluster/test_faults.py (a real two-node Ray cluster on this machine), the engine-fault tests and the
fuzz tests with the counts raised through their environment variables, collects the figures they record, and
prints them as the Markdown table docs/reliability.md shows. Exits non-zero if any test failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/cluster/test_faults.py", "tests/sweeps/test_engine_faults.py", "tests/sweeps/test_stop_signal.py",
         "tests/sweeps/test_two_drivers.py", "tests/sweeps/test_bad_results_dir.py"]  # fmt: skip
FUZZ = ["tests/sweeps/test_spec_fuzz.py", "tests/tasks/test_grading_fuzz.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver-kills", type=int, default=200)
    parser.add_argument("--actor-kills", type=int, default=40)
    parser.add_argument("--node-losses", type=int, default=5)
    parser.add_argument("--work-lost", type=int, default=10, help="failures of each kind measured for work lost")
    parser.add_argument("--fuzz-examples", type=int, default=2000, help="Hypothesis examples per fuzz test")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "soak")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    figures, fuzz = args.out / "faults.json", args.out / "fuzz.json"
    for path in (figures, fuzz):
        path.unlink(missing_ok=True)
    env = {
        **os.environ,
        "TTSCALE_RELIABILITY_FIGURES": str(figures),
        "TTSCALE_FUZZ_FIGURES": str(fuzz),
        "TTSCALE_SOAK_DRIVER_KILLS": str(args.driver_kills),
        "TTSCALE_SOAK_ACTOR_KILLS": str(args.actor_kills),
        "TTSCALE_SOAK_NODE_LOSSES": str(args.node_losses),
        "TTSCALE_SOAK_WORK_LOST": str(args.work_lost),
        "TTSCALE_FUZZ_EXAMPLES": str(args.fuzz_examples),
    }
    start = time.perf_counter()
    tests = TESTS + [t for t in FUZZ if (ROOT / t).exists()]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=ROOT, env=env)
    minutes = (time.perf_counter() - start) / 60
    print(table(_load(figures), _load(fuzz), minutes))
    return run.returncode


def table(faults: dict, fuzz: dict, minutes: float) -> str:
    lines = [
        f"Soak run, {minutes:.0f} min on {os.cpu_count()} cores:",
        "",
        "| fault | injected | survived | rows lost | duplicate rows | recovery |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lost = {kind: f for kind, f in faults.items() if kind.startswith(("work lost: ", "work lost, "))}
    for kind, f in sorted(faults.items()):
        if kind in lost:
            continue
        recover = f.get("recover_s") or []
        recovery = f"median {sorted(recover)[len(recover) // 2]:.1f} s, max {max(recover):.1f} s" if recover else ""
        lines.append(
            f"| {kind} | {f.get('injected', 0)} | {f.get('survived', 0)} | {f.get('rows_lost', 0)} | "
            f"{f.get('duplicates', 0)} | {recovery} |"
        )
    if lost:
        lines += ["", *work_lost_table(lost)]
    if fuzz:
        lines += ["", "| fuzzed | cases |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in sorted(fuzz.items())]
    return "\n".join(lines)


def work_lost_table(lost: dict) -> list[str]:
    """Thinking tokens generated again per failure (tests/cluster/work_lost.py), as seconds of a dead actor's
    generation: with checkpoints every `checkpoint_s`; with checkpoints off (measured, when that test ran); and
    what the unit-level code before streaming would have lost (computed from the checkpointed runs' ledgers)."""
    lines = [
        "| failure | failures | actors ended | generated again, per actor (median, max) | before the failure "
        "(median) | checkpoints off, measured: per actor (median, max) | unit-level, computed: per actor "
        "(median, max) |",
        "|---|---:|---:|---|---:|---|---|",
    ]
    for kind, f in sorted((k, f) for k, f in lost.items() if k.startswith("work lost: ")):
        failure = kind.removeprefix("work lost: ")
        off = lost.get(f"work lost, no checkpoints: {failure}")
        lines.append(
            f"| {failure} | {f['failures']} | {sum(f['actors_lost'])} | {_spread(f['actor_seconds'])} | "
            f"{_median(f['before']):,.0f} tokens | {_spread(off['actor_seconds']) if off else '-'} | "
            f"{_spread(f['unit_level_actor_seconds'])} |"
        )
    rates = sorted(r for f in lost.values() for r in f["actor_tokens_per_s"])
    every = min(x for f in lost.values() for x in f["checkpoint_s"])
    lines.append(f"\n(checkpoints every {every} s; an actor made ~{_median(rates):,.0f} thinking tokens/s)")
    return lines


def _spread(seconds: list) -> str:
    return f"{_median(seconds):.2f} s, {max(seconds):.2f} s"


def _median(values: list) -> float:
    return statistics.median(values)


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


if __name__ == "__main__":
    sys.exit(main())
