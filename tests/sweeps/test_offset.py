"""A dataset's `offset`: which problems a sweep runs (problems offset..offset+limit-1), never what a row holds."""

from __future__ import annotations

import pytest
import yaml

from ttscale.errors import ConfigError, TaskError
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.resolve import resolve
from ttscale.tasks import get_task


def sweep(tmp_path, **dataset):
    path = tmp_path / "offset.yaml"
    spec = {
        "name": "offset",
        "output_dir": str(tmp_path / "results"),
        "models": [{"name": "fake-a", "engine": "fake"}],
        "datasets": [{"name": "demo-arith", **dataset}],
        "budgets": [8, 16],
        "seeds": 2,
    }
    path.write_text(yaml.safe_dump(spec))
    return load_sweep(path)


def test_offset_and_limit_select_a_range_of_problems_in_stored_order(tmp_path):
    every = [p.id for p in get_task("demo-arith").load()]
    resolved = resolve(sweep(tmp_path, offset=3, limit=2))
    assert [p.id for p in resolved.problems[0]] == every[3:5]
    assert [p.id for p in resolve(sweep(tmp_path, offset=3)).problems[0]] == every[3:]
    assert get_task("demo-arith").load(2, offset=3) == get_task("demo-arith").load()[3:5]


def test_offset_chooses_problems_and_leaves_cell_ids_alone(tmp_path):
    shifted, first = resolve(sweep(tmp_path, offset=3, limit=2)).plan, resolve(sweep(tmp_path, limit=5)).plan
    assert shifted.cell_ids == first.cell_ids
    assert shifted.rows_total == 2 * 2 * 2  # problems × budgets × seeds


def test_an_offset_past_the_dataset_is_refused_in_one_line(tmp_path):
    n = len(get_task("demo-arith").load())
    with pytest.raises(ConfigError, match=rf"offset.yaml: `datasets.0` \(demo-arith\): Got offset={n} .* has {n}"):
        resolve(sweep(tmp_path, offset=n))
    with pytest.raises(ConfigError, match=r"`datasets.0.offset`"):
        sweep(tmp_path, offset=-1)
    with pytest.raises(TaskError, match="offset must be 0 or more"):
        get_task("demo-arith").load(offset=-1)
