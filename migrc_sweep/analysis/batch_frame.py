"""Rows straight from `sim.simulate_batch`, shaped like a loaded dataset.

The notebook and the tests simulate in memory; giving those rows the dataset's
columns means every analysis function has one input shape to handle.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd

import sim
from sim.params import as_flat_dict

from .load import tidy


def point_id(flat_config: dict) -> str:
    """A stable id from the config alone, so replicates (different seeds) share it."""
    blob = json.dumps(flat_config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def batch_frame(points: list[tuple], results: list[list[dict]], sweep_id: str = "in-memory",
                engine: str = "vectorized") -> pd.DataFrame:
    """Tidy rows, one per point x policy, from `simulate_batch(points, ...)` and its results."""
    rows = []
    seeds_seen: dict[str, list[int]] = {}
    for (params, seed), per_policy in zip(points, results, strict=True):
        flat = as_flat_dict(params)
        pid = point_id(flat)
        replicate = len(seeds_seen.setdefault(pid, []))
        seeds_seen[pid].append(int(seed))
        for metrics in per_policy:
            rows.append({"sweep_id": sweep_id, "point_id": pid, "policy": metrics["policy"], "seed": int(seed),
                         "replicate": replicate, "status": "ok", "error": None, **flat, "engine": engine,
                         **{m: float(metrics[m]) for m in sim.ALL_METRICS},
                         "sim_version": sim.__version__})
    return tidy(pd.DataFrame(rows))
