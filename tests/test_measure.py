"""measure() end to end on the real SmolLM2 model, and the bad inputs it must refuse in one line."""

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from ttscale.engines.fake import FakeEngine
from ttscale.errors import ConfigError, ModelError, TaskError
from ttscale.forcing import ForcingConfig
from ttscale.measure import measure
from ttscale.schema import ROW_SCHEMA, TRAJECTORY_SCHEMA


@pytest.mark.model
def test_measure_gives_one_row_per_problem_seed_budget(smol):
    result = measure(smol, "demo-mc", budgets=[8, 16], seeds=2, limit=2)
    rows = result.to_pandas()
    assert result.rows.schema.equals(ROW_SCHEMA) and result.trajectories.schema.equals(TRAJECTORY_SCHEMA)
    assert len(rows) == 2 * 2 * 2
    assert not rows.duplicated(["cell_id", "problem_id"]).any()
    assert rows.groupby(["budget", "seed"]).cell_id.nunique().eq(1).all()  # one cell id per (budget, seed)
    assert (rows.thinking_tokens <= rows.budget).all()
    assert set(rows.solution_set) == {"letters-4"}
    for dist in rows.distribution:
        assert len(dist) == 4 and np.sum(dist) == pytest.approx(1.0, abs=1e-5)
    assert rows.correct.isin([0, 1]).all() and rows.error.isna().all()
    assert len(result.trajectories) == 2 * 2  # nested: one trajectory per (problem, seed)
    # the gold letter follows the per-seed shuffle: the option shown at the gold letter is the right one
    from ttscale.tasks import get_task

    problems = {p.id: p for p in get_task("demo-mc").load(2)}
    for row in rows.itertuples():
        source_index = row.choice_order["ABCD".index(row.gold)]
        assert source_index == problems[row.problem_id].gold_index


@pytest.mark.model
def test_independent_mode_keeps_the_reasoning_in_each_row(smol):
    independent = ForcingConfig(trajectory="independent")
    rows = measure(smol, "demo-arith", budgets=[8, 16], seeds=1, limit=1, forcing=independent).to_pandas()
    assert len(rows) == 2 and rows.thinking_text.notna().all()
    assert [len(ids) for ids in rows.thinking_token_ids] == list(rows.budget + rows.injected_tokens)
    assert rows.solution_set.eq("int-0-99").all() and rows.p_correct.between(0, 1).all()


@pytest.mark.parametrize("budgets", [[0], [-16, 32], [16, 2.5]])
def test_a_non_positive_budget_is_refused(budgets):
    with pytest.raises(ConfigError, match="budget"):
        measure("smollm2-135m", "demo-arith", budgets=budgets)


def test_an_unknown_model_alias_is_refused():
    with pytest.raises(ModelError, match=r"Unknown model 'smollm9-1m': not an alias \(known: smollm2-135m\)"):
        measure("smollm9-1m", "demo-arith", budgets=[16])


def test_a_missing_dataset_file_is_refused(tmp_path):
    with pytest.raises(TaskError, match="not found"):
        measure("smollm2-135m", str(tmp_path / "nope.jsonl"), budgets=[16])


def test_a_dataset_lacking_its_columns_is_refused(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"prompt": "2+2?", "target": "4"}) + "\n")
    with pytest.raises(TaskError, match="column"):
        measure("smollm2-135m", str(path), budgets=[16])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budgets", "0,16"], "Every budget must be a positive integer"),
        (["--model", "smollm9-1m"], "Unknown model 'smollm9-1m'"),
        (["--dataset", "missing.jsonl"], "Dataset file not found"),
        (["--trajectory", "sideways"], "Use nested or independent"),
    ],
)
def test_cli_errors_are_one_line_and_exit_non_zero(tmp_path, args, message):
    out = tmp_path / "rows.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "ttscale.cli", "run-local", *args, "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], proc.stderr
    assert not out.exists()  # nothing half-written


@pytest.mark.model
def test_measure_cuts_new_budgets_from_the_trajectories_an_earlier_call_returned(smol):
    first = measure(smol, "demo-arith", budgets=[8, 32], seeds=1, limit=2)
    generated = []
    second = measure(
        smol, "demo-arith", budgets=[16], seeds=1, limit=2, stored=first.trajectories,
        on_unit=lambda _done, _total, tokens: generated.append(tokens),
    )  # fmt: skip
    assert second.trajectories.num_rows == 0  # every trajectory cut from the stored one, none stored again
    answers = second.to_pandas().answer_tokens.sum()
    assert sum(generated) == answers  # only the forced answers were generated: no thinking token
    chars = first.to_pandas().set_index(["trajectory_id", "budget"]).thinking_chars
    for row in second.to_pandas().itertuples():
        assert row.trajectory_tokens == 32 and row.thinking_tokens == 16
        # text[:thinking_chars] of the same stored trajectory, between the cuts at 8 and 32 tokens
        assert chars[row.trajectory_id, 8] <= row.thinking_chars <= chars[row.trajectory_id, 32]


def test_a_measurement_writes_its_rows_and_trajectories_beside_them(tmp_path):
    result = measure(FakeEngine(), "demo-arith", budgets=[8, 16], seeds=2, limit=2)
    result.write(str(tmp_path / "out" / "rows.parquet"))  # a str, as the README writes it
    assert pq.read_table(tmp_path / "out" / "rows.parquet").equals(result.rows)
    assert pq.read_table(tmp_path / "out" / "rows.trajectories.parquet").num_rows == result.trajectories.num_rows == 4


def test_measure_refuses_the_seeds_a_sweep_file_refuses():
    with pytest.raises(ConfigError, match="Seeds must be distinct"):
        measure(FakeEngine(), "demo-arith", budgets=[8], seeds=[1, 1], limit=1)
