"""Loading: registered names, local .jsonl/.json/.parquet files, layouts, column maps and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ttscale.errors import TaskError
from ttscale.tasks import get_task, list_tasks
from ttscale.tasks.formats import gsm8k_gold

GPQA_ROWS = [
    {
        "Question": f"Which particle has charge {q}?",
        "Correct Answer": f" right {i}\n",
        "Incorrect Answer 1": f"wrong {i}a",
        "Incorrect Answer 2": f"wrong {i}b",
        "Incorrect Answer 3": f"wrong {i}c",
        "Record ID": f"rec{i:04d}",
        "Explanation": "long text " * 40,
    }
    for i, q in enumerate(["+1", "-1", "0", "+2", "-1/3"])
]


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_registry_lists_every_dataset():
    assert list_tasks() == ["aime24", "aime25", "gpqa-diamond", "math500", "gsm8k", "demo-arith", "demo-mc"]


@pytest.mark.parametrize(
    ("name", "hub", "fmt", "solution_set"),
    [
        ("aime24", "HuggingFaceH4/aime_2024", "integer", "int-000-999"),
        ("aime25", "math-ai/aime25", "integer", "int-000-999"),
        ("gpqa-diamond", "Idavidrein/gpqa", "choice", "letters-4"),
        ("math500", "HuggingFaceH4/MATH-500", "math", None),
        ("gsm8k", "openai/gsm8k", "math", None),
    ],
)
def test_registered_hub_tasks(name, hub, fmt, solution_set):
    identity = get_task(name).identity()  # no network: nothing is loaded yet
    assert identity["source"]["location"] == hub
    assert (identity["answer_format"], identity["solution_set"]) == (fmt, solution_set)


def test_aime24_local_copy(shared_file):
    task = get_task("aime24", path=str(shared_file("aime24.jsonl")))
    problems = task.load()
    assert [p.id for p in problems[:3]] == ["60", "61", "62"]
    assert [p.gold for p in problems[:3]] == ["204", "113", "371"]
    assert task.name == "aime24" and task.answer_format == "integer"
    assert task.solution_set(problems[0]).name == "int-000-999"
    assert problems[0].meta["url"].startswith("https://artofproblemsolving.com")


def test_math500_file(shared_file):
    task = get_task(str(shared_file("math500.jsonl")))
    problems = task.load()
    assert len(problems) == 500 and task.answer_format == "math"
    assert problems[0].id == "test/precalculus/807.json"
    assert problems[0].gold == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert problems[0].meta["subject"] == "Precalculus"
    assert task.solution_set(problems[0]) is None


def test_gsm8k_golds_come_from_hashes(shared_file):
    path = shared_file("gsm8k_test.jsonl")
    task = get_task(str(path))
    problems = task.load()
    rows = _jsonl(path)
    assert len(problems) == 1319 and problems[0].gold == "18"
    assert [p.id for p in problems[:3]] == ["0", "1", "2"]
    for row, problem in zip(rows, problems, strict=True):
        assert problem.gold == row["answer"].split("####")[-1].strip().replace(",", "")
        assert "####" not in problem.gold


@pytest.mark.parametrize(
    ("answer", "gold"),
    [("so 5 + 13 = 18\n#### 18", "18"), ("#### 1,234", "1234"), ("#### -3", "-3"), ("#### 2,5", "2,5")],
)
def test_gsm8k_gold(answer, gold):
    assert gsm8k_gold(answer) == gold


def test_mmlu_file_loads_as_choice(shared_file):
    task = get_task(str(shared_file("mmlu_stem.jsonl")))
    problems = task.load()
    assert len(problems) == 3018 and task.answer_format == "choice"
    assert len({p.id for p in problems}) == 3018
    assert all(len(p.id) == 12 or p.id[12] == "-" for p in problems)  # sha256 ids; exact repeats get -2
    first = problems[0]
    assert first.gold == first.choices[2]
    assert first.gold.startswith("reduce the carrying capacity")
    assert task.solution_set(first).name == "letters-4"
    assert first.meta == {"type": "college_biology"}


def test_json_and_parquet_match_jsonl(shared_file, tmp_path):
    rows = _jsonl(shared_file("mmlu_stem.jsonl"))[:50]
    jsonl = _write_jsonl(tmp_path / "m.jsonl", rows)
    (tmp_path / "m.json").write_text(json.dumps(rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "m.parquet")
    expected = get_task(jsonl).load()
    assert get_task(str(tmp_path / "m.json")).load() == expected
    assert get_task(str(tmp_path / "m.parquet")).load() == expected


def test_gpqa_rows(tmp_path):
    for path in (_write_jsonl(tmp_path / "gpqa.jsonl", GPQA_ROWS), str(tmp_path / "gpqa.parquet")):
        pq.write_table(pa.Table.from_pylist(GPQA_ROWS), tmp_path / "gpqa.parquet")
        task = get_task("gpqa-diamond", path=path)
        problems = task.load()
        assert [p.id for p in problems] == [f"rec{i:04d}" for i in range(5)]
        assert problems[1].gold == "right 1" and problems[1].gold_index == 0
        assert problems[1].choices == ("right 1", "wrong 1a", "wrong 1b", "wrong 1c")
        prompted = task.prompt(problems[1], 7)
        assert f"{prompted.gold}) right 1" in prompted.user_message
        assert task.grade(f"\\text{{{prompted.gold}}}}}", prompted.gold).correct is True
        assert task.solution_set(problems[1]).name == "letters-4"


def test_gpqa_columns_are_recognised_without_a_name(tmp_path):
    task = get_task(_write_jsonl(tmp_path / "g.jsonl", GPQA_ROWS))
    assert task.answer_format == "choice" and task.load(2)[0].id == "rec0000"


def test_choice_answer_as_letter(tmp_path):
    rows = [{"question": "Largest?", "choices": ["1", "9", "5"], "answer": "B"}]
    problem = get_task(_write_jsonl(tmp_path / "c.jsonl", rows)).load()[0]
    assert (problem.gold, problem.gold_index) == ("9", 1)


def test_column_map(tmp_path):
    rows = [{"prompt": "2+2?", "target": "4", "key": "k1"}, {"prompt": "3+3?", "target": "6", "key": "k2"}]
    path = _write_jsonl(tmp_path / "custom.jsonl", rows)
    with pytest.raises(TaskError, match=r"found \['key', 'prompt', 'target'\]\. Pass columns=\{\"question\""):
        get_task(path)
    task = get_task(path, columns={"question": "prompt", "answer": "target", "id": "key"})
    assert [(p.id, p.question, p.gold) for p in task.load()] == [("k1", "2+2?", "4"), ("k2", "3+3?", "6")]
    assert task.identity()["columns"] == {"answer": "target", "id": "key", "question": "prompt"}


def test_column_map_naming_absent_columns(tmp_path):
    path = _write_jsonl(tmp_path / "custom.jsonl", [{"prompt": "2+2?", "target": "4"}])
    with pytest.raises(TaskError, match=r"Columns \['answer'\] named in columns= are not in"):
        get_task(path, columns={"question": "prompt", "answer": "answer"})
    with pytest.raises(TaskError, match="the map needs 'question' and 'answer'"):
        get_task(path, columns={"question": "prompt"})


def test_limit_returns_the_first_problems_in_stable_order():
    task = get_task("demo-arith")
    assert task.load(5) == task.load()[:5]
    assert [p.id for p in task.load(3)] == ["arith-000", "arith-001", "arith-002"]
    assert get_task("demo-arith").load() == task.load()


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_must_be_positive(limit):
    with pytest.raises(TaskError, match=f"Got limit={limit} for dataset 'demo-arith': limit must be a"):
        get_task("demo-arith").load(limit)


def test_unknown_name_lists_known():
    with pytest.raises(
        TaskError,
        match=r"Unknown dataset 'aime2024'\. Known: aime24, aime25, gpqa-diamond, math500, gsm8k, "
        r"demo-arith, "
        r"demo-mc; or give a hub id \(org/name\) or a \.jsonl/\.parquet path\.",
    ):
        get_task("aime2024")


def test_missing_file():
    with pytest.raises(TaskError, match=r"^Dataset file not found: 'nowhere/data\.jsonl'\. Give an existing"):
        get_task("nowhere/data.jsonl")
    with pytest.raises(TaskError, match=r"Dataset file not found: 'nowhere\.parquet'"):
        get_task("aime24", path="nowhere.parquet")


def test_unsupported_suffix(tmp_path):
    (tmp_path / "d.csv").write_text("question,answer\n")
    with pytest.raises(TaskError, match=r"Cannot read '.*d\.csv': use a \.jsonl, \.json, \.parquet file"):
        get_task(str(tmp_path / "d.csv"))


def test_duplicate_ids(tmp_path):
    rows = [
        {"id": 1, "problem": "a", "answer": "1"},
        {"id": 2, "problem": "b", "answer": "2"},
        {"id": 1, "problem": "c", "answer": "3"},
    ]
    task = get_task(_write_jsonl(tmp_path / "dup.jsonl", rows))
    with pytest.raises(
        TaskError, match=r"'.*dup\.jsonl' has 1 bad row of 3 .*line 3: duplicate problem id '1' \(first on line 1\)"
    ):
        task.load()


def test_exact_repeats_without_ids_get_suffixes(tmp_path):
    same, other = {"problem": "same", "answer": "1"}, {"problem": "other", "answer": "2"}
    rows = [same, other, dict(same)]
    ids = [p.id for p in get_task(_write_jsonl(tmp_path / "rep.jsonl", rows)).load()]
    assert ids[2] == ids[0] + "-2" and len(set(ids)) == 3


def test_bad_rows(tmp_path):
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"problem": "a", "answer": "1"}\n{oops\n')
    with pytest.raises(TaskError, match=r"'.*bad\.jsonl' has 1 bad row of 2 \(1 invalid JSON\); the first, line 2: "):
        get_task(str(bad_json)).load()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(TaskError, match="has no rows"):
        get_task(str(empty))
    out_of_range = _write_jsonl(tmp_path / "r.jsonl", [{"question": "q", "choices": ["a", "b"], "answer": 5}])
    with pytest.raises(TaskError, match=r"'.*r\.jsonl' has 1 bad row .*line 1: answer 5 is not an option index 0-1"):
        get_task(out_of_range).load()
    blank = _write_jsonl(tmp_path / "b.jsonl", [{"problem": "q", "answer": " "}])
    with pytest.raises(TaskError, match=r"'.*b\.jsonl' has 1 bad row .*line 1: column 'answer' is empty"):
        get_task(blank).load()


def test_path_only_for_registered_names(tmp_path):
    with pytest.raises(TaskError, match="path= only applies to a registered name"):
        get_task("org/name", path="x.jsonl")


def test_answer_format_and_solution_set_overrides(shared_file):
    path = str(shared_file("aime24.jsonl"))
    adhoc = get_task(path, answer_format="integer", solution_set="int-0-999")
    problem = adhoc.load(1)[0]
    assert adhoc.answer_format == "integer" and adhoc.solution_set(problem).name == "int-0-999"
    assert get_task("aime24", path=path, solution_set="none").solution_set(problem) is None
    own = get_task(path, solution_set=[str(v) for v in range(0, 1000, 3)])
    assert own.solution_set(problem).candidates[:3] == ("0", "3", "6")
    assert own.identity() != get_task(path, solution_set=[str(v) for v in range(0, 1000, 7)]).identity()
    with pytest.raises(TaskError, match="needs distinct, non-empty values"):
        get_task(path, solution_set=["1", "1"])
    with pytest.raises(TaskError, match="has no options, which does not fit answer_format='choice'"):
        get_task(path, answer_format="choice").load()
    with pytest.raises(TaskError, match="Got answer_format='number': use one of math, integer, choice"):
        get_task(path, answer_format="number")


def test_identity_is_json_and_follows_content(shared_file, tmp_path):
    original = shared_file("aime24.jsonl")
    copy = tmp_path / "elsewhere" / "aime24.jsonl"
    copy.parent.mkdir()
    shutil.copy(original, copy)
    here, there = get_task("aime24", path=str(original)), get_task("aime24", path=str(copy))
    assert json.loads(json.dumps(here.identity())) == here.identity()
    assert here.identity() == there.identity()  # same content, another folder: same cells
    required = {"name", "version", "source", "answer_format", "solution_set", "prompt_version"}
    assert set(here.identity()) >= required
    copy.write_text(copy.read_text().replace('"answer":"204"', '"answer":"205"'))
    assert get_task("aime24", path=str(copy)).identity() != here.identity()
    assert get_task("aime24", path=str(copy)).load(1)[0].gold == "205"  # an edited file is read again


def test_tasks_are_hashable_values():
    assert hash(get_task("demo-mc")) == hash(get_task("demo-mc"))
    assert get_task("demo-mc") == get_task("demo-mc")
    assert get_task("demo-mc") != get_task("demo-arith")


def test_generated_sets_refuse_a_column_map():
    with pytest.raises(TaskError, match="generated by code and has no columns to map"):
        get_task("demo-arith", columns={"question": "q"})


def test_demo_sets_are_deterministic_and_in_range():
    arith = get_task("demo-arith").load()
    assert len(arith) == 200 and all(0 <= int(p.gold) <= 99 for p in arith)
    assert all(len(p.question) < 120 for p in arith)
    assert arith[0].id == "arith-000" and arith[0].gold == "70"  # pinned: generated data must not drift
    mc = get_task("demo-mc").load()
    assert len(mc) == 200 and all(len(p.choices) == 4 and len(set(p.choices)) == 4 for p in mc)
    assert {p.gold_index for p in mc} == {0, 1, 2, 3}
    assert {p.meta["kind"] for p in mc} == {"largest", "smallest", "prime", "even", "sum"}


def test_demo_mc_golds_are_right():
    for p in get_task("demo-mc").load():
        values = [int(c) for c in p.choices]
        gold = int(p.gold)
        kind = p.meta["kind"]
        if kind in ("largest", "smallest"):
            assert gold == (max(values) if kind == "largest" else min(values)), p.id
        elif kind == "prime":
            assert [v for v in values if v > 1 and all(v % d for d in range(2, v))] == [gold], p.id
        elif kind == "even":
            assert [v for v in values if v % 2 == 0] == [gold], p.id
        else:
            a, b = (int(x) for x in p.question.removeprefix("What is ").rstrip("?").split(" + "))
            assert gold == a + b and values.count(gold) == 1, p.id
