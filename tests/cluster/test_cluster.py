"""Sweeps on a real two-node Ray cluster (two `ray start` on this machine), through the real CLI.

One module-scoped cluster serves every test here: starting one costs ~15 s on 2 cores.
Points are made slow on purpose (a long simulated window) so that a task can be caught running
and killed; the numbers they produce do not matter, only that they are complete and repeatable.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest

from local_cluster import LocalCluster
from migrc_sweep import store
from sim.metrics import ALL_METRICS

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 180.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(tmp_path_factory.mktemp("cluster"), num_nodes=2, cpus_per_node=1) as c:
        yield c


def cli_cmd(cluster: LocalCluster, *args: str) -> list[str]:
    return [sys.executable, "-m", "migrc_sweep", *args, f"ray.address={cluster.address}"]


def cli_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "RAY_ADDRESS")}
    env.update(MIGRC_SWEEP_OUTPUTS=str(tmp / "outputs"), MPLBACKEND="Agg", RAY_AUTH_MODE="disabled",
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return env


def run_cli(cluster: LocalCluster, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(cluster, *args), cwd=tmp, env=cli_env(tmp), capture_output=True, text=True,
                          timeout=WAIT_S)


def start_cli(cluster: LocalCluster, tmp: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(cli_cmd(cluster, *args), cwd=tmp, env=cli_env(tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def raw_rows(tmp: Path, sweep_id: str):
    """Every stored row, without read_results' de-duplication: duplicates must show up here."""
    root = tmp / "outputs" / "dataset"
    table = ds.dataset(store.partition_dir(root, sweep_id), format="parquet", schema=store.SCHEMA).to_table()
    return table.to_pandas().sort_values(["point_id", "policy"]).reset_index(drop=True)


def wait_for(predicate, what: str, proc: subprocess.Popen | None = None, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the sweep ended before {what}: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"no {what} within {timeout_s:.0f} s")


def grid(n_points: int, window_s: float, sweep_id: str, per_task: int) -> list[str]:
    return ["-m", f"machine.num_cpus=range(1,{n_points + 1})", "fidelity=tiny", f"fidelity.window_s={window_s}",
            f"ray.points_per_task={per_task}", f"sweep_id={sweep_id}"]


def test_a_sweep_on_an_existing_cluster_spreads_over_both_nodes(cluster, tmp_path):
    proc = run_cli(cluster, tmp_path, *grid(8, 300, "two", 1))
    assert proc.returncode == 0, proc.stderr
    assert f"Ray cluster at {cluster.address} (2 CPUs)" in proc.stderr
    df = raw_rows(tmp_path, "two")
    assert df["point_id"].nunique() == 8 and len(df) == 16
    assert df["ray_node_id"].nunique() == 2
    assert (df["attempt"] == 0).all()
    assert df["host"].notna().all() and df["git_commit"].notna().all() and (df["wall_s"] > 0).all()


def test_a_worker_killed_mid_sweep_is_retried_and_every_point_stored_once(cluster, tmp_path):
    proc = start_cli(cluster, tmp_path, *grid(12, 1000, "wk", 2))
    try:
        victim = wait_for(lambda: cluster.workers("ray::_remote_run"), "running batch task", proc)[0]
        victim.kill()
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    df = raw_rows(tmp_path, "wk")
    assert len(df) == 24 and not df.duplicated(["point_id", "policy"]).any()
    assert df["point_id"].nunique() == 12 and (df["status"] == "ok").all()
    assert df["attempt"].max() >= 1   # the retried batch says so in its rows


def test_a_killed_driver_leaves_a_dataset_the_rerun_completes_exactly(cluster, tmp_path):
    args = grid(16, 1000, "dk", 2)
    reference = tmp_path / "uninterrupted"
    reference.mkdir()
    ref = run_cli(cluster, reference, *args)
    assert ref.returncode == 0, ref.stderr

    part_dir = store.partition_dir(tmp_path / "outputs" / "dataset", "dk")
    proc = start_cli(cluster, tmp_path, *args)
    try:
        wait_for(lambda: len(list(part_dir.glob("part-*.parquet"))) >= 2, "two stored batches", proc)
        proc.kill()   # SIGKILL: no cleanup, no report, Ray's tasks of this job die with their owner
        proc.communicate(timeout=30)
    finally:
        proc.kill()

    rerun = run_cli(cluster, tmp_path, *args)
    assert rerun.returncode == 0, rerun.stderr
    present, to_run = map(int, re.search(r"requested 16 points, present (\d+), to run (\d+)", rerun.stdout).groups())
    assert 2 * 2 <= present < 16 and present + to_run == 16
    assert f"simulated {to_run} points" in rerun.stderr   # only the missing ones

    got, want = raw_rows(tmp_path, "dk"), raw_rows(reference, "dk")
    assert not got.duplicated(["point_id", "policy"]).any()
    assert got[["point_id", "policy", "seed"]].equals(want[["point_id", "policy", "seed"]])
    for metric in ALL_METRICS:   # bit-identical, whichever batch a point landed in
        assert np.array_equal(got[metric].to_numpy(), want[metric].to_numpy(), equal_nan=True), metric
