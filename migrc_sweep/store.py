"""The results dataset: one Parquet file per Ray task under <root>/sweep_id=<id>/.

Files are staged outside the root and moved in with os.replace, so readers that glob
**/*.parquet (duckdb, polars) never see a half-written file. File names are derived
from the batch content, so a retried task replaces its own file instead of adding rows.
The schema is declared here, once, and written into every file.
"""

from __future__ import annotations

import dataclasses
import os
import time
import typing
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sim.metrics import ALL_METRICS
from sim.params import GROUPS

SCHEMA_VERSION = "2"   # 2 added attempt
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
    pa.field("attempt", pa.int64()),             # 0 = first try; Ray's task attempt number after a retry
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


def quarantine_dir(root: Path) -> Path:
    """Where damaged part files go: outside the root, so no reader's glob picks them up."""
    root = Path(root)
    return root.parent / f".{root.name}.quarantine"


def write_rows(root: Path, sweep_id: str, batch_id: str, rows: list[dict]) -> Path:
    # The footer records what the file must hold, so a later check can tell a whole file
    # from a damaged or foreign one without trusting its size.
    meta = {**SCHEMA.metadata, b"migrc_sweep.batch_id": batch_id.encode(),
            b"migrc_sweep.num_rows": str(len(rows)).encode()}
    table = pa.Table.from_pylist(rows, schema=SCHEMA.with_metadata(meta))
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


def part_files(root: Path, sweep_id: str) -> list[Path]:
    return sorted(partition_dir(root, sweep_id).glob("part-*.parquet"))


_KEY_COLUMNS = ["point_id", "policy", "status"]


def check_part(path: Path) -> str | None:
    """None if the part file is whole; else one line saying what is wrong with it."""
    return _read_keys(path)[1]


def _read_keys(path: Path) -> tuple[pa.Table | None, str | None]:
    """(key columns, None) for a whole file, (None, why) for a damaged one.

    Reads the footer and the key columns (what resume needs), and compares the row count
    and batch id with what write_rows recorded: a truncated or overwritten file fails one of these.
    """
    try:
        f = pq.ParquetFile(path)
        meta = f.schema_arrow.metadata or {}
        want_rows = meta.get(b"migrc_sweep.num_rows")
        want_batch = meta.get(b"migrc_sweep.batch_id")
        keys = f.read(columns=_KEY_COLUMNS)
    except Exception as ex:  # noqa: BLE001 - any unreadable file is damaged, whatever pyarrow raises
        return None, " ".join(f"{type(ex).__name__}: {ex}".split())[:300]
    if keys.num_rows == 0 or keys.num_rows != f.metadata.num_rows:
        return None, f"{keys.num_rows} readable rows of {f.metadata.num_rows}"
    if want_rows is not None and int(want_rows) != keys.num_rows:
        return None, f"{keys.num_rows} rows where {int(want_rows)} were written"
    if want_batch is not None and path.name != f"part-{want_batch.decode()}.parquet":
        return None, f"holds batch {want_batch.decode()}, not the one its name says"
    return keys, None


def damaged_parts(root: Path, sweep_id: str) -> list[tuple[Path, str]]:
    return [(p, why) for p in part_files(root, sweep_id) if (why := check_part(p)) is not None]


def quarantine(root: Path, path: Path) -> Path:
    """Move a damaged file out of the dataset (kept for a post-mortem, never read again)."""
    qdir = quarantine_dir(root)
    qdir.mkdir(parents=True, exist_ok=True)
    dest = qdir / f"{path.parent.name}.{path.name}.{time.strftime('%Y%m%dT%H%M%S')}"
    os.replace(path, dest)
    return dest


def completed(root: Path, sweep_id: str) -> set[tuple[str, str]]:
    """(point_id, policy) pairs with an ok row in a whole part file: what a re-run can skip.

    A damaged file counts as absent (its points are recomputed); callers that may modify
    the dataset move it aside first with damaged_parts + quarantine.
    """
    done: set[tuple[str, str]] = set()
    for path in part_files(root, sweep_id):
        keys, _ = _read_keys(path)
        if keys is None:
            continue
        ok = keys.filter(ds.field("status") == "ok")
        done.update(zip(ok.column("point_id").to_pylist(), ok.column("policy").to_pylist()))
    return done
