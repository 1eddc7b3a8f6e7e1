"""Batches in-process: failures become rows, files land atomically under deterministic names."""

from __future__ import annotations

import pyarrow.parquet as pq

from migrc_sweep import store
from migrc_sweep.cli import plain, run
from migrc_sweep.points import build_plan
from migrc_sweep.sweep import make_batches
from migrc_sweep.tasks import Batch, run_batch


def _smoke_plan(compose_config, tmp_path, *extra):
    cfg = compose_config(["experiment=smoke", "executor=inline", f"store.root={tmp_path / 'ds'}",
                          f"store.figures={tmp_path / 'fig'}", *extra])
    return cfg, build_plan([plain(cfg)])


def test_run_cfg_inline_then_resume_skips_everything(compose_config, tmp_path, capsys):
    cfg, _ = _smoke_plan(compose_config, tmp_path, "replicates=2")
    first = run(cfg)
    assert (first.requested_points, first.run_points, first.failed_rows) == (2, 2, 0)
    df = store.read_results(tmp_path / "ds", "smoke")
    assert len(df) == 4 and sorted(df["seed"].unique()) == [0, 1]
    second = run(cfg)
    assert (second.present_points, second.run_points) == (2, 0)
    assert "present 2, to run 0" in capsys.readouterr().out


def test_point_ids_are_content_hashes(compose_config, tmp_path):
    _, a = _smoke_plan(compose_config, tmp_path)
    _, b = _smoke_plan(compose_config, tmp_path)
    _, c = _smoke_plan(compose_config, tmp_path, "machine.num_cpus=5")
    assert a.points[0].point_id == b.points[0].point_id != c.points[0].point_id


def test_a_point_that_raises_becomes_a_failed_row(compose_config, tmp_path):
    _, plan = _smoke_plan(compose_config, tmp_path)
    good = make_batches(plan.points, plan, "fail")[0]
    # A policy sim does not know makes the simulator itself raise, for real.
    bad = Batch(**{**good.__dict__, "policies": ("no_such_policy",), "batch_id": "b" * 20})
    summary = run_batch(bad)
    assert summary.num_failed == 1
    row = pq.read_table(summary.path).to_pylist()[0]
    assert row["status"] == "failed" and row["error"] and "\n" not in row["error"]


def test_files_are_deterministic_atomic_and_schema_declared(compose_config, tmp_path):
    _, plan = _smoke_plan(compose_config, tmp_path)
    batch = make_batches(plan.points, plan, "det")[0]
    first = run_batch(batch).path
    second = run_batch(batch).path
    assert first == second  # a retried batch replaces its own file
    files = list((tmp_path / "ds").rglob("*"))
    assert [f.name for f in files if f.is_file()] == [f"part-{batch.batch_id}.parquet"]
    assert list(store.staging_dir(tmp_path / "ds").iterdir()) == []
    assert pq.read_schema(first).remove_metadata() == store.SCHEMA.remove_metadata()


def test_every_row_carries_its_provenance(compose_config, tmp_path):
    _, plan = _smoke_plan(compose_config, tmp_path)
    batch = make_batches(plan.points, plan, "prov")[0]
    row = pq.read_table(run_batch(batch, ray_node_id="n" * 56, attempt=2).path).to_pylist()[0]
    for col in ("point_id", "seed", "sim_version", "package_versions", "git_commit", "git_dirty", "host",
                "ray_node_id", "attempt", "batch_id", "wall_s", "finished_at"):
        assert row[col] is not None, col
    assert row["attempt"] == 2 and row["ray_node_id"] == "n" * 56 and row["wall_s"] > 0
    assert pq.read_schema(run_batch(batch).path).metadata[b"migrc_sweep.schema_version"] == store.SCHEMA_VERSION.encode()


def test_cached_group_validation_gives_sims_own_params_and_ids(compose_config, tmp_path):
    from migrc_sweep.points import point_id, sim_version
    from sim.params import GROUPS, as_flat_dict, build_params
    cfgs = [plain(compose_config(["experiment=smoke", f"store.root={tmp_path}", f"machine.num_cpus={n}",
                                  "machine.is_guest=false" if n % 2 else "machine.is_guest=true"]))
            for n in (1, 2, 3, 1)]
    plan = build_plan(cfgs)
    assert [p.params.machine.num_cpus for p in plan.points] == [1, 2, 3]   # the repeated point runs once
    for p, cfg in zip(plan.points, cfgs):
        assert p.params == build_params({g: cfg[g] for g in GROUPS})   # sim's own builder agrees
        assert p.flat == as_flat_dict(p.params)
        assert p.point_id == point_id(p.params, p.engine, p.seed, sim_version())
