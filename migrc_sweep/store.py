"""The results dataset: one Parquet file per Ray task under <root>/sweep_id=<id>/.

Files are staged outside the root and moved in with os.replace, so readers that glob
**/*.parquet (duckdb, polars) never see a half-written file. File names are derived
from the batch content, so a retried task replaces its own file instead of adding rows.
The schema is declared here, once, and written into every file.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sim.metrics import ALL_METRICS
from sim.params import GROUPS

SCHEMA_VERSION = "1"
PARTITION_KEY = "sweep_id"
_ARROW_OF = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


def _param_fields() -> list[pa.Field]:
    fields = []
    for group, cls in GROUPS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            fields.append(pa.field(f"{group}.{f.name}", _ARROW_OF[hints[f.name].__name__]))
    return fields


IDENTITY_FIELDS = [
    pa.field("point_id", pa.string()),
    pa.field("policy", pa.string()),
    pa.field("seed", pa.int64()),
    pa.field("replicate", pa.int64()),
    pa.field("status", pa.string()),       # "ok" | "failed"
    pa.field("error", pa.string()),        # one line; null when ok
    pa.field("engine", pa.string()),
]
PROVENANCE_FIELDS = [
    pa.field("sim_version", pa.string()),
    pa.field("package_versions", pa.string()),   # JSON {"migrc-sweep": ..., "numpy": ...}
    pa.field("git_commit", pa.string()),
    pa.field("git_dirty", pa.bool_()),
    pa.field("host", pa.string()),
    pa.field("ray_node_id", pa.string()),
    pa.field("batch_id", pa.string()),
    pa.field("wall_s", pa.float64()),            # wall time of the batch's simulation, per point
    pa.field("finished_at", pa.timestamp("us", tz="UTC")),
]
SCHEMA = pa.schema(
    IDENTITY_FIELDS + _param_fields() + [pa.field(m, pa.float64()) for m in ALL_METRICS] + PROVENANCE_FIELDS,
    metadata={"migrc_sweep.schema_version": SCHEMA_VERSION},
)
PARTITIONING = ds.partitioning(pa.schema([pa.field(PARTITION_KEY, pa.string())]), flavor="hive")


def partition_dir(root: Path, sweep_id: str) -> Path:
    return Path(root) / f"{PARTITION_KEY}={sweep_id}"


def file_path(root: Path, sweep_id: str, batch_id: str) -> Path:
    return partition_dir(root, sweep_id) / f"part-{batch_id}.parquet"


def staging_dir(root: Path) -> Path:
    """A sibling of the root on the same filesystem, so os.replace is atomic."""
    root = Path(root)
    return root.parent / f".{root.name}.staging"


def write_rows(root: Path, sweep_id: str, batch_id: str, rows: list[dict]) -> Path:
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    final = file_path(root, sweep_id, batch_id)
    stage = staging_dir(root)
    stage.mkdir(parents=True, exist_ok=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage / f"{sweep_id}.{batch_id}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final


def dataset(root: Path) -> ds.Dataset:
    return ds.dataset(Path(root), format="parquet", partitioning=PARTITIONING,
                      schema=SCHEMA.append(pa.field(PARTITION_KEY, pa.string())))


def read_table(root: Path, sweep_id: str | None = None) -> pa.Table:
    if not Path(root).is_dir():
        return dataset_schema().empty_table()
    d = dataset(root)
    flt = ds.field(PARTITION_KEY) == sweep_id if sweep_id is not None else None
    return d.to_table(filter=flt)


def dataset_schema() -> pa.Schema:
    return SCHEMA.append(pa.field(PARTITION_KEY, pa.string()))


def read_results(root: Path, sweep_id: str | None = None):
    """Rows as a pandas DataFrame, the latest row per (sweep, point, policy) when a point was re-run."""
    df = read_table(root, sweep_id).to_pandas()
    df = df.sort_values("finished_at", kind="stable")
    return df.drop_duplicates([PARTITION_KEY, "point_id", "policy"], keep="last").reset_index(drop=True)


def completed(root: Path, sweep_id: str) -> set[tuple[str, str]]:
    """(point_id, policy) pairs with an ok row: what a re-run can skip."""
    table = read_table(root, sweep_id)
    if table.num_rows == 0:
        return set()
    ok = table.filter(ds.field("status") == "ok").select(["point_id", "policy"]).to_pylist()
    return {(r["point_id"], r["policy"]) for r in ok}
