"""A bad results directory: a truncated shard is set aside and its rows measured again; a damaged manifest, a
full disk and a read-only directory each end in one line, with no half-written shard. The engine is the `fake`
double; the full and read-only directories are real tmpfs mounts (root only: skipped elsewhere)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_figures import record_fault

from ttscale.store import ResultStore

pytestmark = pytest.mark.ray

ROWS = 4 * 2 * 2  # problems × seeds × budgets


def sweep(make_sweep, output_dir: Path | None = None) -> Path:
    fields = {"output_dir": str(output_dir)} if output_dir else {}
    return make_sweep(
        models=[{"name": "fake", "engine": "fake", "device": "cpu", "threads": 1, "replicas": 1}],
        datasets=[{"name": "demo-arith", "limit": 4}], budgets=[8, 16], seeds=2, problems_per_unit=2, **fields,
    )  # fmt: skip


def ttscale(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ttscale.cli", *args], capture_output=True, text=True, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The run failed with exactly one `error:` line and no traceback (Ray's own start-up lines may precede it)."""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return errors[0]


def test_a_truncated_shard_is_set_aside_and_its_rows_are_measured_again(tmp_path, make_sweep):
    path = sweep(make_sweep)
    assert ttscale("sweep", str(path)).returncode == 0
    store = ResultStore(tmp_path / "results")
    shard = store.row_shards()[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])  # cut short, as a crashed copy leaves it
    rerun = ttscale("sweep", str(path))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "is unreadable" in rerun.stderr and "will be measured again" in rerun.stderr
    assert (tmp_path / "results" / "corrupt" / f"rows-{shard.name}").exists()
    keys = store.read_pandas(["cell_id", "problem_id"])
    assert len(keys) == ROWS and not keys.duplicated().any()
    record_fault("truncated shard", injected=1, survived=1, rows_lost=0, duplicates=0)


def test_a_damaged_manifest_is_one_line_naming_the_fix(tmp_path, make_sweep):
    path = sweep(make_sweep)
    assert ttscale("sweep", str(path)).returncode == 0
    manifest = tmp_path / "results" / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    for command in (["status", str(tmp_path / "results")], ["sweep", str(make_sweep(budgets=[8, 16, 32]))]):
        line = one_error_line(ttscale(*command))
        assert "manifest.json is damaged" in line and ".damaged" in line
    record_fault("damaged manifest", injected=1, survived=1, rows_lost=0, duplicates=0)


@contextlib.contextmanager
def tmpfs(where: Path, options: str):
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_full_disk_is_one_line_and_leaves_no_half_written_shard(tmp_path, make_sweep):
    with tmpfs(tmp_path / "small", "size=1m") as disk:
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * (free - 48 * 1024))  # room for the manifest and a shard or two
        path = sweep(make_sweep, output_dir=disk / "results")
        line = one_error_line(ttscale("sweep", str(path)))
        assert "No space left on device" in line and "run the same command again" in line
        store = ResultStore(disk / "results")
        assert all(_readable(p) for p in store.row_shards() + store.trajectory_shards())  # whole shards only
        assert not list((disk / "results" / "tmp").glob("*"))  # and no partial file left behind
    record_fault("full disk", injected=1, survived=1, rows_lost=0, duplicates=0)


def test_a_read_only_results_dir_is_one_line(tmp_path, make_sweep):
    with tmpfs(tmp_path / "ro", "ro,size=64k") as disk:
        line = one_error_line(ttscale("sweep", str(sweep(make_sweep, output_dir=disk / "results"))))
        assert "Read-only file system" in line and str(disk / "results") in line
    record_fault("read-only results dir", injected=1, survived=1, rows_lost=0, duplicates=0)


def _readable(path: Path) -> bool:
    import pyarrow.parquet as pq

    try:
        pq.read_table(path)
    except Exception:
        return False
    return True
