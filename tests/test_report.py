"""The analysis report from real demo results: every figure present with its traces, readable offline."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest

from ttscale.analysis import Results
from ttscale.measure import measure
from ttscale.store import ResultStore

pytestmark = [pytest.mark.model, pytest.mark.ray]

FIGURES = ["fig-curves", "fig-scores", "fig-top-k", "fig-compute", "fig-thinking-tokens", "fig-correlation", "fig-size"]


@pytest.fixture(scope="module")
def demo_results(smol, tmp_path_factory):
    """A small demo run (SmolLM2, demo-arith, 5 budgets, 2 seeds) stored as a results directory."""
    root = tmp_path_factory.mktemp("demo") / "results"
    m = measure(smol, "demo-arith", budgets=[8, 16, 32, 64, 128], seeds=2, limit=4)
    ResultStore(root).write_unit("demo", m.rows, m.trajectories)
    return root


@pytest.fixture(scope="module")
def report(demo_results, ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis")
    results = Results.open(demo_results, n_boot=200, n_sim=50)
    path = results.report(out, k=4)
    return results, out, path.read_text()


def plotly_figures(html: str) -> dict[str, tuple[list, dict]]:
    """Every Plotly.newPlot(id, traces, layout) call in the page, decoded."""
    decoder, figures = json.JSONDecoder(), {}
    for match in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', html):
        traces, end = decoder.raw_decode(html, match.end())
        layout, _ = decoder.raw_decode(html, html.index("{", end))
        figures[match.group(1)] = (traces, layout)
    return figures


def array(value) -> list:
    """A trace's data as a list: plotly writes numeric arrays as base64 typed arrays ({dtype, bdata})."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).tolist()
    return list(value)


def test_the_report_holds_every_figure_with_its_traces(report):
    _, out, html = report
    figs = plotly_figures(html)
    assert set(FIGURES) <= set(figs)
    curves, layout = figs["fig-curves"]
    titles = {a["text"] for a in layout["annotations"]}
    assert {"demo-arith · accuracy", "demo-arith · p(correct)", "demo-arith · −entropy (nats)"} <= titles
    assert {"demo-arith · pass@2", "demo-arith · thinking tokens"} <= titles  # 2 seeds: pass@2
    names = {t["name"] for t in curves}
    assert "smollm2-135m" in names and "smollm2-135m 95% band" in names
    assert any(t.get("fill") == "tonexty" for t in curves)  # the bands
    assert {t["type"] for t in figs["fig-scores"][0]} >= {"box"}
    top = figs["fig-top-k"][0]
    ranked = pd.read_parquet(out / "top_k.parquet")  # the reviewed ranking: SmolLM2's curves that move by 0.05
    assert 1 <= len(ranked) <= 4 and (ranked.signed_range.abs() >= 0.05).all()
    assert len([t for t in top if t["name"] == "accuracy"]) == len(ranked)  # each ranked problem with its curves
    assert any("answers" in t["hovertemplate"] and any(t["text"]) for t in top)
    thinking = figs["fig-thinking-tokens"][0]
    assert any(t["type"] == "box" and t["name"] == "smollm2-135m" for t in thinking)
    assert any(t["type"] == "histogram" for t in figs["fig-correlation"][0])
    size = figs["fig-size"][0]
    assert any(0.135 in array(t["x"]) for t in size if "x" in t)  # SmolLM2-135M at 0.135 B parameters
    assert "end of the reasoning" in html and "gold" in html  # the top-k answer tables
    assert "<table id='infinite-counts'>" in html and "breakthroughness_bigbench" in html
    compute = {t["name"] for t in figs["fig-compute"][0]}
    assert {"k = 1 (thinking longer)", "one B, k growing", "frontier"} <= compute
    answers = pd.read_parquet(out / "frontier_scores.parquet")
    sentence = answers[(answers.metric == "maj") & (answers.curve == "frontier")].answer.iloc[0]
    assert "k = 1" in sentence and "<table id='compute-answers'>" in html and sentence.split(" (")[0] in html


def test_the_report_opens_without_network(report):
    _, _, html = report
    assert not re.search(r"<script[^>]+src=", html)  # plotly.js is inline, nothing is fetched
    assert not re.search(r"<link[^>]+href=", html)
    assert "Plotly" in html and len(html) > 1_000_000


def test_tables_are_written_as_parquet_and_csv(report):
    results, out, _ = report
    for name in (
        "curves",
        "emergence_datasets",
        "emergence_problems",
        "top_k",
        "infinite_counts",
        "parallel_points",
        "frontier",
        "frontier_scores",
    ):
        assert (out / f"{name}.parquet").is_file() and (out / f"{name}.csv").is_file()
    table = pd.read_parquet(out / "curves.parquet")
    assert {"accuracy", "pass@2", "p_correct", "neg_entropy", "thinking_tokens"} <= set(table.metric)
    tokens = table[table.metric == "thinking_tokens"]
    expected = results.rows.groupby("budget").thinking_tokens.mean()  # one problem set: mean of problem means
    assert tokens.set_index("budget").value.to_dict() == pytest.approx(expected.to_dict())
    infinite = pd.read_parquet(out / "infinite_counts.parquet")
    assert set(infinite.level) == {"problem", "dataset"}
    scores = pd.read_parquet(out / "emergence_problems.parquet").breakthroughness_bigbench.to_numpy(dtype=float)
    counted = infinite[(infinite.level == "problem") & (infinite.score == "breakthroughness_bigbench")]
    assert counted["+inf"].sum() == np.isposinf(scores).sum() and counted["-inf"].sum() == np.isneginf(scores).sum()
    assert {"accuracy", "pass@2"} <= set(infinite[infinite.level == "dataset"].metric)
    points = pd.read_parquet(out / "parallel_points.parquet")
    maj1 = points[(points.metric == "maj") & (points.k == 1)].set_index("budget").value
    assert maj1.to_dict() == pytest.approx(results.curves("accuracy").set_index("budget").value.to_dict())  # maj@1
    spent = (results.rows.thinking_tokens + results.rows.answer_tokens).groupby(results.rows.budget).mean()
    assert points[points.k == 2].groupby("budget").cost.first().to_dict() == pytest.approx((2 * spent).to_dict())
    curves = results.curves("accuracy")
    assert {"value", "lo", "hi", "n_problems"} <= set(curves.columns)
    assert (curves.lo <= curves.value + 1e-12).all() and (curves.value <= curves.hi + 1e-12).all()


