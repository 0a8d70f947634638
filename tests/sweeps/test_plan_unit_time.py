"""Units sized by time: each unit's estimated minutes (tokens over a measured or default rate), and
`unit_target_minutes` choosing problems (and seeds) per unit. Pure: no Ray, no model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from ttscale import ids
from ttscale.errors import ConfigError
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.plan import StoredLength, build_plan, run_settings
from ttscale.sweeps.rates import DEFAULT_RATES, default_rate, measured_rates, model_size_b, rate_for
from ttscale.sweeps.spec import ModelSpec, SweepSpec

DATASET = {"name": "d", "version": 1}
PIDS = [[f"p{i}" for i in range(10)]]
BIG = "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"


def spec(**changes):
    base = {
        "name": "t", "output_dir": "out", "models": [{"name": BIG, "engine": "vllm", "tensor_parallel": 2}],
        "datasets": [{"name": "demo-arith"}], "budgets": {"log2": [7, 14]}, "seeds": 8, "problems_per_unit": 4,
    }  # fmt: skip
    base.update(changes)
    return SweepSpec.model_validate(base)


def done_line(model, tokens, seconds, *, actor="a#0", started=None, thinking=None, **extra):
    line = {"event": "done", "unit": "u", "actor": actor, "model": model, "rows": 1, "seconds": seconds,
            "tokens": tokens, "thinking_tokens": tokens if thinking is None else thinking, **extra}  # fmt: skip
    if started is not None:
        line["started"] = started
    return line


def all_keys(plan, units=None):
    return {k for u in (plan.units if units is None else units) for k in plan.expected_keys(u, set())}


# -- the rate ----------------------------------------------------------------------------------------------


def test_a_measured_rate_is_the_units_tokens_over_their_wall_time():
    events = [
        {"event": "run_start", "units": 3},
        {"event": "dispatch", "unit": "u", "actor": "a#0"},
        # two units overlapping on one vllm actor for 50 of their 100 s each: 150 s busy, 200 s of unit time
        done_line("m", 20_000, 100.0, started=1000.0),
        done_line("m", 40_000, 100.0, started=1050.0),
        done_line("m", 500, 50.0, actor="a#1", started=1000.0, thinking=0),  # answers only: left out
        {"event": "done", "unit": "old", "actor": "a#0", "rows": 4, "seconds": 9.0},  # an older line: skipped
        done_line("other", 3_000, 30.0),
    ]
    measured = measured_rates(events)
    assert set(measured) == {"m", "other"}
    m = measured["m"]
    assert (m.units, m.tokens, m.seconds) == (2, 60_000, 200.0)
    assert m.tokens_per_s == 300.0 and m.units_at_once == pytest.approx(200 / 150)
    rate = rate_for(ModelSpec(name="m", engine="vllm"), m)
    assert (rate.tokens_per_s, rate.source, rate.label) == (300.0, "measured", "measured")
    assert "2 finished units" in rate.basis and "1.3 at once" in rate.basis
    answers_only = measured_rates([done_line("m", 500, 50.0, thinking=0)])["m"]
    assert answers_only.tokens_per_s == 10.0  # with nothing else measured, they are what there is


def test_the_default_rate_comes_from_the_table_by_engine_device_and_size():
    smol = default_rate(ModelSpec(name="smollm2-135m"))
    assert (smol.tokens_per_s, smol.source, smol.assumed) == (30.0, "default", False)  # measured on CPU
    assert "docs/benchmarks.md" in smol.basis
    big = default_rate(ModelSpec(name=BIG, engine="vllm", tensor_parallel=2))
    assert (big.tokens_per_s, big.assumed, big.label) == (250.0, True, "default (assumed)")
    assert "not measured" in big.basis
    phi = default_rate(ModelSpec(name="microsoft/Phi-4-reasoning-plus", engine="vllm"))
    assert phi.tokens_per_s == 500.0  # 14.7B: the ≤16B row, though its name says no size
    nameless = default_rate(ModelSpec(name="org/mystery", engine="vllm"))
    assert nameless.tokens_per_s == 250.0 and "largest row" in nameless.basis
    quantised = default_rate(ModelSpec(name="org/Model-7B", device="gpu", quantization=8))
    assert quantised.tokens_per_s == 250.0 / 4 and quantised.assumed
    double = default_rate(ModelSpec(name="fake", engine="fake", engine_options={"seconds_per_token": 0.01}))
    assert double.tokens_per_s == pytest.approx(100.0)
    # every engine that loads weights has a row on each device it can run on
    assert {(r.engine, r.on_gpus) for r in DEFAULT_RATES} == {("hf", False), ("hf", True), ("vllm", False),
                                                               ("vllm", True)}  # fmt: skip


def test_the_sweep_files_rate_replaces_the_default_until_a_run_measures_one():
    model = ModelSpec(name=BIG, engine="vllm", tokens_per_s=400)
    assert rate_for(model).tokens_per_s == 400.0 and rate_for(model).source == "sweep file"
    measured = measured_rates([done_line(BIG, 6_000, 60.0)])[BIG]
    assert rate_for(model, measured).tokens_per_s == 100.0


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 1.5), ("Qwen/QwQ-32B", 32.0), ("smollm2-135m", 0.135),
        ("~/models/SmolLM2-135M-Instruct.Q4_1.gguf", 0.135), ("meta-llama/Llama-3.1-8B-Instruct", 8.0),
        ("microsoft/Phi-4-reasoning-plus", 14.7), ("org/mystery", None),
    ],
)  # fmt: skip
def test_a_models_size_is_read_from_its_name(name, size):
    assert model_size_b(name) == size


# -- the estimate ------------------------------------------------------------------------------------------


def test_each_units_minutes_are_its_tokens_over_its_models_rate():
    measured = measured_rates([done_line(BIG, 60_000, 120.0)])  # 500 tokens/s
    plan = build_plan(spec(), [DATASET], PIDS, measured=measured)
    for unit in plan.units:
        assert plan.unit_minutes(unit) == pytest.approx(unit.tokens / 500 / 60)
    times = plan.to_json()["models"]
    assert [t["model"] for t in times] == [BIG] and times[0]["rate_source"] == "measured"
    assert times[0]["tokens_per_s"] == 500.0 and times[0]["units"] == len(plan.units) == 3
    full = 4 * 8 * (2**14 + 16 * 8) / 500 / 60  # 4 problems × 8 seeds × (B_max + 8 forced answers)
    assert times[0]["unit_minutes_max"] == round(full, 2) and times[0]["unit_minutes_median"] == round(full, 2)
    default = build_plan(spec(), [DATASET], PIDS).to_json()["models"][0]
    assert default["rate_source"] == "default" and default["rate_assumed"] and default["tokens_per_s"] == 250.0


def test_without_a_target_the_plan_is_what_it_was():
    """Unit ids (and so units) are those the plan made before units could be sized by time."""
    models = [{"name": "smollm2-135m"}, {"name": "org/Other-7B", "engine": "vllm"}]
    s = SweepSpec.model_validate({
        "name": "t", "output_dir": "out", "models": models, "datasets": [{"name": "demo-arith"}],
        "budgets": [16, 32, 64], "seeds": 3, "problems_per_unit": 2,
    })  # fmt: skip
    plan = build_plan(s, [DATASET], [["p0", "p1", "p2", "p3", "p4"]])
    assert [u.unit_id for u in plan.units] == ["70c47da08dbd3ccc", "7f1424125cddee97", "d38e5cc46bd01823",
                                               "dd4d80cda26401e9", "98026b19f477cec9", "fdfa256132628ceb"]  # fmt: skip
    assert [p.problems_per_unit for p in plan.pairs] == [2, 2] and plan.to_json()["unit_target_minutes"] is None
    measured = measured_rates([done_line("smollm2-135m", 10, 100.0)])
    assert [u.unit_id for u in build_plan(s, [DATASET], [["p0", "p1", "p2", "p3", "p4"]], measured=measured).units] \
        == [u.unit_id for u in plan.units]  # a rate changes estimates, never units, without a target  # fmt: skip


# -- sizing to a target ------------------------------------------------------------------------------------


def test_units_are_sized_to_the_target():
    # 32B at the default 250 tokens/s: one problem (8 seeds × (16384 + 8 × 16) tokens) is ~8.8 minutes
    plan = build_plan(spec(unit_target_minutes=30), [DATASET], PIDS)
    assert plan.pairs[0].problems_per_unit == 3 and plan.pairs[0].seeds_per_unit == 8
    assert [len(u.problem_ids) for u in plan.units] == [3, 3, 3, 1]
    assert all(plan.unit_minutes(u) <= 30 for u in plan.units)
    assert all_keys(plan) == all_keys(build_plan(spec(), [DATASET], PIDS))  # the same rows, cut differently
    roomy = build_plan(spec(unit_target_minutes=600), [DATASET], PIDS)
    assert roomy.pairs[0].problems_per_unit == 4  # problems_per_unit stays the upper bound
    fast = measured_rates([done_line(BIG, 100_000, 10.0)])  # 10,000 tokens/s: 4 problems in ~3.5 min
    assert build_plan(spec(unit_target_minutes=30), [DATASET], PIDS, measured=fast).pairs[0].problems_per_unit == 4


def test_one_problem_over_the_target_is_split_by_seeds():
    plan = build_plan(spec(unit_target_minutes=3), [DATASET], PIDS)  # one (problem, seed): ~1.1 minutes
    assert plan.pairs[0].problems_per_unit == 1 and plan.pairs[0].seeds_per_unit == 2
    assert {u.seeds for u in plan.units} == {(0, 1), (2, 3), (4, 5), (6, 7)}
    assert all(len(u.problem_ids) == 1 and plan.unit_minutes(u) <= 3 for u in plan.units)
    keys = [k for u in plan.units for k in plan.expected_keys(u, set())]
    assert len(keys) == len(set(keys)) == plan.rows_total  # every row once
    balanced = build_plan(spec(unit_target_minutes=6), [DATASET], PIDS)  # 5 seeds fit: 4 + 4, not 5 + 3
    assert {len(u.seeds) for u in balanced.units} == {4}


def test_a_single_problem_and_seed_over_the_target_stays_whole_and_is_reported():
    plan = build_plan(spec(unit_target_minutes=0.5), [DATASET], PIDS)
    assert all(len(u.problem_ids) == 1 and len(u.seeds) == 1 for u in plan.units)
    assert len(plan.units) == 10 * 8
    (times,) = plan.unit_times()
    assert len(times.over_target) == 80 and min(times.over_target) > 0.5
    assert plan.to_json()["models"][0]["units_over_target"] == 80


def test_problems_missing_different_seeds_are_halved_until_they_fit():
    """After a partial run, a batch's rectangle (its problems × the union of their missing seeds) can cost more
    than its costliest problem times the batch size; such a unit is halved."""
    full = build_plan(spec(seeds=2, problems_per_unit=2), [DATASET], PIDS)
    # p0, p2, ... miss seed 1 only; p1, p3, ... seed 0 only: each problem costs one (problem, seed)
    done = {(full.cell_ids[0, 0, b, i % 2], p) for b in full.grids[0, 0] for i, p in enumerate(PIDS[0])}
    one_seed = 2**14 + 16 * 8  # one (problem, seed): ~1.1 min at 250 tokens/s
    target = 2.2 * one_seed / 250 / 60  # two problems fit, but not as a 2 × 2 rectangle of (problem, seed)s
    plan = build_plan(spec(seeds=2, problems_per_unit=2, unit_target_minutes=target), [DATASET], PIDS, done)
    assert plan.pairs[0].problems_per_unit == 2
    assert all(plan.unit_minutes(u) <= target for u in plan.units)
    first = [(u.problem_ids, u.seeds) for u in plan.units if set(u.problem_ids) & {"p0", "p1"}]
    assert first == [(("p0",), (1,)), (("p1",), (0,))]  # the batch p0, p1 halved
    assert all_keys(plan) == all_keys(full) - done


def test_stored_trajectories_make_units_larger():
    """Budgets cut from stored trajectories cost only forced answers: the sizing follows the remaining work."""
    s = spec(unit_target_minutes=30, problems_per_unit=10)
    settings = run_settings(s, s.models[0])
    stored = {
        ids.trajectory_id(model=settings.model_identity(), dataset=DATASET, settings=settings.trajectory_identity(),
                          problem_id=p, seed=seed, budget=None): StoredLength(2**14, finished=False)
        for p in PIDS[0] for seed in s.seeds
    }  # fmt: skip
    assert build_plan(s, [DATASET], PIDS).pairs[0].problems_per_unit == 3
    reusing = build_plan(s, [DATASET], PIDS, stored=stored)
    assert reusing.pairs[0].problems_per_unit == 10 and reusing.pairs[0].thinking_tokens == 0


# -- ids and resume ----------------------------------------------------------------------------------------


def test_unit_ids_stay_stable_for_a_given_sizing():
    first = build_plan(spec(unit_target_minutes=30), [DATASET], PIDS)
    again = build_plan(spec(unit_target_minutes=30), [DATASET], PIDS)
    assert [u.unit_id for u in first.units] == [u.unit_id for u in again.units]
    done = first.expected_keys(first.units[0], set())  # the first unit finished, the rest did not
    resumed = build_plan(spec(unit_target_minutes=30), [DATASET], PIDS, done)
    assert [u.unit_id for u in resumed.units] == [u.unit_id for u in first.units[1:]]


@pytest.mark.parametrize(("before", "after"), [(None, 30), (30, None), (30, 3), (3, 60), (0.5, 30)])
def test_resume_across_a_change_of_sizing_writes_nothing_twice(before, after):
    old = build_plan(spec(unit_target_minutes=before), [DATASET], PIDS)
    done = all_keys(old, old.units[: len(old.units) // 2])  # the first run finished half its units
    new = build_plan(spec(unit_target_minutes=after), [DATASET], PIDS, done)
    planned = [k for u in new.units for k in new.expected_keys(u, done)]
    assert len(planned) == len(set(planned))  # no row in two units
    assert not set(planned) & done  # no row that is stored
    assert set(planned) | done == all_keys(build_plan(spec(), [DATASET], PIDS))  # and every row once in all
    assert new.rows_remaining == len(planned) == sum(u.rows for u in new.units)


# -- the sweep file and the command ------------------------------------------------------------------------

GOOD = {
    "name": "t", "models": [{"name": "smollm2-135m"}], "datasets": [{"name": "demo-arith", "limit": 2}],
    "budgets": [16, 32], "seeds": 2,
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"unit_target_minutes": -1}, r"^Got -1 for .*sweep\.yaml: `unit_target_minutes`\. Give a number of minutes in "
         r"\(0, 10,080\], e\.g\. 30, or leave it out to size units by problems_per_unit\.$"),
        ({"unit_target_minutes": 0}, r"Got 0 for .*`unit_target_minutes`\. Give a number of minutes"),
        ({"unit_target_minutes": "soon"}, r"Got 'soon' for .*`unit_target_minutes`"),
        ({"unit_target_minutes": True}, r"Got True for .*`unit_target_minutes`"),
        ({"models": [{"name": "smollm2-135m", "tokens_per_s": 0}]},
         r"Got 0 for .*`models\.0\.tokens_per_s`\. Give a number of tokens per second"),
    ],
)  # fmt: skip
def test_bad_sizing_values_are_one_line_errors_naming_the_field(tmp_path, change, message):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "output_dir": str(tmp_path / "out"), **change}))
    with pytest.raises(ConfigError, match=message) as info:
        load_sweep(path)
    assert "\n" not in str(info.value)
    fine = {**GOOD, "output_dir": str(tmp_path / "out"), "unit_target_minutes": 45}
    path.write_text(yaml.safe_dump(fine))
    assert load_sweep(path).spec.unit_target_minutes == 45.0


def test_plan_shows_minutes_per_unit_and_the_measured_rate(tmp_path, make_sweep):
    path = make_sweep(budgets=[16, 32, 64], unit_target_minutes=0.5, problems_per_unit=2)
    results = tmp_path / "results"
    results.mkdir()
    lines = [done_line("smollm2-135m", 600, 60.0), {"event": "done", "unit": "x", "seconds": 1.0}]  # 10 tokens/s
    (results / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    run = [sys.executable, "-m", "ttscale.cli", "plan", str(path)]
    shown = subprocess.run([*run, "--json"], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    plan = json.loads(shown.stdout)
    (model,) = plan["models"]
    assert (model["rate_source"], model["tokens_per_s"]) == ("measured", 10.0)
    assert plan["unit_target_minutes"] == 0.5 and model["unit_minutes_max"] <= 0.5
    assert plan["pairs"][0]["problems_per_unit"] == 1  # one problem, 2 seeds × (64 + 3 × 16) tokens, is 22 s
    table = subprocess.run(run, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    assert "estimated time per unit" in table.stdout and "measured" in table.stdout
    assert "1 finished unit of earlier runs" in table.stdout
