"""Bad dataset rows (empty question, missing or ungradable gold, repeated id, invalid UTF-8 or JSON) are refused
in one line, or skipped with their counts reported, as the sweep file's `bad_rows` says."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from ttscale.errors import ConfigError, TaskError, TtscaleWarning
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.resolve import resolve
from ttscale.tasks import get_task

GOOD = [{"id": f"q{i}", "problem": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(4)]


def bad_jsonl(path: Path) -> Path:
    """Four good rows and one of each kind of bad row, with a blank line (skipped, but counted as a line)."""
    lines = [json.dumps(r).encode() for r in GOOD]
    lines += [
        b"",
        json.dumps({"id": "e", "problem": "  ", "answer": "1"}).encode(),  # line 6: empty question
        json.dumps({"id": "g", "problem": "What is 2 + 2?"}).encode(),  # line 7: no gold
        json.dumps({"id": "q1", "problem": "Again?", "answer": "3"}).encode(),  # line 8: repeats q1
        b'{"id": "u", "problem": "caf\xe9?", "answer": "1"}',  # line 9: Latin-1, not UTF-8
        b'{"id": "j", "problem": ',  # line 10: truncated JSON
        json.dumps({"id": "s", "problem": "\ud800?", "answer": "1"}).encode(),  # line 11: a lone surrogate
        json.dumps({"id": "b", "problem": "Braces?", "answer": "\\frac{1}{"}).encode(),  # line 12: ungradable
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_bad_rows_refuse_the_dataset_in_one_line_with_counts_and_the_first(tmp_path):
    task = get_task(str(bad_jsonl(tmp_path / "d.jsonl")))
    with pytest.raises(TaskError) as caught:
        task.load()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"'{tmp_path / 'd.jsonl'}' has 7 bad rows of 11 (")
    assert (
        "2 invalid UTF-8, 1 invalid JSON, 1 empty question, 2 missing or unparsable gold, 1 duplicate id); "
        "the first, line 6: column 'problem' is empty." in message
    )
    assert "`bad_rows: skip`" in message


def test_skip_drops_them_warns_and_reports_counts_per_kind(tmp_path):
    task = get_task(str(bad_jsonl(tmp_path / "d.jsonl")), bad_rows="skip")
    with pytest.warns(TtscaleWarning, match=r"d\.jsonl': skipped 7 bad rows of 11 .*the first, line 6"):
        problems, report = task.load_checked()
    assert [p.id for p in problems] == ["q0", "q1", "q2", "q3"]
    assert problems[1].question == "What is 1 + 1?"  # the first row with an id wins, the repeat goes
    assert report.counts == {
        "invalid_utf8": 2,
        "invalid_json": 1,
        "empty_question": 1,
        "bad_gold": 2,
        "duplicate_id": 1,
    }
    assert [(b.where, b.kind) for b in report.bad][:3] == [
        ("line 6", "empty_question"),
        ("line 7", "bad_gold"),
        ("line 8", "duplicate_id"),
    ]


def test_a_clean_file_loads_without_warnings(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in GOOD))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        problems, report = get_task(str(path)).load_checked()
    assert len(problems) == 4 and report.counts == {} and report.rows == 4


def test_integer_golds_must_be_integers(tmp_path):
    path = tmp_path / "aime.jsonl"
    path.write_text(json.dumps({"id": "1", "problem": "p", "answer": "twelve"}) + "\n" + json.dumps(GOOD[0]) + "\n")
    with pytest.raises(TaskError, match=r"line 1: gold 'twelve' is not an integer"):
        get_task("aime24", path=str(path)).load()
    problems = get_task("aime24", path=str(path), bad_rows="skip")
    with pytest.warns(TtscaleWarning):
        assert [p.id for p in problems.load()] == ["q0"]


def test_parquet_rows_with_invalid_utf8_are_that_rows_problem(tmp_path):
    raw = pa.array([b"What is 1 + 1?", b"\xff\xfe broken", b"What is 3 + 3?"], type=pa.binary())
    question = pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())  # a string column, never validated
    pq.write_table(
        pa.table({"problem": question, "answer": ["2", "4", "6"], "id": ["a", "b", "c"]}), tmp_path / "d.parquet"
    )
    with pytest.raises(TaskError, match=r"1 bad row of 3 \(1 invalid UTF-8\); the first, row 1: a string is not"):
        get_task(str(tmp_path / "d.parquet")).load()
    with pytest.warns(TtscaleWarning):
        assert [p.id for p in get_task(str(tmp_path / "d.parquet"), bad_rows="skip").load()] == ["a", "c"]


def test_a_json_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(b'[{"problem": "caf\xe9", "answer": "1"}]')
    with pytest.raises(TaskError, match=r"'.*d\.json' is not valid UTF-8 \(byte 17\)\. Save it as UTF-8\."):
        get_task(str(path))


def sweep(tmp_path: Path, dataset: dict) -> Path:
    spec = {
        "name": "rows",
        "output_dir": str(tmp_path / "results"),
        "models": [{"name": "m", "engine": "fake"}],
        "datasets": [dataset],
        "budgets": [8],
        "seeds": 1,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_the_sweep_field_chooses_and_the_plan_records_what_was_skipped(tmp_path):
    data = str(bad_jsonl(tmp_path / "d.jsonl"))
    with pytest.raises(ConfigError, match=r"sweep\.yaml: `datasets\.0` \(.*d\.jsonl\): .* has 7 bad rows of 11"):
        resolve(load_sweep(sweep(tmp_path, {"name": data})))
    with pytest.warns(TtscaleWarning, match="skipped 7 bad rows"):
        resolved = resolve(load_sweep(sweep(tmp_path, {"name": data, "bad_rows": "skip"})))
    assert len(resolved.problems[0]) == 4 and resolved.row_reports[0].counts["bad_gold"] == 2
    assert resolved.plan.to_json()["pairs"][0]["bad_rows_skipped"]["duplicate_id"] == 1
    with pytest.raises(ConfigError, match=r"Got 'drop' for .*sweep\.yaml: `datasets\.0\.bad_rows`"):
        load_sweep(sweep(tmp_path, {"name": data, "bad_rows": "drop"}))


def plan_cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ttscale.cli", "plan", str(path), *args], capture_output=True, text=True, timeout=120
    )


def test_ttscale_plan_refuses_in_one_line_and_skips_with_a_warning(tmp_path):
    data = str(bad_jsonl(tmp_path / "d.jsonl"))
    refused = plan_cli(sweep(tmp_path, {"name": data}))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "has 7 bad rows of 11" in lines[0], lines
    assert "bad_rows: skip" in lines[0]
    skipped = plan_cli(sweep(tmp_path, {"name": data, "bad_rows": "skip"}), "--json")
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped 7 bad rows of 11 (2 invalid UTF-8" in skipped.stderr and "Traceback" not in skipped.stderr
    warned = [line for line in skipped.stderr.splitlines() if line.strip()]
    assert len(warned) == 1 and warned[0].startswith("warning: "), skipped.stderr  # one line, not Python's two
    plan = json.loads(skipped.stdout)
    assert plan["rows_total"] == 4 and plan["pairs"][0]["bad_rows_skipped"]["empty_question"] == 1
