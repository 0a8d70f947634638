"""Paths in sweep files: `~` expanded, relative to the working directory, and checked before anything runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ttscale.errors import ConfigError
from ttscale.sweeps.original import load_sweep


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "set.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps({"id": "1", "problem": "p", "answer": "1"}) + "\n")
    return path


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_a_missing_dataset_file_names_the_field_the_resolved_path_and_the_fix(make_sweep, tmp_path):
    path = make_sweep(datasets=[{"name": "aime24", "path": "nowhere/aime.jsonl"}])
    with pytest.raises(ConfigError) as exc:
        load_sweep(path)
    assert one_line(exc) == (
        f"Got 'nowhere/aime.jsonl' for {path}: `datasets.0.path`. No such file "
        f"({Path.cwd() / 'nowhere/aime.jsonl'}). Give an existing .jsonl, .json or .parquet file."
    )
    with pytest.raises(ConfigError, match=r"`datasets\.0\.name`\. No such file"):
        load_sweep(make_sweep(datasets=[{"name": str(tmp_path / "gone.parquet")}]))


def test_a_directory_is_not_a_dataset_file(make_sweep, data_file):
    with pytest.raises(ConfigError, match=r"`datasets\.0\.path`\. It is a directory\. Give the \.jsonl, \.json or"):
        load_sweep(make_sweep(datasets=[{"name": "aime24", "path": str(data_file.parent)}]))
    (data_file.parent / "split.jsonl").mkdir()
    with pytest.raises(ConfigError, match=r"`datasets\.0\.name`\. It is a directory"):
        load_sweep(make_sweep(datasets=[{"name": str(data_file.parent / "split.jsonl")}]))


def test_an_unreadable_dataset_file_names_the_fix(make_sweep, data_file, monkeypatch):
    if os.geteuid() == 0:  # root reads any file: ask the check's question with the answer a user would get
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == data_file else real(p, mode))
    else:
        data_file.chmod(0)
    with pytest.raises(ConfigError) as exc:
        load_sweep(make_sweep(datasets=[{"name": "aime24", "path": str(data_file)}]))
    assert "`datasets.0.path`. It is not readable. Fix its permissions (chmod +r)" in one_line(exc)


def test_an_output_dir_that_is_a_file_is_refused(make_sweep, tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(ConfigError) as exc:
        load_sweep(make_sweep(output_dir=str(tmp_path / "taken")))
    assert "`output_dir`. It is a file, not a directory. Give a directory path" in one_line(exc)
    with pytest.raises(ConfigError, match=r"`output_dir`\. .*taken is a file, not a directory"):
        load_sweep(make_sweep(output_dir=str(tmp_path / "taken" / "results")))


def test_tilde_is_expanded_in_every_path(make_sweep, data_file, monkeypatch):
    monkeypatch.setenv("HOME", str(data_file.parent.parent))
    spec = load_sweep(
        make_sweep(output_dir="~/results", datasets=[{"name": "aime24", "path": "~/data/set.jsonl"}])
    ).spec
    assert spec.output_dir == data_file.parent.parent / "results"
    assert spec.datasets[0].path == str(data_file)
    spec = load_sweep(make_sweep(datasets=[{"name": "~/data/set.jsonl"}])).spec
    assert spec.datasets[0].name == str(data_file)


def test_relative_paths_are_relative_to_the_working_directory(make_sweep, data_file, monkeypatch):
    """As in every release so far: a rerun from the same directory finds the same results to resume."""
    monkeypatch.chdir(data_file.parent.parent)
    loaded = load_sweep(make_sweep(output_dir="results", datasets=[{"name": "aime24", "path": "data/set.jsonl"}]))
    assert loaded.spec.output_dir == Path("results")
    monkeypatch.chdir(data_file.parent)
    with pytest.raises(ConfigError, match=r"No such file \(.*/data/data/set\.jsonl\)"):
        load_sweep(make_sweep(datasets=[{"name": "aime24", "path": "data/set.jsonl"}]))
