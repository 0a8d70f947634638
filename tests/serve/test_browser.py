"""The explorer page in a real headless Chromium (Debian's `chromium`, driven by Playwright): pick a dataset, read
the curve's SVG and the compute panel's, open a problem, and watch the progress panel move while a slowed fake-engine
sweep runs beside it (`ttscale sweep --serve`). Screenshots go to $TTSCALE_ARTIFACTS (default: the test's tmp_path)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from explorer_results import BUDGETS, fake_sweep
from test_serve_http import free_port, start_serve, stop

pytestmark = [pytest.mark.ray, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no system chromium (apt-get install chromium; .ci/run installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")


@pytest.fixture
def artifacts(tmp_path) -> Path:
    path = Path(os.environ.get("TTSCALE_ARTIFACTS", tmp_path))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        browser.close()
        assert not errors, errors


def line_points(page, selector: str = "#curve") -> int:
    """Points of the drawn curve: the vertices of the SVG path of the trace that has markers."""
    d = page.locator(f"{selector} g.trace.scatter:has(path.point) path.js-line").first.get_attribute("d")
    return len(re.findall(r"[ML]", d))


def test_page_curve_leaderboard_problem_and_reasoning(demo_results, page, artifacts):
    port = free_port()
    proc, url = start_serve(str(demo_results), "--port", str(port))
    try:
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        page.select_option("#dataset", "demo-mc")
        page.wait_for_selector("#leaderboard tbody tr[data-dataset='demo-mc']", timeout=30_000)
        assert line_points(page) == len(BUDGETS)  # one point per budget
        assert page.locator("#curve g.trace.scatter:has(path.point) path.point").count() == len(BUDGETS)
        assert "significant first" in page.locator("#leaderboard-meta").inner_text()  # the default ranking, said
        assert "signed_range" in page.locator("#leaderboard thead").inner_text()  # the effect size beside the score

        page.wait_for_selector("#compute[data-pair='fake-a|demo-mc'][data-metric='maj']", timeout=30_000)
        traces = page.locator("#compute g.trace.scatter").count()
        assert traces == len(BUDGETS) + 4  # a line of k growing per budget, k = 1 and its band (2), the frontier
        assert page.evaluate("document.getElementById('compute').data.at(-1).line.shape") == "hv"  # a step line
        assert "frontier" in page.locator("#compute-answer").inner_text()  # the sentence that compares the curves
        assert page.locator("#compute-scores tbody tr").count() == 2  # k = 1 and the frontier, scored
        page.select_option("#compute-metric", "pass")
        page.wait_for_selector("#compute[data-metric='pass']", timeout=30_000)
        assert page.locator("#compute g.trace.scatter").count() == traces
        assert page.locator("#compute-answer").inner_text()
        page.select_option("#ranking", "score")
        page.wait_for_function("document.getElementById('leaderboard-meta').textContent.includes('alone')")
        assert page.locator("#leaderboard tbody tr").count() == 3  # demo-mc's 3 problems for fake-a
        assert page.locator("#dashboard-link").get_attribute("href").startswith("http://127.0.0.1:")

        page.select_option("#compare", "fake-b")  # side by side: two curves, two bands
        page.wait_for_function("document.querySelectorAll('#curve g.trace.scatter path.point').length === 8")
        page.screenshot(path=str(artifacts / "explorer-compare.png"), full_page=True)
        page.select_option("#compare", "")
        page.wait_for_function("document.querySelectorAll('#curve g.trace.scatter path.point').length === 4")

        row = page.locator("#leaderboard tbody tr").first
        problem_id = row.get_attribute("data-problem")
        row.click()
        page.wait_for_selector("#budget-table tbody tr", timeout=30_000)
        assert problem_id in page.locator("#problem-title").inner_text()
        assert "Which of these" in page.locator("#problem-question").inner_text()
        budgets = [
            int(b) for b in page.locator("#budget-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.budget)")
        ]
        assert budgets == BUDGETS
        assert all(page.locator(f"#budget-table tr[data-budget='{b}'] td.thought").inner_text() for b in BUDGETS)
        cuts = page.locator("#reasoning .cut").evaluate_all("cs => cs.map(c => Number(c.dataset.budget))")
        assert cuts == BUDGETS  # each budget's cut point, in order, inside the reasoning
        assert line_points(page, "#problem-curve") == len(BUDGETS)
        page.locator("#problem-panel").scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "explorer.png"), full_page=True)
    finally:
        stop(proc)


def test_progress_panel_moves_while_a_sweep_runs(tmp_path, page, artifacts):
    port = free_port()
    sweep = fake_sweep(
        tmp_path,
        name="slow",
        budgets=[64, 128],
        seeds=1,
        problems_per_unit=1,
        models=[
            {
                "name": "fake-slow",
                "engine": "fake",
                "device": "cpu",
                "threads": 1,
                "replicas": 1,
                "engine_options": {"seconds_per_token": 0.015},
            }
        ],
        datasets=[{"name": "demo-arith", "limit": 8}],
    )  # fmt: skip  8 units of ~2 s each, one after another
    proc = subprocess.Popen([sys.executable, "-m", "ttscale.cli", "sweep", str(sweep), "--serve", "--serve-port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # drained: never blocks it
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while not (url := next((x.split()[1] for x in list(lines) if x.startswith("explorer: ")), None)):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.2)
        page.goto(url)
        page.wait_for_selector("#progress .run", timeout=60_000)
        seen, deadline = [], time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            run = page.locator("#progress .run").first
            seen.append((run.get_attribute("data-state"), int(run.locator(".rows-done").inner_text())))
            if len({n for state, n in seen if state == "running"}) >= 3:
                break
            time.sleep(0.5)
        page.screenshot(path=str(artifacts / "explorer-progress.png"), full_page=True)
        moving = sorted({n for state, n in seen if state == "running"})
        assert len(moving) >= 3, f"the panel did not move while the sweep ran: {seen}"
        assert [n for _, n in seen] == sorted(n for _, n in seen)  # it only goes up
    finally:
        proc.wait(timeout=300)
        reader.join(timeout=10)
    assert proc.returncode == 0, "".join(lines)[-3000:]
