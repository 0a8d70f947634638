"""Planning is pure: cell ids, units, resume by subtraction, identity changes, token estimates."""

import pytest

from ttscale.sweeps.plan import build_plan
from ttscale.sweeps.spec import ModelSpec, SweepSpec

DATASET = {"name": "d", "version": 1}


def spec(**changes):
    base = {
        "name": "t", "output_dir": "out", "models": [{"name": "smollm2-135m"}], "datasets": [{"name": "demo-arith"}],
        "budgets": [16, 32], "seeds": 2, "problems_per_unit": 2,
    }  # fmt: skip
    base.update(changes)
    return SweepSpec.model_validate(base)


PIDS = [["p0", "p1", "p2"]]


def all_keys(plan, unit_list=None):
    keys = set()
    for unit in unit_list or plan.units:
        keys |= plan.expected_keys(unit, set())
    return keys


def test_cells_units_and_rows():
    plan = build_plan(spec(), [DATASET], PIDS)
    assert len(plan.cell_ids) == 2 * 2  # budgets × seeds
    assert [u.problem_ids for u in plan.units] == [("p0", "p1"), ("p2",)]
    assert plan.rows_total == 3 * 4 and plan.rows_remaining == 12
    assert len(all_keys(plan)) == 12


def test_done_rows_are_subtracted_exactly():
    first = build_plan(spec(), [DATASET], PIDS)
    done = first.expected_keys(first.units[0], set())
    again = build_plan(spec(), [DATASET], PIDS, done)
    assert again.rows_done == len(done) and [u.problem_ids for u in again.units] == [("p2",)]
    assert build_plan(spec(), [DATASET], PIDS, all_keys(first)).units == []


def test_adding_a_budget_runs_only_the_new_cells():
    old = build_plan(spec(), [DATASET], PIDS)
    new = build_plan(spec(budgets=[16, 32, 64]), [DATASET], PIDS, all_keys(old))
    assert {u.budgets for u in new.units} == {(64,)}
    assert new.rows_remaining == 3 * 2
    assert all(old.cell_ids[k] == new.cell_ids[k] for k in old.cell_ids)  # old cells keep their ids


def test_raising_the_limit_runs_only_the_new_problems():
    """p2 was done in a batch of one; with p3 added it shares a batch with p3, which alone must run."""
    old = build_plan(spec(), [DATASET], PIDS)
    new = build_plan(spec(), [DATASET], [["p0", "p1", "p2", "p3"]], all_keys(old))
    assert [u.problem_ids for u in new.units] == [("p3",)]
    assert new.rows_remaining == new.units[0].rows == 1 * 2 * 2


def test_adding_seeds_and_datasets_runs_only_new_cells():
    old = build_plan(spec(), [DATASET], PIDS)
    more = spec(seeds=3, datasets=[{"name": "demo-arith"}, {"name": "demo-mc"}])
    new = build_plan(more, [DATASET, {"name": "e"}], [*PIDS, ["q0"]], all_keys(old))
    assert new.rows_remaining == 3 * 2 * 1 + 1 * 2 * 3  # seed 2 on the old dataset + all of the new one


@pytest.mark.parametrize(
    "change",
    [
        {"models": [{"name": "smollm2-135m", "overrides": {"forced_answer": "\nSo the answer is \\boxed{"}}]},
        {"models": [{"name": "smollm2-135m", "overrides": {"continuation": "\nHmm"}}]},
        {"sampling": {"temperature": 0.7}},
        {"forcing": {"trajectory": "independent"}},
        {"forcing": {"on_early_stop": "accept"}},
        {"models": [{"name": "smollm2-135m", "dtype": "bfloat16"}]},
    ],
)
def test_result_changing_options_give_new_cell_ids(change):
    old = build_plan(spec(), [DATASET], PIDS)
    new = build_plan(spec(**change), [DATASET], PIDS)
    assert set(old.cell_ids.values()).isdisjoint(new.cell_ids.values())


def test_placement_options_keep_cell_ids():
    old = build_plan(spec(), [DATASET], PIDS)
    new = build_plan(
        spec(models=[{"name": "smollm2-135m", "replicas": 3, "threads": 1}], problems_per_unit=1, name="other"),
        [DATASET], PIDS,
    )  # fmt: skip
    assert old.cell_ids == new.cell_ids


def test_token_estimates_favour_nested():
    plan = build_plan(spec(budgets=[16, 32, 64, 128]), [DATASET], PIDS)
    pair = plan.pairs[0]
    answers = 16 * 4
    assert pair.tokens_nested == 3 * 2 * (128 + answers)
    assert pair.tokens_independent == 3 * 2 * (16 + 32 + 64 + 128 + answers)


def test_engine_options_carry_dtype_threads_and_vllm_context_and_parallelism():
    from ttscale.sweeps.plan import PROMPT_TOKENS, context_tokens, engine_options

    spec = SweepSpec.model_validate(
        {"name": "e", "output_dir": "o", "models": [{"name": "m"}], "datasets": [{"name": "d"}],
         "budgets": [128, 4096], "seeds": 1}
    )  # fmt: skip
    hf = engine_options(spec, ModelSpec(name="m", engine_options={"max_batch": 8}), threads=2)
    assert hf == {"max_batch": 8, "dtype": "float32", "threads": 2}
    tp2 = engine_options(spec, ModelSpec(name="org/m", engine="vllm", tensor_parallel=2), threads=1)
    assert tp2["tensor_parallel"] == 2 and tp2["distributed_executor_backend"] == "mp"
    assert tp2["device"] == "cuda" and "threads" not in tp2  # the device is the placement's, not torch's guess
    cpu3 = engine_options(spec, ModelSpec(name="m", engine="vllm", device="cpu", tensor_parallel=3), threads=2)
    assert (cpu3["device"], cpu3["threads"], cpu3["distributed_executor_backend"]) == ("cpu", 2, "mp")
    assert tp2["dtype"] == "bfloat16" and tp2["max_model_len"] == context_tokens(spec)
    assert PROMPT_TOKENS + 4096 < context_tokens(spec) < PROMPT_TOKENS + 4096 + 1024  # room for continuations
    mine = engine_options(
        spec, ModelSpec(name="org/m", engine="vllm", engine_options={"max_model_len": 9000}), threads=1
    )
    assert mine["max_model_len"] == 9000  # the sweep's own value wins
