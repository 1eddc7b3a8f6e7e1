"""Real datasets for the analysis tests: `sim.simulate_batch` output written as hive-partitioned Parquet.

Rows are built here, not with migrc_sweep.analysis, so a loader or pairing bug
cannot hide behind a fixture that shares it. Also: an independent recomputation
of the payoff from raw rows, the yardstick of the table tests.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import sim
from sim.params import as_flat_dict, build_params

WINDOW_S = 0.1  # shortest window whose payoffs keep their sign; keeps the whole suite well under a minute
POLICIES = ("batched", "migrc", "migrc_hold")
MAP_SEEDS = (0, 1, 2)
T_975 = {2: 12.706204736174704, 3: 4.302652729749464}  # two-sided 95% t critical values, dof = n - 1


def params(**overrides):
    groups = {"fidelity": {"window_s": WINDOW_S}}
    for key, value in overrides.items():
        group, _, name = key.partition("__")
        groups.setdefault(group, {})[name] = value
    return build_params(groups)


def simulated_rows(points, seed_in_point_id: bool, start: dt.datetime | None = None,
                   policies=POLICIES) -> list[dict]:
    """One row per point x policy, as the store writes them (subset of its provenance columns)."""
    results = sim.simulate_batch(points, policies)
    start = start or dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc)
    rows, ids = [], {}
    for n, ((p, seed), per_policy) in enumerate(zip(points, results)):
        flat = as_flat_dict(p)
        config_id = ids.setdefault(tuple(sorted(flat.items())), f"p{len(ids)}")
        for metrics in per_policy:
            rows.append({"point_id": f"{config_id}-s{seed}" if seed_in_point_id else config_id,
                         "policy": metrics["policy"], "seed": seed, "replicate": seed, "status": "ok",
                         "error": None, **flat, "engine": "vectorized",
                         **{m: float(metrics[m]) for m in sim.ALL_METRICS},
                         "sim_version": sim.__version__, "git_commit": "0" * 40, "git_dirty": False,
                         "host": "test-host", "finished_at": start + dt.timedelta(seconds=n)})
    return rows


def write_partition(root: Path, sweep_id: str, rows: list[dict], name: str = "part-0.parquet") -> Path:
    directory = root / f"sweep_id={sweep_id}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def failed_row(like: dict) -> dict:
    """A variant row that failed: same point and seed, metrics null, so pairing must skip it."""
    row = {k: (None if k in sim.ALL_METRICS else v) for k, v in like.items()}
    row.update(status="failed", error="ParamError: synthetic failure for the test")
    return row




def read_raw(root: Path) -> list[dict]:
    """Raw rows straight from the Parquet files, with the partition value taken from the directory name."""
    rows = []
    for path in sorted(Path(root).glob("sweep_id=*/*.parquet")):
        sweep = path.parent.name.split("=", 1)[1]
        rows += [dict(r, sweep_id=sweep) for r in pq.read_table(path).to_pylist()]
    return rows


def expected_payoff(rows: list[dict], config: dict, policy: str, metric: str, kind: str,
                    baseline: str = "batched") -> tuple[int, float, float, float]:
    """(n, mean %, ci low %, ci high %) recomputed by hand from raw rows matching `config` (override keys)."""
    import math
    import statistics

    def matches(r):
        return r["status"] == "ok" and all(r[k] == v for k, v in config.items())

    base = {r["seed"]: r[metric] for r in rows if matches(r) and r["policy"] == baseline}
    var = {r["seed"]: r[metric] for r in rows if matches(r) and r["policy"] == policy}
    ratios = [var[s] / base[s] for s in sorted(var) if s in base and base[s] != 0]
    n = len(ratios)
    mean = statistics.fmean(ratios)
    half = T_975[n] * statistics.stdev(ratios) / math.sqrt(n) if n > 1 else math.nan
    if kind == "change":
        return n, 100 * (mean - 1), 100 * (mean - half - 1), 100 * (mean + half - 1)
    return n, 100 * (1 - mean), 100 * (1 - mean - half), 100 * (1 - mean + half)
