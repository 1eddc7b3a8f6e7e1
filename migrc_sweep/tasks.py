"""The unit of work a Ray task runs: simulate a batch of points, write one Parquet file.

This is the sweep engine's only caller of `sim` (calibrate, whatif and the frontier
finder call it in-process for their own small runs). It knows nothing about Ray: the executor
passes in the node id, and the same function runs inline in tests and laptops.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import sim
from sim.metrics import ALL_METRICS

from migrc_sweep import provenance, store
from migrc_sweep.points import Point


@dataclass(frozen=True)
class Batch:
    batch_id: str
    sweep_id: str
    engine: str
    policies: tuple[str, ...]
    points: tuple[Point, ...]
    store_root: str
    sim_version: str
    git_commit: str | None
    git_dirty: bool | None
    package_versions: str


@dataclass(frozen=True)
class BatchSummary:
    batch_id: str
    num_points: int
    num_rows: int
    num_failed: int
    path: str
    wall_s: float
    ray_node_id: str | None
    attempt: int = 0
    num_failed_points: int = 0
    first_error: str | None = None   # one line, for a fail-fast message


def batch_id(sweep_id: str, engine: str, policies: tuple[str, ...], points: tuple[Point, ...]) -> str:
    """Deterministic: a retried or re-run batch overwrites its own file."""
    h = hashlib.sha256(f"{sweep_id}|{engine}|{','.join(policies)}|".encode())
    for p in points:
        h.update(p.point_id.encode())
    return h.hexdigest()[:20]


def _one_line(ex: BaseException) -> str:
    text = " ".join(str(ex).split())
    return f"{type(ex).__name__}: {text}"[:2000]


def _check(results: list[dict], policies: tuple[str, ...]) -> None:
    if len(results) != len(policies):
        raise ValueError(f"sim returned {len(results)} results for {len(policies)} policies")
    for res, pol in zip(results, policies):
        if res.get("policy") != pol:
            raise ValueError(f"sim returned policy {res.get('policy')!r} where {pol!r} was asked for")
        missing = [m for m in ALL_METRICS if m not in res]
        if missing:
            raise ValueError(f"sim result for {pol} lacks metrics {missing[:3]}")


def _simulate(batch: Batch) -> list[list[dict] | BaseException]:
    """Per point: its results, or the exception that point raised (failures are data)."""
    policies = list(batch.policies)
    try:
        out = sim.simulate_batch([(p.params, p.seed) for p in batch.points], policies, engine=batch.engine)
        if len(out) != len(batch.points):
            raise ValueError(f"sim returned {len(out)} points for {len(batch.points)}")
        for res in out:
            _check(res, batch.policies)
        return list(out)
    except Exception:
        # One bad point must not sink its batch-mates: isolate it by running points one by one.
        isolated: list[list[dict] | BaseException] = []
        for p in batch.points:
            try:
                res = sim.simulate(p.params, policies, p.seed, engine=batch.engine)
                _check(res, batch.policies)
                isolated.append(res)
            except Exception as ex:  # noqa: BLE001 - recorded as a failed row
                isolated.append(ex)
        return isolated


Simulate = Callable[[Batch], "list[list[dict] | BaseException]"]


def run_batch(batch: Batch, ray_node_id: str | None = None, attempt: int = 0,
              simulate: Simulate = _simulate) -> BatchSummary:
    """attempt: 0 for the first try; the executor passes Ray's retry number after a worker died.
    simulate: the engine call; benchmarks/bench_orchestration.py passes a trivial one to time
    everything around the engine (rows, Parquet, Ray) on its own."""
    start = time.perf_counter()
    outcomes = simulate(batch)
    wall_s = time.perf_counter() - start
    finished_at = datetime.now(timezone.utc)
    host = provenance.host()
    rows, failed = [], 0
    errors = [_one_line(o) for o in outcomes if isinstance(o, BaseException)]
    for point, outcome in zip(batch.points, outcomes):
        base = {"point_id": point.point_id, "seed": point.seed, "replicate": point.replicate,
                "engine": batch.engine, **point.flat_params(),
                "sim_version": batch.sim_version, "package_versions": batch.package_versions,
                "git_commit": batch.git_commit, "git_dirty": batch.git_dirty, "host": host,
                "ray_node_id": ray_node_id, "attempt": attempt, "batch_id": batch.batch_id,
                "wall_s": wall_s / len(batch.points), "finished_at": finished_at}
        for i, policy in enumerate(batch.policies):
            if isinstance(outcome, BaseException):
                failed += 1
                rows.append({**base, "policy": policy, "status": "failed", "error": _one_line(outcome),
                             **{m: math.nan for m in ALL_METRICS}})
            else:
                res = outcome[i]
                rows.append({**base, "policy": policy, "status": "ok", "error": None,
                             **{m: float(res[m]) for m in ALL_METRICS}})
    path = store.write_rows(Path(batch.store_root), batch.sweep_id, batch.batch_id, rows)
    return BatchSummary(batch.batch_id, len(batch.points), len(rows), failed, str(path), wall_s, ray_node_id, attempt,
                        len(errors), errors[0] if errors else None)
