"""The real CLI in a subprocess: default job, multirun, resume, help, and refusals."""

from __future__ import annotations


import pandas as pd
import pyarrow.dataset as ds
import pytest

from cli_process import run_cli
from migrc_sweep import store
from sim.metrics import ALL_METRICS
from sim.params import as_flat_dict, SimParams

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_job(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("default_job")
    proc = run_cli(tmp)
    assert proc.returncode == 0, proc.stderr
    return tmp, proc


def test_default_job_writes_rows_table_and_figure(default_job):
    tmp, proc = default_job
    df = store.read_results(tmp / "outputs" / "dataset")
    assert len(df) >= 16
    assert set(df["policy"]) == {"batched", "migrc"}
    assert (df["status"] == "ok").all()
    assert df["point_id"].nunique() * 2 == len(df)
    png = tmp / "outputs" / "figures" / "default" / "payoff.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "runtime change %" in proc.stdout and "shootdowns cut %" in proc.stdout


def test_results_contract_columns(default_job):
    tmp, _ = default_job
    df = store.read_results(tmp / "outputs" / "dataset")
    wanted = {"point_id", "policy", "seed", "status", "error", "engine", "sweep_id", "sim_version",
              "git_commit", "host", "wall_s", *as_flat_dict(SimParams()), *ALL_METRICS}
    assert wanted <= set(df.columns)
    assert df["machine.num_cpus"].dtype.kind == "i"


def test_dataset_reads_with_four_readers(default_job):
    tmp, _ = default_job
    root = tmp / "outputs" / "dataset"
    n = ds.dataset(root, format="parquet", partitioning="hive").count_rows()
    assert n >= 16
    assert len(pd.read_parquet(root)) == n
    import polars as pl
    assert pl.scan_parquet(str(root / "**" / "*.parquet"), hive_partitioning=True).collect().height == n
    import duckdb
    q = f"select count(*), count(distinct sweep_id) from read_parquet('{root}/**/*.parquet', hive_partitioning=true)"
    assert duckdb.sql(q).fetchall() == [(n, 1)]


def test_rerun_computes_nothing_and_dry_run_only_plans(default_job):
    tmp, _ = default_job
    files = sorted((tmp / "outputs" / "dataset").rglob("*.parquet"))
    again = run_cli(tmp, "dry_run=true")
    assert again.returncode == 0, again.stderr
    assert "requested 8 points, present 8, to run 0" in again.stdout
    assert sorted((tmp / "outputs" / "dataset").rglob("*.parquet")) == files


def test_multirun_from_the_command_line(tmp_path):
    proc = run_cli(tmp_path, "-m", "workload=xsbench,thp", "machine.num_cpus=4,16", "fidelity=tiny")
    assert proc.returncode == 0, proc.stderr
    df = store.read_results(tmp_path / "outputs" / "dataset")
    # exactly the 2x2 grid given, not crossed with the default named grid
    assert df["point_id"].nunique() == 4
    assert sorted(df["machine.num_cpus"].unique()) == [4, 16]
    assert sorted(df["workload.large_folio_fraction"].unique()) == [0.0, 0.9]
    assert df["sweep_id"].str.startswith("adhoc-").all()
    assert not (tmp_path / "multirun").exists()


def test_single_run_experiment(tmp_path):
    proc = run_cli(tmp_path, "experiment=smoke")
    assert proc.returncode == 0, proc.stderr
    df = store.read_results(tmp_path / "outputs" / "dataset")
    assert list(df["sweep_id"].unique()) == ["smoke"] and len(df) == 2


def test_help_lists_config_groups(tmp_path):
    proc = run_cli(tmp_path, "--help")
    assert proc.returncode == 0
    for group in ("machine", "memory", "reclaim", "workload", "policy", "sweep", "experiment", "fidelity"):
        assert f"{group}:" in proc.stdout


def test_cfg_job_prints_composed_config(tmp_path):
    proc = run_cli(tmp_path, "--cfg", "job", "machine=bare_metal")
    assert proc.returncode == 0
    assert "is_guest: false" in proc.stdout and "policy:" in proc.stdout
    assert not (tmp_path / "outputs").exists()


# One entry per kind of bad input; each must be refused with one line before anything runs.
BAD = [
    (["memory=nope"], "memory/nope"),                                   # unknown group option
    (["sweep=nope"], "sweep/nope"),                                     # unknown named grid
    (["machine.bogus_ns=1"], "machine.bogus_ns"),                       # unknown key (a typo)
    (["+machine.bogus_ns=1"], "machine.bogus_ns"),                      # unknown key, forced in with +
    (["+bogus=1"], "bogus"),                                            # unknown top-level key
    (["machine.num_cpus=many"], "machine.num_cpus='many'"),             # wrong type
    (["machine.ipi_send_base_ns=nan"], "machine.ipi_send_base_ns=nan"), # NaN
    (["machine.num_cpus=0"], "machine.num_cpus=0"),                     # zero count
    (["replicates=0"], "replicates=0"),                                 # zero count (orchestration)
    (["memory.slow_latency_ns=-5"], "memory.slow_latency_ns=-5"),       # negative latency
    (["memory.fast_capacity_mib=0"], "memory.fast_capacity_mib=0"),     # capacity
    (["workload.footprint_mib=1e9"], "workload.footprint_mib"),         # does not fit in memory
    (["workload.write_fraction=1.5"], "workload.write_fraction=1.5"),   # fraction outside [0, 1]
    (["max_failed_fraction=-0.1"], "max_failed_fraction=-0.1"),         # fraction outside [0, 1]
    (["-m", "machine.num_cpus=range(0,0)"], "machine.num_cpus"),        # empty grid
    (["-m", "machine.num_cpus=4,0"], "machine.num_cpus=0"),             # one bad point in a grid
    (["max_points=3"], "max_points=3"),                                 # the default grid is bigger
    (["-m", "machine.num_cpus=1,2,3", "max_points=2"], "max_points=2"), # an ad-hoc grid beyond max_points
    (["policy.variants=[migrc,bogus]"], "'bogus'"),                     # unknown policy
    (["policy.baseline=bogus"], "policy.baseline='bogus'"),             # unknown baseline policy
    (["engine=gpu"], "engine='gpu'"),                                   # unknown engine
    (["sweep_id=.hidden"], "sweep_id='.hidden'"),                       # bad sweep_id
    (["ray.address=not an address"], "ray.address='not an address'"),   # bad ray.address
    (["ray.address=host:99999"], "ray.address='host:99999'"),           # port out of range
    (["executor=gpu"], "executor='gpu'"),                               # bad executor
    (["ray.points_per_task=0"], "ray.points_per_task=0"),               # zero batch size
    (["seed=-1"], "seed=-1"),                                           # negative seed
    (["dry_run=maybe"], "dry_run='maybe'"),                             # not a bool
]


def test_at_least_fifteen_kinds_of_bad_input_are_covered():
    assert len({names for _, names in BAD}) >= 15


@pytest.mark.parametrize("args, names", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, names):
    proc = run_cli(tmp_path, *args, timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert names in lines[0]
    assert "To append" not in lines[0] and "HYDRA_FULL_ERROR" not in lines[0]
    assert list(tmp_path.iterdir()) == []   # no dataset, no Ray dirs, no Hydra dirs


def test_default_job_reports_progress_with_failures_running_and_an_eta(default_job):
    _, proc = default_job
    lines = [ln for ln in proc.stderr.splitlines() if "points done" in ln]
    assert lines, proc.stderr
    assert all("failed" in ln and "running" in ln and "ETA" in ln for ln in lines)
    assert "8/8 points done, 0 failed" in lines[-1] and lines[-1].endswith("ETA 0 s")
