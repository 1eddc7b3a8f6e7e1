"""Loading a results dataset into a tidy, typed pandas DataFrame.

This is the only place in `migrc_sweep.analysis` that touches files: every
other function takes DataFrames and returns DataFrames or figures, so the
notebook can feed them simulated rows straight from memory.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from sim.metrics import ALL_METRICS
from sim.params import GROUPS

PARTITION_KEY = "sweep_id"
IDENTITY_TEXT_COLUMNS = ("point_id", "policy", "status", "error", "engine")
# Columns whose values differ between replicates or runs, never part of a point's identity.
PROVENANCE_COLUMNS = ("sim_version", "package_versions", "git_commit", "git_dirty", "host", "ray_node_id",
                      "attempt", "batch_id", "wall_s", "finished_at")


def _param_dtypes() -> dict[str, str]:
    """Override key -> pandas dtype, from sim's own dataclass annotations."""
    out = {}
    for group, cls in GROUPS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            out[f"{group}.{f.name}"] = {"int": "int64", "float": "float64", "bool": "bool"}[hints[f.name].__name__]
    return out


PARAM_DTYPES = _param_dtypes()
PARAM_COLUMNS = tuple(PARAM_DTYPES)


def natural_key(text: str) -> tuple:
    """'sweep10' sorts after 'sweep2': digit runs compare as numbers, the rest as text."""
    return tuple((0, int(tok), "") if tok.isdigit() else (1, 0, tok)
                 for tok in re.split(r"(\d+)", str(text)) if tok != "")


def natural_categorical(values: pd.Series) -> pd.Series:
    """Ordered categorical whose category order is numeric-aware (2 < 10), not lexical or on-disk order."""
    as_text = values.astype("str")
    categories = sorted(as_text.dropna().unique(), key=natural_key)
    return pd.Series(pd.Categorical(as_text, categories=categories, ordered=True), index=values.index,
                     name=values.name)


def tidy(df: pd.DataFrame, partition_columns: typing.Iterable[str] = (PARTITION_KEY,)) -> pd.DataFrame:
    """Typed columns and a deterministic row order; pure, so in-memory rows get the same treatment as loaded ones."""
    out = df.copy()
    for col in partition_columns:
        if col in out.columns:
            out[col] = natural_categorical(out[col])
    for col, dtype in PARAM_DTYPES.items():
        if col in out.columns:
            out[col] = out[col].astype(dtype)
    for col in ALL_METRICS:
        if col in out.columns:
            out[col] = out[col].astype("float64")
    for col in ("seed", "replicate"):
        if col in out.columns and out[col].notna().all():
            out[col] = out[col].astype("int64")
    for col in IDENTITY_TEXT_COLUMNS:
        if col in out.columns:
            out[col] = out[col].astype("str").where(out[col].notna(), None)
    order = [c for c in (*partition_columns, "point_id", "policy", "seed") if c in out.columns]
    if order:
        out = out.sort_values(order, kind="stable")
    return out.reset_index(drop=True)


def load_dataset(root: str | Path, sweep_id: str | None = None) -> pd.DataFrame:
    """Every row of a hive-partitioned Parquet dataset (``<root>/sweep_id=<id>/*.parquet``), tidy and typed.

    Partition columns become ordered categoricals in numeric-aware order: pandas
    alone would hand them over as categoricals in directory order. A point that
    was re-run keeps only its latest row per (partition, point, policy, seed).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no dataset directory at {root}")
    discovered = ds.dataset(root, format="parquet", partitioning="hive")
    partition_names = list(discovered.partitioning.schema.names) if discovered.partitioning else []
    # Re-open with the partition keys as plain strings: pyarrow would otherwise infer
    # int32 for "2"/"10" and string for "test", which breaks mixing sweeps.
    part_schema = pa.schema([pa.field(n, pa.string()) for n in partition_names])
    dataset = ds.dataset(root, format="parquet", partitioning=ds.partitioning(part_schema, flavor="hive"))
    table = dataset.to_table()
    df = table.to_pandas()
    if sweep_id is not None:
        df = df[df[PARTITION_KEY].astype("str") == str(sweep_id)]
    if "finished_at" in df.columns:
        df = df.sort_values("finished_at", kind="stable")
        keys = [c for c in (*partition_names, "point_id", "policy", "seed") if c in df.columns]
        df = df.drop_duplicates(keys, keep="last")
    return tidy(df, partition_names)
