"""Results written by an older ttscale stay readable after a nullable column is added to a schema."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ttscale.schema import ROW_SCHEMA, TRAJECTORY_SCHEMA
from ttscale.store import ResultStore, read_shard


def _older(schema: pa.Schema, drop: set[str], n: int = 2) -> pa.Table:
    """A table of `schema` without the columns in `drop`, as an older ttscale wrote it (values are dummies)."""
    values = {
        pa.string(): "x", pa.int32(): 1, pa.int64(): 1, pa.int8(): 1, pa.float64(): 0.5, pa.bool_(): False,
        pa.timestamp("us", tz="UTC"): dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    }  # fmt: skip
    fields = [f for f in schema if f.name not in drop]
    columns = {
        f.name: [f"t{i}" if f.name in ("trajectory_id", "cell_id") else values.get(f.type, [] if
                 pa.types.is_list(f.type) else None) for i in range(n)]
        for f in fields
    }  # fmt: skip
    return pa.table(columns, schema=pa.schema(fields))


def test_a_shard_without_a_newer_nullable_column_reads_it_as_null(tmp_path):
    store = ResultStore(tmp_path)
    store._ensure()
    pq.write_table(_older(ROW_SCHEMA, {"stopped", "trajectory_tokens"}), store.rows_dir / "old.parquet")
    pq.write_table(_older(TRAJECTORY_SCHEMA, {"stopped", "injection_starts"}), store.trajectories_dir / "old.parquet")
    rows = store.read_table()
    assert rows.schema == ROW_SCHEMA and rows.column("stopped").null_count == 2
    assert rows.column("trajectory_tokens").null_count == 2  # rows from before reuse: version unknown
    assert store.read_table(["cell_id", "stopped"]).num_rows == 2
    assert len(store.done_keys()) == 2
    trajectories = store.read_trajectories(["t0"])
    assert trajectories.num_rows == 1 and trajectories.column("injection_starts").null_count == 1


def test_a_shard_missing_a_required_column_is_refused_with_its_name(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(_older(ROW_SCHEMA, {"budget"}), path)
    with pytest.raises(ValueError, match="lacks the column"):
        read_shard(path, ROW_SCHEMA)
