"""`ttscale status` of a results directory: planned from its manifest, or from the datasets when it must."""

from __future__ import annotations

import json

import pytest

from ttscale.store import ResultStore
from ttscale.sweeps.original import load_sweep
from ttscale.sweeps.resolve import resolve
from ttscale.sweeps.run import manifest_for
from ttscale.sweeps.status import sweep_status


def results_dir(tmp_path, make_sweep, *, drop=None, rename=None):
    """A results dir whose manifest was written for the tiny sweep, as `ttscale sweep` writes it, then edited."""
    loaded = load_sweep(make_sweep())
    manifest = manifest_for(loaded, resolve(loaded), None, {"started": 0.0})
    if drop:
        del manifest[drop]
    if rename:
        manifest["datasets"][0]["name"] = rename
    store = ResultStore(tmp_path / "results")
    store.write_manifest(json.loads(json.dumps(manifest)))
    return store.root


def test_status_plans_from_the_manifest_without_loading_a_dataset(tmp_path, make_sweep, monkeypatch):
    root = results_dir(tmp_path, make_sweep)
    monkeypatch.setattr("ttscale.sweeps.status.resolve", lambda *a, **k: pytest.fail("datasets were loaded"))
    report = sweep_status(root)
    assert (report.rows_total, report.rows_done) == (2 * 2 * 2, 0)


@pytest.mark.parametrize("edit", [{"drop": "datasets"}, {"rename": "another-dataset"}])
def test_an_older_or_mismatched_manifest_falls_back_to_loading_the_datasets(tmp_path, make_sweep, edit):
    report = sweep_status(results_dir(tmp_path, make_sweep, **edit))
    assert (report.rows_total, report.rows_done) == (2 * 2 * 2, 0)
    assert [r["budget"] for r in report.completion] == [8, 16]
