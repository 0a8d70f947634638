"""CONTRIBUTING.md's three recipes, followed as written on a copy of the package: a dataset, a continuous metric and
an engine are each added in at most two source files, and each arrives in stored rows, the report and the
explorer's API after a real `ttscale sweep` on a local Ray instance."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import ttscale

pytestmark = pytest.mark.ray

# Recipe 1, a dataset: one module in ttscale/tasks/ and its name in the registry (ttscale/tasks/__init__.py).
TOY_DATASET = '''
"""toy-double: twice a small number. Ten problems made by code, for the recipe test; answers 0..18."""

from __future__ import annotations

from ttscale.tasks.base import Problem
from ttscale.tasks.solution_sets import integers
from ttscale.tasks.spec import TaskSpec

VERSION = 1


def generate() -> tuple[Problem, ...]:
    """Problems "double-0".."double-9"."""
    return tuple(Problem(f"double-{n}", f"What is twice {n}?", str(2 * n)) for n in range(10))


SPEC = TaskSpec(name="toy-double", version=VERSION, answer_format="integer", solutions=integers(0, 20),
                generate=generate)
'''

# Recipe 2, a continuous metric: its function and its declaration, both in ttscale/metrics.py.
TOY_METRIC_FUNCTION = '''
def p_top(s: SetScore) -> float:
    """q of the most likely candidate: how sure the model is, right or wrong."""
    return float(np.max(s.q))


'''
TOY_METRIC_DECLARATION = '''    Metric(
        "p_top", "p_top", False, "p(top answer)", "q of the most likely candidate", compute=p_top,
    ),
'''

# Recipe 3, an engine: one module in ttscale/engines/ and its declaration in ttscale/engines/registry.py. The toy
# reuses the deterministic test double's "model" and names itself: what matters here is the plumbing.
TOY_ENGINE = '''
"""ToyEngine: the test double under another name, for the recipe test."""

from __future__ import annotations

from ttscale.engines.base import EngineInfo
from ttscale.engines.fake import FakeEngine


class ToyEngine(FakeEngine):
    """See the module docstring."""

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(engine="toy", engine_version="1", model=self.model, model_path="toy", dtype=self.dtype)
'''
TOY_ENGINE_DECLARATION = '''
register_engine(
    EngineKind(
        name="toy",
        module="ttscale.engines.toy",
        class_name="ToyEngine",
        summary="the recipe test's engine",
        options=("stop_every",),
        loads_weights=False,
    )
)

'''

# What the copy runs after the sweep: the rows, the report's tables and the explorer's answers, as JSON.
INSPECT = '''
import json, sys
from pathlib import Path

import pyarrow.parquet as pq

from ttscale.analysis import Results
from ttscale.serve.api import Explorer
from ttscale.serve.index import ResultsIndex

results_dir, report_dir = Path(sys.argv[1]), Path(sys.argv[2])
rows = pq.read_table(results_dir / "rows").to_pandas()
Results.open(results_dir, through_ray=False, n_boot=20, n_sim=10).report(report_dir, metric="p_top", k=2)
curves = pq.read_table(report_dir / "curves.parquet").to_pandas()
explorer = Explorer(ResultsIndex([results_dir], n_boot=20, n_sim=10))
options = json.loads(explorer.handle("GET", "/api/options", {}).body)
curve = json.loads(explorer.handle("GET", "/api/curve", {"model": "toy-model", "dataset": "toy-double",
                                                           "metric": "p_top"}).body)
print(json.dumps({
    "columns": list(rows.columns),
    "datasets": sorted(rows.dataset.unique()),
    "engines": sorted(rows.engine.unique()),
    "p_top": rows.p_top.tolist(),
    "p_correct": rows.p_correct.tolist(),
    "report_metrics": sorted(curves.metric.unique()),
    "report_datasets": sorted(curves.dataset.unique()),
    "html": (report_dir / "report.html").read_text().count("p(top answer)"),
    "options": options,
    "curve": curve,
}))
'''


def _insert(path: Path, anchor: str, text: str, *, after: bool = False) -> None:
    """Put `text` before (or after) `anchor`, which must be in the file exactly once: if this fails, the code moved
    and CONTRIBUTING.md's recipe must move with it."""
    source = path.read_text()
    assert source.count(anchor) == 1, f"{path.name} no longer holds {anchor!r} once: update CONTRIBUTING.md"
    path.write_text(source.replace(anchor, anchor + text if after else text + anchor))


