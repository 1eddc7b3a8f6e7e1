"""Payoff numbers against a by-hand recomputation from the raw Parquet rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis_datasets import MAP_SEEDS, expected_payoff, params, read_raw, simulated_rows, write_partition
from migrc_sweep import seed_table
from migrc_sweep.analysis import (cost_attribution, load_dataset, pair_with_baseline, payoff, payoff_wide, price,
                                  seed_comparison)
from migrc_sweep.analysis.payoff import MEASURES, TIME_COMPONENTS
from migrc_sweep.analysis.student_t import t_critical


@pytest.mark.parametrize("dof, expected", [(1, 12.7062047), (2, 4.3026527), (4, 2.7764451), (30, 2.0422725)])
def test_t_critical_matches_tables(dof, expected):
    assert t_critical(0.95, dof) == pytest.approx(expected, abs=1e-5)


def test_pairs_by_config_and_seed_even_when_point_id_includes_the_seed(map_dataset):
    df = load_dataset(map_dataset)
    pairs = pair_with_baseline(df)
    # 16 configs x 3 seeds x 2 variants; the failed row of seed 99 has no partner and no metrics.
    assert len(pairs) == 16 * len(MAP_SEEDS) * 2
    assert set(pairs["seed"]) == set(MAP_SEEDS)
    assert (pairs["runtime_s_baseline"] > 0).all()


def test_payoff_equals_recomputation_from_raw_rows(map_dataset):
    raw = read_raw(map_dataset)
    long = payoff(load_dataset(map_dataset))
    axes = ["memory.slow_latency_ns", "reclaim.extra_alloc_mib_per_s", "machine.num_cpus", "machine.is_guest"]
    checked = 0
    for _, row in long.iterrows():
        metric, kind = MEASURES[row["measure"]]
        config = {a: row[a] for a in axes}
        n, mean, lo, hi = expected_payoff(raw, config, row["policy"], metric, kind)
        assert row["n_seeds"] == n == len(MAP_SEEDS)
        assert row["mean_pct"] == pytest.approx(mean, rel=1e-9, abs=1e-9)
        assert row["ci_low_pct"] == pytest.approx(lo, rel=1e-6, abs=1e-7)
        assert row["ci_high_pct"] == pytest.approx(hi, rel=1e-6, abs=1e-7)
        assert row["ci_low_pct"] <= row["mean_pct"] <= row["ci_high_pct"]
        checked += 1
    assert checked == 16 * 2 * len(MEASURES)


def test_one_replicate_gives_nan_interval(tmp_path):
    root = tmp_path / "ds"
    write_partition(root, "one", simulated_rows([(params(), 7)], seed_in_point_id=False))
    long = payoff(load_dataset(root))
    assert (long["n_seeds"] == 1).all()
    assert long["ci_low_pct"].isna().all() and long["ci_high_pct"].isna().all()
    assert long["mean_pct"].notna().all()
    wide = payoff_wide(long)
    assert len(wide) == 2 and wide["runtime_change_pct_ci_low"].isna().all()


def test_migrc_at_the_seed_point_cuts_shootdowns_and_runtime(map_dataset):
    """The simulator's story at the seed's config: most shootdowns gone, a few % faster, CI excluding 0."""
    long = payoff(load_dataset(map_dataset))
    at = long[(long["policy"] == "migrc") & (long["machine.is_guest"]) & (long["reclaim.extra_alloc_mib_per_s"] == 0)]
    runtime = at[at["measure"] == "runtime_change_pct"]
    assert (runtime["ci_high_pct"] < 0).all()
    assert (at[at["measure"] == "shootdowns_reduction_pct"]["mean_pct"] > 50).all()


def test_seed_comparison_sides(map_dataset):
    raw = read_raw(map_dataset)
    cmp = seed_comparison(load_dataset(map_dataset))
    assert list(cmp["metric"]) == list(seed_table.MEASURED)
    for _, row in cmp.iterrows():
        assert row["measured_change_pct"] == pytest.approx(seed_table.change_pct(row["metric"]))
        config = {k: row[k] for k in ("memory.slow_latency_ns", "reclaim.extra_alloc_mib_per_s",
                                      "machine.num_cpus", "machine.is_guest")}
        n, mean, lo, hi = expected_payoff(raw, config, "migrc", row["metric"], "change")
        assert row["simulated_change_pct"] == pytest.approx(mean, rel=1e-9)
    # Closest to the seed (a guest, no extra reclaim pressure), as the seed's own run was.
    assert bool(cmp["machine.is_guest"].iloc[0]) and cmp["reclaim.extra_alloc_mib_per_s"].iloc[0] == 0.0


def test_cost_components_add_up_to_runtime_saved(map_dataset):
    costs = cost_attribution(load_dataset(map_dataset))
    keys = [c for c in costs.columns if c not in ("component", "saved_s")]
    total = costs.groupby(keys, observed=True)["saved_s"].sum().reset_index()
    assert set(costs["component"]) == set(TIME_COMPONENTS)
    np.testing.assert_allclose(total["saved_s"], total["runtime_saved_s"], rtol=1e-6, atol=1e-6)


def test_price_is_the_mean_over_seeds_of_raw_rows(map_dataset):
    raw = read_raw(map_dataset)
    pr = price(load_dataset(map_dataset))
    row = pr[(pr["policy"] == "migrc_hold") & (pr["metric"] == "held_mib_mean")].iloc[0]
    config = {k: row[k] for k in ("memory.slow_latency_ns", "reclaim.extra_alloc_mib_per_s", "machine.num_cpus",
                                  "machine.is_guest")}
    values = [r["held_mib_mean"] for r in raw if r["policy"] == "migrc_hold" and r["status"] == "ok"
              and all(r[k] == v for k, v in config.items())]
    assert row["n_seeds"] == len(values) == len(MAP_SEEDS)
    assert row["value"] == pytest.approx(math.fsum(values) / len(values))


def test_wide_table_of_several_sweeps_invents_no_points(tmp_path):
    """Each sweep ran a different CPU count; a cartesian product of index levels would add empty points."""
    root = tmp_path / "ds"
    write_partition(root, "3", simulated_rows([(params(machine__num_cpus=8), s) for s in (0, 1)], False))
    write_partition(root, "12", simulated_rows([(params(machine__num_cpus=32), s) for s in (0, 1)], False))
    wide = payoff_wide(payoff(load_dataset(root)))
    assert len(wide) == 2 * 2  # 2 sweeps x 1 point x 2 variants
    assert list(wide["sweep_id"].astype(str).drop_duplicates()) == ["3", "12"]
    assert dict(zip(wide["sweep_id"].astype(str), wide["machine.num_cpus"])) == {"3": 8, "12": 32}
    assert wide["runtime_change_pct_ci_low"].notna().all()  # two seeds: a finite interval
