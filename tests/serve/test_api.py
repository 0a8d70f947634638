"""The explorer's JSON API on real results of a fake-engine sweep, called without Ray through `Explorer.handle`."""

from __future__ import annotations

import json

import pytest
from explorer_results import BUDGETS

from ttscale.serve.api import Explorer
from ttscale.serve.index import ResultsIndex

pytestmark = pytest.mark.ray  # the results are made by a real sweep on a local Ray instance


@pytest.fixture(scope="module")
def explorer(demo_results) -> Explorer:
    return Explorer(ResultsIndex([demo_results], n_boot=50, n_sim=20), dashboard_url="http://127.0.0.1:8265")


def get(explorer: Explorer, path: str, status: int = 200, **params):
    reply = explorer.handle("GET", path, {k: str(v) for k, v in params.items()})
    assert reply.status == status, reply.body[:500]
    return json.loads(reply.body) if reply.media_type.startswith("application/json") else reply


def test_runs_options_and_info(explorer):
    runs = get(explorer, "/api/runs")
    assert runs[0]["sweep"] == "explorer-demo" and runs[0]["rows"] == 2 * (4 + 3) * len(BUDGETS) * 2
    options = get(explorer, "/api/options")
    assert options["models"] == ["fake-a", "fake-b"] and options["datasets"] == ["demo-arith", "demo-mc"]
    assert options["budgets"] == BUDGETS
    assert {"accuracy", "p_correct", "pass@2"} <= {m["name"] for m in options["metrics"]}
    assert get(explorer, "/api/info")["dashboard_url"] == "http://127.0.0.1:8265"


def test_curve_has_a_band_at_every_budget(explorer):
    c = get(explorer, "/api/curve", model="fake-a", dataset="demo-arith", metric="p_correct")
    assert c["budget"] == BUDGETS and c["n_problems"] == [4] * len(BUDGETS)
    for lo, value, hi in zip(c["lo"], c["value"], c["hi"], strict=True):
        assert lo <= value <= hi
    get(explorer, "/api/curve", 404, model="nobody", dataset="demo-arith")
    get(explorer, "/api/curve", 400, model="fake-a", dataset="demo-arith", metric="nonsense")


def test_emergence_is_sortable_and_has_p_values(explorer):
    table = get(explorer, "/api/emergence", metric="p_correct", model="fake-a", dataset="demo-arith", ranking="score")
    assert table["total"] == 4 and {"p_breakthroughness", "breakthroughness"} <= set(table["columns"])
    assert all(0 <= r["p_breakthroughness"] <= 1 for r in table["rows"])
    by_p = get(explorer, "/api/emergence", metric="p_correct", by="p_breakthroughness", ranking="score")["rows"]
    ps = [r["p_breakthroughness"] for r in by_p]
    assert ps == sorted(ps)  # p-values rank smallest first
    down = [r["jump_budget"] for r in get(explorer, "/api/emergence", by="jump_budget", limit=100,
                                            ranking="score")["rows"]]  # fmt: skip
    up = [r["jump_budget"] for r in get(explorer, "/api/emergence", by="jump_budget", ascending=1, limit=100,
                                          ranking="score")["rows"]]  # fmt: skip
    assert (
        len(down) == 2 * 7 and down == sorted(down, reverse=True) and up == sorted(up)
    )  # a plain column: larger first
    get(explorer, "/api/emergence", 400, by="no_such_column")
    get(explorer, "/api/emergence", 400, ranking="best")


def test_the_leaderboard_ranks_curves_that_move_significant_first_by_default(explorer):
    everything = get(explorer, "/api/emergence", metric="p_correct", limit=100, ranking="score")
    table = get(explorer, "/api/emergence", metric="p_correct", limit=100)
    assert table["ranking"] == "reviewed" and table["min_range"] == 0.05
    assert table["total"] + table["unranked"] == everything["total"]  # the rest moved by less than 0.05
    assert all(abs(r["signed_range"]) >= 0.05 for r in table["rows"])
    significant = [r["p_breakthroughness"] < 0.05 for r in table["rows"]]
    assert significant == sorted(significant, reverse=True)  # significant curves first
    wide = get(explorer, "/api/emergence", metric="p_correct", limit=100, min_range=0.0)
    assert wide["total"] >= table["total"]


def test_compute_view_has_every_point_its_cost_and_the_frontier(explorer):
    c = get(explorer, "/api/compute", model="fake-a", dataset="demo-arith")
    assert c["metric"] == "maj" and c["label"] == "maj@k"
    p = c["points"]
    points = list(zip(p["k"], p["budget"], p["cost"], p["tokens_per_seed"], p["value"], strict=True))
    assert sorted(b for k, b, *_ in points if k == 1) == BUDGETS  # a k = 1 point at every budget
    assert {k for k, *_ in points} == {1, 2}  # the sweep ran two seeds
    rows = explorer.index.snapshot().rows
    rows = rows[(rows.model == "fake-a") & (rows.dataset == "demo-arith")]
    spent = (rows.thinking_tokens + rows.answer_tokens).groupby(rows.budget).mean()
    for k, budget, cost, tokens, value in points:
        assert tokens == pytest.approx(spent[budget]) and tokens > 0  # the tokens a seed really spent at B
        assert cost == pytest.approx(k * tokens) and 0 <= value <= 1
    f = c["frontier"]
    assert f["cost"] == sorted(f["cost"]) and f["value"] == sorted(f["value"])  # non-decreasing in cost and value
    assert f["cost"][0] == min(p["cost"])  # it starts at the cheapest point
    cheapest = min(points, key=lambda q: q[2])
    assert (f["budget"][0], f["k"][0], f["value"][0]) == (cheapest[1], cheapest[0], cheapest[4])
    assert [s["curve"] for s in c["scores"]] == ["k = 1", "frontier"] and isinstance(c["answer"], str)
    assert {"n_points", "breakthroughness", "p_breakthroughness", "parallel_points"} <= set(c["scores"][0])
    assert c["scores"][0]["n_points"] == len(BUDGETS)
    assert get(explorer, "/api/compute", model="fake-b", dataset="demo-mc", metric="pass")["label"] == "pass@k"


