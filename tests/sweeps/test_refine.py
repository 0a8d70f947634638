"""`ttscale refine` (issue 14): budgets added where the curves change most, cut from the stored trajectories with no
thinking generated, recorded in the manifest so every command sees the refined grid, and resumed when interrupted.
Orchestration on a real local Ray instance with the `fake` engine double; one test on the real SmolLM2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from stored_trajectories import FAKE_MODEL, cut, trajectories

from ttscale.analysis import Results
from ttscale.analysis.emergence import top_k
from ttscale.analysis.gaps import dataset_gaps, log_spaced
from ttscale.analysis.grids import interval_width
from ttscale.analysis.values import problem_values
from ttscale.store import ResultStore
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.refine import plan_refinement, record_refinement
from ttscale.sweeps.resolve import resolve_in
from ttscale.sweeps.run import run_sweep
from ttscale.sweeps.status import sweep_status

pytestmark = pytest.mark.ray

PROBLEMS, SEEDS = 3, 2
PAIRS = PROBLEMS * SEEDS
BUDGETS = [8, 16, 32, 64]


def fake_sweep(make_sweep, budgets=BUDGETS, **changes):
    path = make_sweep(
        models=[FAKE_MODEL],
        datasets=[{"name": "demo-arith", "limit": PROBLEMS}], budgets=budgets, seeds=SEEDS, problems_per_unit=2,
        **changes,
    )  # fmt: skip
    return load_sweep(path)


def ttscale(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "ttscale.cli", *args], capture_output=True, text=True, timeout=timeout)


def largest_gaps(store: ResultStore, n: int) -> list[tuple[int, int]]:
    """The n gaps where the stored dataset curve of p_correct changes most, computed here from the rows."""
    values = problem_values(store.read_pandas(), "p_correct")
    curve = values.groupby("budget")["value"].mean()
    return [(g.lo, g.hi) for g in dataset_gaps(curve.index, curve.to_numpy())[:n]]


def test_refine_cuts_new_budgets_from_stored_trajectories_and_records_the_refined_grid(ray_local, make_sweep):
    loaded = fake_sweep(make_sweep)
    store = ResultStore(loaded.spec.output_dir)
    assert run_sweep(loaded, address=None).rows_written == PAIRS * len(BUDGETS)
    before, manifest_before = trajectories(store), store.manifest()
    scores_before = Results.open(store.root, n_sim=50).emergence("p_correct")

    refinement = plan_refinement(store.root, max_budgets=2)
    (pair,) = refinement.pairs
    assert [(g.lo, g.hi) for g in pair.gaps] == largest_gaps(store, 2)
    assert pair.budgets == [log_spaced(g.lo, g.hi, 1) for g in pair.gaps]
    assert refinement.thinking_tokens == 0 and refinement.forced_answers == PAIRS * 2  # what --dry-run prints
    assert store.manifest() == manifest_before  # planning writes nothing

    record_refinement(refinement)
    outcome = run_sweep(refinement.loaded, address=None, resolved=refinement.resolved)
    assert outcome.rows_written == PAIRS * 2 and outcome.thinking_tokens == 0  # only forced answers ran
    assert trajectories(store) == before  # nothing generated, nothing stored again
    rows = store.read_pandas()
    new = rows[rows.budget.isin(pair.added)]
    assert len(new) == PAIRS * 2 and set(new.problem_id) == set(rows.problem_id)  # every problem and seed
    for row in new.itertuples():
        traj = before[row.trajectory_id]
        assert list(traj["text"][: row.thinking_chars].encode()) == cut(traj, row.budget)  # a prefix, token for token

    (recorded,) = store.manifest()["refinements"]
    assert recorded["pairs"][0]["budgets"] == pair.added and recorded["metric"] == "p_correct"
    grid = sorted({*BUDGETS, *pair.added})
    assert [r["budget"] for r in sweep_status(store.root).completion] == grid
    assert all(r["done"] == r["rows"] for r in sweep_status(store.root).completion)
    again = resolve_in(load_sweep(loaded.path), store)  # `ttscale sweep` on the same file: nothing to redo
    assert again.plan.rows_remaining == 0 and again.plan.pairs[0].budgets == grid

    refined = Results.open(store.root, n_sim=50)
    assert refined.refined_pairs() == {("fake", "demo-arith"): tuple(pair.added)}  # the report's view
    scores_after = refined.emergence("p_correct")  # METHOD §6: refined budgets locate the jump, change no score
    kept = ["problem_id", "breakthroughness", "skewness", "jump_size", "p_breakthroughness", "signed_range"]
    assert scores_after[kept].equals(scores_before[kept])
    for ranking in ("reviewed", "score"):
        order = [list(top_k(t, PROBLEMS, ranking=ranking).problem_id) for t in (scores_before, scores_after)]
        assert order[0] == order[1], ranking
    widths = [interval_width(t.jump_interval_lo, t.jump_interval_hi) for t in (scores_before, scores_after)]
    assert ((widths[1] <= widths[0]) | (widths[0] != widths[0])).all()  # located at least as tightly (NaN: flat)

    zoom = plan_refinement(store.root, max_budgets=2)  # a second refine works on the refined grid
    assert zoom.pairs and not set(zoom.pairs[0].added) & set(grid)
    assert all(b in grid for g in zoom.pairs[0].gaps for b in (g.lo, g.hi))


def test_an_interrupted_refinement_is_finished_before_a_new_one_is_chosen(ray_local, make_sweep):
    loaded = fake_sweep(make_sweep)
    store = ResultStore(loaded.spec.output_dir)
    run_sweep(loaded, address=None)
    refinement = plan_refinement(store.root, max_budgets=1)
    record_refinement(refinement)  # recorded, then killed before any unit ran

    resumed = plan_refinement(store.root, max_budgets=3)
    assert resumed.resuming and not resumed.pairs and resumed.forced_answers == PAIRS
    assert resolve_in(load_sweep(loaded.path), store).plan.rows_remaining == PAIRS  # `ttscale sweep` resumes it too
    assert run_sweep(resumed.loaded, address=None, resolved=resumed.resolved).thinking_tokens == 0
    assert len(store.manifest()["refinements"]) == 1
    assert not plan_refinement(store.root, max_budgets=1).resuming


def test_plan_estimates_only_the_thinking_stored_trajectories_do_not_hold(ray_local, make_sweep):
    store = ResultStore(fake_sweep(make_sweep, [8, 32]).spec.output_dir)
    run_sweep(fake_sweep(make_sweep, [8, 32]), address=None)
    between = resolve_in(fake_sweep(make_sweep, [8, 16, 32]), store).plan.pairs[0]
    assert between.thinking_tokens == 0 and between.forced_answers == PAIRS
    above = resolve_in(fake_sweep(make_sweep, [8, 16, 32, 64]), store).plan.pairs[0]
    assert above.thinking_tokens == PAIRS * (64 - 32)  # only the extension


def test_refine_refuses_what_it_cannot_do_in_one_line(ray_local, make_sweep, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = ttscale("refine", str(empty))
    assert result.returncode == 1 and "no manifest.json" in result.stderr and len(result.stderr.splitlines()) == 1

    independent = fake_sweep(make_sweep, forcing={"trajectory": "independent"}, output_dir=str(tmp_path / "ind"))
    run_sweep(independent, address=None)
    result = ttscale("refine", str(independent.spec.output_dir), "--dry-run")
    assert result.returncode == 1 and "independent" in result.stderr and len(result.stderr.splitlines()) == 1

    loaded = fake_sweep(make_sweep)
    run_sweep(loaded, address=None)
    result = ttscale("refine", str(loaded.spec.output_dir), "--metric", "p_wrong")
    assert result.returncode == 1 and "--metric" in result.stderr and len(result.stderr.splitlines()) == 1
    ResultStore(loaded.spec.output_dir).row_shards()[0].unlink()  # a sweep with rows missing
    result = ttscale("refine", str(loaded.spec.output_dir))
    assert result.returncode == 1 and "Finish it first" in result.stderr
    assert not json.loads((loaded.spec.output_dir / "manifest.json").read_text())["refinements"]  # none recorded


def test_dry_run_prints_budgets_and_cost_and_changes_nothing(ray_local, make_sweep):
    loaded = fake_sweep(make_sweep)
    run_sweep(loaded, address=None)
    manifest = (loaded.spec.output_dir / "manifest.json").read_text()
    result = ttscale("refine", str(loaded.spec.output_dir), "--dry-run", "--max-budgets", "3")
    assert result.returncode == 0, result.stderr
    assert f"cost: 0 thinking tokens, {PAIRS * 3} forced answers" in result.stdout
    assert (loaded.spec.output_dir / "manifest.json").read_text() == manifest


def test_refine_on_smollm2_generates_no_thinking(ray_local, make_sweep):
    """The real model through the real hf engine: the new budget is cut from SmolLM2's stored trajectories."""
    loaded = load_sweep(make_sweep(budgets=[8, 32], seeds=1, problems_per_unit=2))
    store = ResultStore(loaded.spec.output_dir)
    run_sweep(loaded, address=None)
    before = trajectories(store)
    refinement = plan_refinement(store.root, metric="p_correct", max_budgets=1)
    assert refinement.pairs[0].added == [16] and refinement.thinking_tokens == 0
    record_refinement(refinement)
    outcome = run_sweep(refinement.loaded, address=None, resolved=refinement.resolved)
    assert outcome.rows_written == 2 and outcome.thinking_tokens == 0
    assert trajectories(store) == before
    new = store.read_pandas().query("budget == 16")
    assert (new.trajectory_tokens == 32).all() and (new.thinking_tokens == 16).all()
