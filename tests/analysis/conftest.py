"""Session-scoped real datasets for the analysis tests (simulating is the slow part; tests only read)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from analysis_datasets import MAP_SEEDS, failed_row, params, simulated_rows, write_partition


@pytest.fixture(scope="session")
def map_dataset(tmp_path_factory) -> Path:
    """2 latencies x 2 pressures x 2 CPU counts x guest/bare metal, 3 seeds, plus one failed migrc row.

    point_id includes the seed here, so pairing has to go by config + seed.
    """
    root = tmp_path_factory.mktemp("map") / "dataset"
    points = [(params(memory__slow_latency_ns=lat, reclaim__extra_alloc_mib_per_s=pressure,
                      machine__num_cpus=cpus, machine__is_guest=guest), seed)
              for lat, pressure, cpus, guest, seed in itertools.product(
                  (90.0, 200.0), (0.0, 3.0), (8, 32), (True, False), MAP_SEEDS)]
    rows = simulated_rows(points, seed_in_point_id=True)
    # The failed run is a *fourth* seed of the first point's migrc: it must be ignored, leaving 3 seeds.
    extra = dict(next(r for r in rows if r["policy"] == "migrc"), seed=99, replicate=99)
    rows.append(failed_row(extra))
    write_partition(root, "test", rows)
    return root


@pytest.fixture(scope="session")
def sensitivity_dataset(tmp_path_factory) -> Path:
    """Read-only fraction x write fraction x THP fraction, 2 seeds; a single latency and pressure."""
    root = tmp_path_factory.mktemp("sens") / "dataset"
    points = [(params(workload__read_only_fraction=rof, workload__write_fraction=wf,
                      workload__large_folio_fraction=thp), seed)
              for rof, wf, thp, seed in itertools.product((0.9, 1.0), (0.0, 0.01), (0.0, 0.5), (0, 1))]
    write_partition(root, "test", simulated_rows(points, seed_in_point_id=False))
    return root


@pytest.fixture(scope="session")
def chromium() -> str:
    path = "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.skip("no /usr/bin/chromium (CI: apt-get update && apt-get install -y chromium)")
    return path
