"""The loader: typed columns, partitions in numeric order, re-runs collapsed."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analysis_datasets import params, simulated_rows, write_partition
from migrc_sweep.analysis import load_dataset
from migrc_sweep.analysis.load import PARAM_DTYPES, natural_key
from sim.metrics import ALL_METRICS


def test_partitions_in_numeric_order_not_directory_order(tmp_path):
    root = tmp_path / "ds"
    rows = simulated_rows([(params(), 0)], seed_in_point_id=False)
    # Written so that directory (lexical) order is 10, 2, 9, test: pandas would keep that.
    for sweep in ("10", "2", "9", "test"):
        write_partition(root, sweep, rows)
    assert list(pd.read_parquet(root)["sweep_id"].cat.categories) == ["10", "2", "9", "test"]

    df = load_dataset(root)
    assert df["sweep_id"].cat.ordered
    assert list(df["sweep_id"].cat.categories) == ["2", "9", "10", "test"]
    assert list(df["sweep_id"].drop_duplicates()) == ["2", "9", "10", "test"]  # rows follow the same order
    assert sorted(["a10", "a9", "a100"], key=natural_key) == ["a9", "a10", "a100"]


def test_columns_are_typed(map_dataset):
    df = load_dataset(map_dataset)
    for col, dtype in PARAM_DTYPES.items():
        assert str(df[col].dtype) == dtype, col
    for metric in ALL_METRICS:
        assert df[metric].dtype == "float64", metric
    assert df["seed"].dtype == "int64"
    assert set(df["status"]) == {"ok", "failed"}
    assert df["machine.is_guest"].dtype == bool and set(df["machine.is_guest"]) == {True, False}


def test_a_rerun_keeps_only_its_latest_row_and_sweep_filter(tmp_path):
    root = tmp_path / "ds"
    point = [(params(), 0)]
    old = simulated_rows(point, seed_in_point_id=False, start=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    new = simulated_rows(point, seed_in_point_id=False, start=dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc))
    for r in new:
        r["host"] = "rerun-host"
    write_partition(root, "1", old, "part-a.parquet")
    write_partition(root, "1", new, "part-b.parquet")
    write_partition(root, "2", old)
    df = load_dataset(root)
    assert len(df) == 3 * 2  # 3 policies in each of 2 sweeps
    assert set(df[df["sweep_id"] == "1"]["host"]) == {"rerun-host"}
    only = load_dataset(root, sweep_id="2")
    assert len(only) == 3 and set(only["sweep_id"].astype(str)) == {"2"}