def test_several_results_directories_combine(demo_results, ray_local, tmp_path):
    other = tmp_path / "other"
    table = ResultStore(demo_results).read_table()
    renamed = table.set_column(table.schema.get_field_index("model"), "model", pc.replace_substring(
        table.column("model"), "smollm2-135m", "smollm2-360m"))  # fmt: skip
    renamed = renamed.set_column(renamed.schema.get_field_index("cell_id"), "cell_id", pc.binary_join_element_wise(
        renamed.column("cell_id"), "-b", ""))  # fmt: skip
    ResultStore(other).write_unit("copy", renamed)
    both = Results.open([demo_results, other], n_boot=50, n_sim=20)
    assert set(both.rows.model) == {"smollm2-135m", "smollm2-360m"}
    assert set(both.curves("p_correct").model) == {"smollm2-135m", "smollm2-360m"}
    assert len(both.emergence("p_correct", level="dataset")) == 2


def test_analyze_command_writes_the_report(demo_results, ray_local, tmp_path):
    from typer.testing import CliRunner

    from ttscale.cli import app

    result = CliRunner().invoke(app, ["analyze", str(demo_results), "--out", str(tmp_path), "--n-boot", "50",
                                      "--n-sim", "20", "--top", "3"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.html").is_file() and (tmp_path / "top_k.csv").is_file()


def test_analyze_json_answers_sequential_vs_parallel_per_model_and_dataset(demo_results, ray_local, tmp_path):
    from typer.testing import CliRunner

    from ttscale.cli import app

    result = CliRunner().invoke(app, ["analyze", str(demo_results), "--out", str(tmp_path), "--json",
                                      "--n-boot", "50", "--n-sim", "20"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)  # stdout holds the JSON alone
    assert summary["report"] == str(tmp_path / "report.html") and summary["rows"] == 20 * 2
    (pair,) = summary["pairs"]
    assert (pair["model"], pair["dataset"], pair["budgets"], pair["seeds"]) == ("smollm2-135m", "demo-arith",
                                                                                [8, 16, 32, 64, 128], 2)  # fmt: skip
    scores = pd.read_parquet(tmp_path / "frontier_scores.parquet")
    frontier = scores[(scores.metric == "maj") & (scores.curve == "frontier")].iloc[0]
    assert pair["compute"]["maj"]["answer"] == frontier.answer
    assert set(pair["compute"]) == {"maj", "pass", "accuracy"} and "accuracy" in pair["emergence"]


def test_analyze_refuses_an_unknown_metric(demo_results, ray_local, tmp_path):
    from typer.testing import CliRunner

    from ttscale.cli import app

    result = CliRunner().invoke(app, ["analyze", str(demo_results), "--out", str(tmp_path / "a"), "--metric",
                                      "entropy", "--n-boot", "10", "--n-sim", "10"])  # fmt: skip
    assert result.exit_code == 1
    assert "Unknown metric 'entropy'" in result.output
    assert "accuracy, p_correct, neg_entropy, neg_brier, mass_on_set" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "a").exists()


def test_analyze_refuses_a_directory_without_results(tmp_path):
    from typer.testing import CliRunner

    from ttscale.cli import app

    result = CliRunner().invoke(app, ["analyze", str(tmp_path)])
    assert result.exit_code == 1
    assert "holds no result rows" in result.output


def test_top_k_reasoning_comes_from_rows_in_independent_mode(tmp_path):
    """Independent-mode rows carry their own reasoning; the report shows it cut at each budget."""
    import datetime as dt

    import pyarrow as pa

    from ttscale.analysis.report.reasoning import reasoning_tails as _reasoning
    from ttscale.schema import ROW_SCHEMA

    rows = []
    for budget in (8, 16):
        row = {f.name: None for f in ROW_SCHEMA}
        row.update(model="m", dataset="d", problem_id="p", seed=0, budget=budget, cell_id=f"c{budget}",
                   trajectory_id=f"t{budget}", config_id="cfg", config="{}", gold="1", prompt_tokens=1,
                   thinking_tokens=budget, continuations=0,
                   injected_tokens=0, answer_tokens=1, thinking_chars=5, thinking_text=f"thought at {budget}",
                   trajectory_mode="independent", on_early_stop="continue", temperature=0.6, top_p=0.95, top_k=0,
                   rng_seed=0, family="generic", engine="hf", engine_version="x", model_path="x",
                   ttscale_version="x", created_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))  # fmt: skip
        rows.append(row)
    ResultStore(tmp_path).write_unit("u", pa.Table.from_pylist(rows, schema=ROW_SCHEMA))
    results = Results(rows=ResultStore(tmp_path).read_pandas(), roots=[tmp_path])
    texts = _reasoning(results, results.rows[["model", "dataset", "problem_id"]].drop_duplicates())
    assert texts == {("m", "d", "p", 0, 8): "…thought at 8", ("m", "d", "p", 0, 16): "…thought at 16"}