@pytest.fixture(scope="module")
def extended(tmp_path_factory) -> dict:
    """A copy of ttscale with the three recipes applied, a sweep run on it, and what the rows, report and explorer
    then say."""
    root = tmp_path_factory.mktemp("recipes")
    package = root / "src" / "ttscale"
    shutil.copytree(Path(ttscale.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))

    (package / "tasks" / "toy_double.py").write_text(TOY_DATASET.lstrip())
    tasks = package / "tasks" / "__init__.py"
    _insert(tasks, "gpqa, gsm8k, math500", ", toy_double", after=True)  # the import
    _insert(tasks, "gsm8k, demo_arith, demo_mc", ", toy_double", after=True)  # the registry

    metrics = package / "metrics.py"
    _insert(metrics, "METRICS: dict[str, Metric] = {}", textwrap.dedent(TOY_METRIC_FUNCTION).lstrip())
    _insert(metrics, "    # from forcing (METHOD.md §3)", TOY_METRIC_DECLARATION)

    (package / "engines" / "toy.py").write_text(TOY_ENGINE.lstrip())
    _insert(package / "engines" / "registry.py", "def engine_kind(", TOY_ENGINE_DECLARATION.lstrip())

    sweep = root / "toy.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "recipes", "output_dir": str(root / "results"),
        "models": [{"name": "toy-model", "engine": "toy", "device": "cpu", "threads": 1, "replicas": 1,
                    "engine_options": {"stop_every": 5}}],
        "datasets": [{"name": "toy-double", "limit": 4}],
        "budgets": [4, 8, 16], "seeds": 2,
    }))  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cli = [sys.executable, "-c", "from ttscale.cli import main; main()"]
    # run from the copy's directory: `python -c` puts the working directory first on sys.path
    swept = subprocess.run([*cli, "sweep", str(sweep)], env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert swept.returncode == 0, swept.stderr[-3000:]
    inspect = subprocess.run(
        [sys.executable, "-c", INSPECT, str(root / "results"), str(root / "report")],
        env=env, cwd=root, capture_output=True, text=True, timeout=600,
    )
    assert inspect.returncode == 0, inspect.stderr[-3000:]
    return json.loads(inspect.stdout.strip().splitlines()[-1])


def test_a_dataset_is_one_module_and_one_registry_line(extended):
    assert extended["datasets"] == ["toy-double"]
    assert extended["report_datasets"] == ["toy-double"]
    assert "toy-double" in [d["name"] if isinstance(d, dict) else d for d in extended["options"]["datasets"]]
    assert all(p is not None for p in extended["p_correct"])  # scored over its set 0..20


def test_a_continuous_metric_is_one_declaration_and_its_function(extended):
    columns = extended["columns"]
    assert "p_top" in columns and columns.index("p_top") < columns.index("distribution")  # a set column
    p_top, p_correct = extended["p_top"], extended["p_correct"]
    assert all(1 / 21 <= top <= 1.0 and top >= gold for top, gold in zip(p_top, p_correct, strict=True))
    assert "p_top" in extended["report_metrics"] and extended["html"] > 0  # a report panel, under its label
    assert {"name": "p_top", "label": "p(top answer)"} in extended["options"]["metrics"]
    assert extended["curve"]["label"] == "p(top answer)" and extended["curve"]["metric"] == "p_top"


def test_an_engine_is_one_module_and_one_declaration(extended):
    assert extended["engines"] == ["toy"]
    assert "toy-model" in [m["name"] if isinstance(m, dict) else m for m in extended["options"]["models"]]
