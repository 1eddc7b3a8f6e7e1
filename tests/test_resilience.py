"""Sweeps survive damage and stop when the simulator keeps failing: the real CLI, real Parquet.

The failing points are genuine: the reference engine models every page frame explicitly, so a
16 TiB footprint (valid input: it fits the configured memory) makes it raise MemoryError when
it allocates its per-page arrays. No fault is injected into our code.
"""

from __future__ import annotations

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from cli_process import run_cli
from migrc_sweep import store

pytestmark = pytest.mark.slow

SMALL_GRID = ["-m", "machine.num_cpus=1,2,3,4", "fidelity=tiny", "executor=inline", "ray.points_per_task=1",
              "sweep_id=dmg"]
HUGE = 17179869184  # MiB: 16 TiB
FAILING_GRID = ["-m", "engine=reference", f"workload.footprint_mib={HUGE}", f"memory.slow_capacity_mib={HUGE}",
                "machine.num_cpus=1,2,3,4,5,6,7,8", "fidelity=tiny", "ray.points_per_task=1", "sweep_id=ff"]


def _read_everywhere(root) -> int:
    """Row count, after checking that all four readers agree on it."""
    n = ds.dataset(root, format="parquet", partitioning="hive").count_rows()
    assert len(pd.read_parquet(root)) == n
    import polars as pl
    assert pl.scan_parquet(str(root / "**" / "*.parquet"), hive_partitioning=True).collect().height == n
    import duckdb
    assert duckdb.sql(f"select count(*) from read_parquet('{root}/**/*.parquet', hive_partitioning=true)"
                      ).fetchall() == [(n,)]
    return n


def test_a_truncated_part_file_is_reported_quarantined_and_recomputed(tmp_path):
    first = run_cli(tmp_path, *SMALL_GRID)
    assert first.returncode == 0, first.stderr
    root = tmp_path / "outputs" / "dataset"
    parts = store.part_files(root, "dmg")
    assert len(parts) == 4
    victim = parts[1]
    size = victim.stat().st_size
    with open(victim, "r+b") as f:   # what a full disk or an interrupted copy leaves behind
        f.truncate(size // 2)

    again = run_cli(tmp_path, *SMALL_GRID)
    assert again.returncode == 0, again.stderr
    damaged = [ln for ln in again.stderr.splitlines() if ln.startswith("damaged part file")]
    assert len(damaged) == 1 and victim.name in damaged[0]
    assert "requested 4 points, present 3, to run 1" in again.stdout
    quarantined = list(store.quarantine_dir(root).iterdir())
    assert len(quarantined) == 1 and not quarantined[0].is_relative_to(root)

    assert sorted(p.name for p in store.part_files(root, "dmg")) == sorted(p.name for p in parts)
    assert all(store.check_part(p) is None for p in store.part_files(root, "dmg"))
    assert _read_everywhere(root) == 8
    df = store.read_results(root, "dmg")
    assert df["point_id"].nunique() == 4 and (df["status"] == "ok").all()


def test_a_dry_run_reports_damage_without_touching_it(tmp_path):
    assert run_cli(tmp_path, *SMALL_GRID).returncode == 0
    root = tmp_path / "outputs" / "dataset"
    victim = store.part_files(root, "dmg")[0]
    victim.write_bytes(b"PAR1 not really")
    dry = run_cli(tmp_path, *SMALL_GRID, "dry_run=true")
    assert dry.returncode == 0, dry.stderr
    assert "present 3, to run 1" in dry.stdout and victim.name in dry.stderr
    assert victim.exists() and not store.quarantine_dir(root).exists()


def test_too_many_failing_points_stop_the_sweep_with_one_line(tmp_path):
    proc = run_cli(tmp_path, *FAILING_GRID, "max_failed_fraction=0.25", "executor=inline")
    assert proc.returncode == 3, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("migrc-sweep: stopped: 3 of 8 points failed") and "MemoryError" in last
    # inline runs batches in order, so exactly the three that tripped the limit are stored, as failed rows
    parts = store.part_files(tmp_path / "outputs" / "dataset", "ff")
    assert len(parts) == 3
    rows = pd.concat([pq.read_table(p).to_pandas() for p in parts])
    assert (rows["status"] == "failed").all() and rows["error"].str.contains("MemoryError").all()


def test_on_ray_the_limit_cancels_the_rest_and_a_loose_limit_lets_failures_be_rows(tmp_path):
    strict = run_cli(tmp_path, *FAILING_GRID, "max_failed_fraction=0", "executor=ray", "ray.num_cpus=1")
    assert strict.returncode == 3, strict.stderr
    assert "points failed, more than max_failed_fraction=0 allows" in strict.stderr
    assert len(store.part_files(tmp_path / "outputs" / "dataset", "ff")) < 8

    loose = run_cli(tmp_path, *FAILING_GRID, "executor=ray", "ray.num_cpus=1")   # default 1.0: never stop
    assert loose.returncode == 0, loose.stderr
    df = store.read_results(tmp_path / "outputs" / "dataset", "ff")
    assert df["point_id"].nunique() == 8 and (df["status"] == "failed").all()