def test_compute_view_refuses_an_unknown_metric_model_or_dataset(explorer):
    error = get(explorer, "/api/compute", 400, model="fake-a", dataset="demo-arith", metric="p_correct")["error"]
    assert "maj" in error and "\n" not in error  # one line, naming the metrics it takes
    get(explorer, "/api/compute", 404, model="nobody", dataset="demo-arith")
    get(explorer, "/api/compute", 404, model="fake-a", dataset="nothing")
    get(explorer, "/api/compute", 400, dataset="demo-arith")  # no model
    assert [m["name"] for m in get(explorer, "/api/options")["compute_metrics"]] == ["maj", "pass", "accuracy"]


def test_problem_detail_slices_the_nested_reasoning_at_each_budget(explorer):
    p = get(explorer, "/api/problem", model="fake-a", dataset="demo-mc", problem_id="mc-000")
    assert p["question"].startswith("Which of these numbers") and "(A)" in p["question"] and p["gold"]
    assert p["seeds"] == [0, 1] and p["curve"]["budget"] == BUDGETS
    text, cuts = p["reasoning"]["text"], {c["budget"]: c["chars"] for c in p["reasoning"]["cuts"]}
    assert p["reasoning"]["mode"] == "nested" and sorted(cuts) == BUDGETS
    for b in p["budgets"]:
        assert len(b["answers"]) == 2 and {a["seed"] for a in b["answers"]} == {0, 1}
        assert all(a["unclosed"] in (True, False) and a["truncated"] in (True, False) for a in b["answers"])
        assert b["thinking"] == text[: cuts[b["budget"]]]  # the prefix this budget's answer was forced after
        assert len(b["top_answers"]) == 4 and {t["answer"] for t in b["top_answers"]} == {"A", "B", "C", "D"}
        assert abs(sum(t["p"] for t in b["top_answers"]) - 1) < 1e-3
    other = get(explorer, "/api/problem", model="fake-a", dataset="demo-mc", problem_id="mc-000", seed=1)
    assert other["seed"] == 1 and other["reasoning"]["text"] != text
    get(explorer, "/api/problem", 404, model="fake-a", dataset="demo-mc", problem_id="nope")
    get(explorer, "/api/problem", 404, model="fake-a", dataset="demo-mc", problem_id="mc-000", seed=7)


def test_progress_counts_cells_per_model_and_dataset(explorer):
    (run,) = get(explorer, "/api/progress")["runs"]
    assert run["state"] == "finished" and run["failures"] == [] and run["tokens_per_s"] > 0
    assert run["cells_done"] == run["cells_total"] == 2 * 2 * len(BUDGETS) * 2
    assert {(p["model"], p["dataset"]) for p in run["pairs"]} == {
        (m, d) for m in ("fake-a", "fake-b") for d in ("demo-arith", "demo-mc")
    }


@pytest.mark.parametrize(
    "path",
    ["/api/runs/results/files/../manifest.json", "/api/runs/results/files/../../../../etc/passwd",
     "/api/runs/results/files/%2e%2e/%2e%2e/etc/passwd", "/api/runs/results/files//etc/passwd",
     "/api/runs/nope/files/manifest.json", "/static/../api.py", "/static/%2e%2e/index.py", "/etc/passwd"],
)  # fmt: skip
def test_paths_outside_the_results_and_the_page_are_404(explorer, path):
    assert explorer.handle("GET", path, {}).status == 404


def test_files_inside_a_results_dir_are_served_and_nothing_is_writable(explorer, demo_results):
    reply = explorer.handle("GET", "/api/runs/results/files/manifest.json", {})
    assert reply.status == 200 and json.loads(reply.body)["sweep_name"] == "explorer-demo"
    for method in ("POST", "PUT", "DELETE"):
        assert explorer.handle(method, "/api/runs", {}).status == 405


def test_page_and_plotly_come_from_the_package(explorer):
    page = explorer.handle("GET", "/", {})
    assert page.status == 200 and b'src="/static/plotly.min.js"' in page.body and b"cdn" not in page.body.lower()
    plotly = explorer.handle("GET", "/static/plotly.min.js", {})
    assert plotly.status == 200 and plotly.body.startswith(b"/**") and len(plotly.body) > 1_000_000


def test_independent_mode_shows_each_budgets_own_reasoning(tmp_path):
    from explorer_results import fake_sweep, run_cli

    sweep = fake_sweep(tmp_path, name="independent", forcing={"trajectory": "independent"}, seeds=1,
                       datasets=[{"name": "demo-arith", "limit": 2}],
                       models=[{"name": "fake-a", "engine": "fake", "device": "cpu", "threads": 1}])  # fmt: skip
    run_cli("sweep", str(sweep))
    explorer = Explorer(ResultsIndex([tmp_path / "results"], n_boot=20, n_sim=10))
    p = get(explorer, "/api/problem", model="fake-a", dataset="demo-arith", problem_id="arith-000")
    assert p["reasoning"]["mode"] == "independent" and p["reasoning"]["cuts"] == []
    texts = [b["thinking"] for b in p["budgets"]]
    assert all(texts) and len(set(texts)) == len(BUDGETS)  # each budget ran its own trajectory
    assert p["reasoning"]["text"] == texts[-1]
