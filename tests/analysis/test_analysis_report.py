"""The report on hand-built rows (no Ray, no model): pass@k and thinking-token curves, ±inf counts, --metric."""

import math

import numpy as np
import pandas as pd
import pytest

from ttscale.analysis import Results
from ttscale.analysis.report import (
    curve_metrics,
    dataset_labels,
    fig_curves,
    fig_scores,
    fig_top_k,
    unclosed_table,
    write_report,
)
from ttscale.errors import ConfigError, TtscaleWarning

BUDGETS = [16, 32, 64, 128, 256]
SEEDS = 4
# correct seeds (of 4) at each budget: a step up, a step down (accuracy curves with median step 0) and a ramp
CORRECT = {"up": [0, 0, 0, 4, 4], "down": [4, 4, 4, 0, 0], "ramp": [0, 1, 2, 3, 4]}


def planted_rows(seeds: int = SEEDS) -> pd.DataFrame:
    """Result rows of one model on one dataset, three problems with the correct-seed counts of CORRECT."""
    rows = []
    for j, (problem, counts) in enumerate(CORRECT.items()):
        for i, (budget, c) in enumerate(zip(BUDGETS, counts, strict=True)):
            for seed in range(seeds):
                right = seed < c * seeds // SEEDS
                rows.append(
                    {
                        "model": "toy-1.5B", "dataset": "toy", "problem_id": problem, "seed": seed, "budget": budget,
                        "cell_id": f"{problem}-{budget}-{seed}", "trajectory_id": f"{problem}-{seed}",
                        "family": "toy", "answer": "1" if right else "2", "gold": "1", "correct": int(right),
                        "p_correct": 0.1 + 0.15 * i + 0.01 * j + 0.001 * i * i,  # smooth, never a zero step
                        "thinking_tokens": budget - seed, "thinking_chars": 4 * budget,
                    }
                )  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of planted_rows, ranked by the BIG-bench breakthroughness so that its ±inf matter."""
    out = tmp_path_factory.mktemp("report")
    results = Results.from_frame(planted_rows(), n_boot=50, n_sim=20)
    path = write_report(results, out, k=2, score="breakthroughness_bigbench")
    return out, path.read_text()


def test_curves_table_holds_pass_at_k_and_thinking_tokens(report):
    out, _ = report
    curves = pd.read_parquet(out / "curves.parquet")
    assert list(dict.fromkeys(curves.metric)) == ["accuracy", "pass@4", "p_correct", "thinking_tokens"]
    by_metric = {m: g.sort_values("budget") for m, g in curves.groupby("metric")}
    # pass@4 over 4 seeds is 1 when any seed is right: up 0,0,0,1,1; down 1,1,1,0,0; ramp 0,1,1,1,1
    assert by_metric["pass@4"]["value"].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert by_metric["accuracy"]["value"].tolist() == pytest.approx([1 / 3, 1.25 / 3, 1.5 / 3, 1.75 / 3, 2 / 3])
    assert by_metric["thinking_tokens"]["value"].tolist() == pytest.approx([b - 1.5 for b in BUDGETS])  # seeds 0..3
    assert by_metric["thinking_tokens"][["lo", "hi"]].notna().all().all()
    csv = pd.read_csv(out / "curves.csv")
    assert set(csv.metric) == set(curves.metric)


def test_pass_at_k_is_dropped_when_some_point_ran_one_seed():
    rows = planted_rows()
    assert "pass@4" in curve_metrics(rows, 4)
    assert curve_metrics(rows, 1) == ["accuracy", "p_correct", "thinking_tokens"]
    one_seed = rows[rows.seed == 0]
    assert curve_metrics(one_seed.drop(columns="p_correct"), 1) == ["accuracy", "thinking_tokens"]


def test_the_curves_figure_has_a_pass_at_k_and_a_thinking_tokens_panel(report):
    out, html = report
    curves = pd.read_parquet(out / "curves.parquet")
    metrics = list(dict.fromkeys(curves.metric))
    fig = fig_curves(curves, metrics)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["toy · accuracy", "toy · pass@4", "toy · p(correct)", "toy · thinking tokens"]
    assert fig.layout.yaxis4.type == "log" and fig.layout.yaxis.type != "log"  # thinking tokens on a log axis
    lines = [t for t in fig.data if t.name == "toy-1.5B"]
    assert [t.yaxis for t in lines] == ["y", "y2", "y3", "y4"]
    assert "pass@4 is the unbiased estimate" in html and "k = 4 is the fewest seeds" in html


def test_infinite_counts_table_counts_the_planted_infinities(report):
    out, _ = report
    table = pd.read_parquet(out / "infinite_counts.parquet")
    assert list(table.columns) == ["level", "metric", "model", "dataset", "score", "curves", "+inf", "-inf"]
    pd.testing.assert_frame_equal(table, pd.read_csv(out / "infinite_counts.csv"), check_dtype=False)
    key = table.set_index(["level", "metric", "score"])
    # problem curves of accuracy: "up" has median step 0 and rises (+inf), "down" falls (−inf), the ramp is finite
    assert key.loc[("problem", "accuracy", "breakthroughness_bigbench"), ["curves", "+inf", "-inf"]].tolist() == [
        3, 1, 1,
    ]  # fmt: skip
    # the dataset pass@4 curve 1/3, 2/3, 2/3, 2/3, 2/3 has median step 0 too; the dataset accuracy curve does not
    assert key.loc[("dataset", "pass@4", "breakthroughness_bigbench"), ["+inf", "-inf"]].tolist() == [1, 0]
    assert key.loc[("dataset", "accuracy", "breakthroughness_bigbench"), ["+inf", "-inf"]].tolist() == [0, 0]
    assert table[table.metric == "p_correct"][["+inf", "-inf"]].sum().tolist() == [0, 0]
    assert table.loc[table.score == "breakthroughness", ["+inf", "-inf"]].sum().tolist() == [0, 0]
    assert table.groupby(["level", "metric"]).score.nunique().eq(7).all()  # every score listed, zeros included
    assert "thinking_tokens" not in set(table.metric)  # not scored


def test_the_report_shows_the_infinite_counts(report):
    out, html = report
    section = html[html.index("<section id='scores'>") : html.index("<section id='top-k'>")]
    assert "<table id='infinite-counts'>" in section
    row = "<tr><td>problem</td><td>accuracy</td><td>breakthroughness_bigbench</td><td>3</td><td>1</td><td>1</td></tr>"
    assert row in section
    assert "<tr><td>dataset</td><td>pass@4</td><td>breakthroughness_bigbench</td><td>1</td><td>1</td><td>0</td>" in (
        section
    )
    per_problem = pd.read_parquet(out / "emergence_problems.parquet")
    per_dataset = pd.read_parquet(out / "emergence_datasets.parquet")
    fig = fig_scores(per_problem, per_dataset, "breakthroughness_bigbench")
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "breakthroughness_bigbench of accuracy curves · 2 ±inf left out"
    assert titles[1] == "breakthroughness_bigbench of p(correct) curves"  # none left out, nothing said
    drawn = [y for t in fig.data if t.type == "scatter" for y in t.y]
    assert drawn and all(math.isfinite(y) for y in drawn)


@pytest.mark.parametrize("metric", ["entropy", "pass@4", "thinking_tokens", ""])
def test_an_unknown_metric_is_refused_with_the_choices(metric, tmp_path):
    results = Results.from_frame(planted_rows(), n_boot=20, n_sim=10)
    with pytest.raises(ConfigError) as error:
        write_report(results, tmp_path / "out", metric=metric)
    message = str(error.value)
    assert message == (
        f"Unknown metric {metric!r} for the report. Use one of: accuracy, p_correct, neg_entropy, neg_brier, "
        "mass_on_set."
    )
    assert "\n" not in message and not (tmp_path / "out").exists()  # refused before any work


def test_a_known_metric_without_values_falls_back_to_accuracy_and_says_so(tmp_path):
    rows = planted_rows().assign(p_correct=np.nan)  # no solution set: p_correct is null everywhere
    results = Results.from_frame(rows, n_boot=20, n_sim=10)
    with pytest.warns(TtscaleWarning, match=r"metric 'p_correct' has no values .* ranking by accuracy instead"):
        write_report(results, tmp_path, metric="p_correct", k=2)
    assert set(pd.read_parquet(tmp_path / "emergence_problems.parquet").metric) == {"accuracy"}
    assert "p_correct" not in set(pd.read_parquet(tmp_path / "curves.parquet").metric)


AIME = "/home/u/data/aime_local.jsonl"
MATH = "/home/u/other/math.jsonl"


def varied_rows() -> pd.DataFrame:
    """Two file datasets: AIME has unclosed answers and a problem missing a budget; MATH has no solution set."""
    aime = planted_rows().assign(dataset=AIME, unclosed=False, truncated=False)
    aime.loc[(aime.problem_id == "up") & (aime.budget == 16), ["unclosed", "truncated"]] = True  # 4 rows: cut
    ended = (aime.problem_id == "up") & (aime.budget == 16) & (aime.seed == 0)
    aime.loc[ended, ["truncated", "correct"]] = [False, 1]  # one ended on its own, whole: graded right
    aime = aime[~((aime.problem_id == "ramp") & (aime.budget == 64))]  # an incomplete problem curve
    math_rows = planted_rows().assign(dataset=MATH, p_correct=np.nan, unclosed=None)
    return pd.concat([aime, math_rows], ignore_index=True)


@pytest.fixture(scope="module")
def varied_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("varied")
    results = Results.from_frame(varied_rows(), n_boot=50, n_sim=20)
    return out, write_report(results, out, k=3).read_text(), results


def test_dataset_labels_are_file_stems_made_unique():
    labels = dataset_labels([AIME, "/data/a/test.jsonl", "/data/b/test.jsonl", "aime24", "org/hub-set", "x.parquet"])
    assert labels == {
        AIME: "aime_local", "/data/a/test.jsonl": "a/test", "/data/b/test.jsonl": "b/test", "aime24": "aime24",
        "org/hub-set": "org/hub-set", "x.parquet": "x",
    }  # fmt: skip
    assert dataset_labels(["/a/t.jsonl", "/a/t.parquet"]) == {
        "/a/t.jsonl": "/a/t.jsonl",
        "/a/t.parquet": "/a/t.parquet",
    }


def test_file_datasets_are_titled_by_their_label_and_tables_keep_the_path(varied_report):
    out, html, results = varied_report
    curves = pd.read_parquet(out / "curves.parquet")
    assert set(curves.dataset) == {AIME, MATH}  # tables keep the full path
    titles = [a.text for a in fig_curves(curves, list(dict.fromkeys(curves.metric))).layout.annotations]
    assert "aime_local · accuracy" in titles and not any("/home" in t for t in titles)
    top = pd.read_parquet(out / "top_k.parquet")
    top_titles = [a.text for a in fig_top_k(results, top, "p_correct", "breakthroughness").layout.annotations]
    assert top_titles and all("/home" not in t and ("aime_local" in t or "math" in t) for t in top_titles)
    assert '"text":"aime_local \\u00b7 accuracy"' in html and f'"text":"{AIME} \\u00b7' not in html  # plotly JSON


def test_a_metric_a_dataset_lacks_gets_no_panel_but_a_line_saying_why(varied_report):
    out, html, _ = varied_report
    curves = pd.read_parquet(out / "curves.parquet")
    metrics = list(dict.fromkeys(curves.metric))
    titles = [a.text for a in fig_curves(curves, metrics).layout.annotations]
    assert "aime_local · p(correct)" in titles and "math · p(correct)" not in titles
    assert len(titles) == 2 * len(metrics) - 1  # one panel left out, not drawn empty
    section = html[html.index("<section id='curves'>") : html.index("<section id='scores'>")]
    assert "<ul id='missing-panels'>" in section
    assert "math</span>: no p(correct) panel; it has no finite solution set" in section


def test_unclosed_answers_are_counted_per_model_dataset_and_budget_by_why(varied_report):
    out, html, _ = varied_report
    table = pd.read_parquet(out / "unclosed.parquet")
    aime, math = table[table.dataset == AIME].set_index("budget"), table[table.dataset == MATH]
    columns = ["rows", "unclosed", "truncated", "ended_unclosed", "unclosed_correct", "unknown"]
    assert aime.loc[16, columns].tolist() == [12, 4, 3, 1, 1, 0]  # 3 cut by the cap, 1 ended on its own
    assert aime.drop(index=16)[["unclosed", "truncated"]].sum().tolist() == [0, 0] and aime.rows.sum() == 56
    assert math.unclosed.isna().all() and math.truncated.isna().all() and math.unknown.sum() == 60  # not 0
    section = html[html.index("<section id='unclosed'>") :]
    assert "<table id='unclosed'>" in section and "cut by the answer cap" in section
    assert "is graded incorrect" in section and "ended on its own" in section
    without = unclosed_table(planted_rows())  # a DataFrame without the columns: counts unknown, said so
    assert without["unclosed"].isna().all() and without["rows"].sum() == 60
    only_unclosed = unclosed_table(planted_rows().assign(unclosed=True))  # rows of an older ttscale: no `truncated`
    assert only_unclosed["unclosed"].sum() == 60 and only_unclosed["truncated"].isna().all()


def test_rows_without_an_unclosed_column_are_said_not_counted(report):
    _, html = report  # planted_rows has no `unclosed` column
    assert "<p id='unclosed-missing'>No row records whether its answer closed" in html


def test_incomplete_problem_curves_are_shown_apart_and_not_ranked(varied_report):
    out, html, _ = varied_report
    problems = pd.read_parquet(out / "emergence_problems.parquet")
    incomplete = problems[~problems.complete & (problems.n_budgets > 0)]  # MATH's p_correct curves are empty
    assert set(incomplete.problem_id) == {"ramp"} and set(incomplete.dataset) == {AIME}
    assert "ramp" not in set(pd.read_parquet(out / "top_k.parquet").query("dataset == @AIME").problem_id)
    section = html[html.index("<section id='top-k'>") : html.index("<section id='thinking-tokens'>")]
    assert "<table id='incomplete-curves'><caption>incomplete curves, not ranked" in section
    assert "1 of 3 problem curves of p(correct) are incomplete" in section


def test_dataset_curves_with_varying_problem_counts_are_flagged(varied_report):
    out, html, _ = varied_report
    datasets = pd.read_parquet(out / "emergence_datasets.parquet").set_index(["dataset", "metric"])
    assert datasets.loc[(AIME, "accuracy"), "problems_vary"] and not datasets.loc[(MATH, "accuracy"), "problems_vary"]
    section = html[html.index("<section id='curves'>") : html.index("<section id='scores'>")]
    assert "<table id='problem-counts'>" in section and "<td>2–3</td>" in section


def test_tables_lead_with_p_values_and_read_delta_bic_as_descriptive(varied_report):
    out, html, _ = varied_report
    lead = ["p_breakthroughness", "breakthroughness", "signed_range", "p_delta_bic_hinge", "p_delta_bic_sigmoid"]
    for name, keys in (("top_k", 3), ("emergence_problems", 4), ("emergence_datasets", 3)):
        columns = list(pd.read_parquet(out / f"{name}.parquet").columns)
        assert columns[keys : keys + 5] == lead, name
    problems = pd.read_parquet(out / "emergence_problems.parquet")
    assert problems["hinge_preferred"].isna().all()  # 5 budgets: no verdict on a break
    section = html[html.index("<section id='scores'>") : html.index("<section id='top-k'>")]
    assert "ΔBIC" in section and "<b>descriptive</b>" in section and "no evidence of a break" in section
    assert "p = " in html[html.index("<section id='top-k'>") :]  # each top problem leads with its p-value
