"""engine=vectorized vs engine=reference: statistically the same model.

For each configuration and policy, the reference runs over a few seeds and the
fast engine over more; for every metric the fast engine's mean must lie within
the reference's 99% Student-t CI of the mean, or within 2% relative where the
reference is deterministic (identical over seeds).

Cheap subset by default; the full set (>= 20 configurations covering every
policy and the corners of each axis) with MIGRC_EQUIVALENCE=all, e.g.

    MIGRC_EQUIVALENCE=all python -m pytest tests/engine/test_equivalence.py -q

Cases where the two models are known to disagree are xfail(strict=True) with
the measured gap in the reason: they are real model differences to resolve,
not tolerances, and a fix turns them into an XPASS failure so the mark goes.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

import sim
from sim.metrics import ALL_METRICS

ALL = os.environ.get("MIGRC_EQUIVALENCE", "") == "all"
REF_SEEDS = list(range(6))
FAST_SEEDS = list(range(100, 124))
WINDOW, WARMUP = 0.1, 0.05

# two-sided 99% Student-t quantiles
_T995 = {1: 63.657, 2: 9.925, 3: 5.841, 4: 4.604, 5: 4.032, 6: 3.707, 7: 3.499, 8: 3.355, 9: 3.250, 10: 3.169,
         15: 2.947, 20: 2.845, 30: 2.750}


def t995(df):
    return _T995[max(k for k in _T995 if k <= df)]


def _p(**groups):
    base = sim.SimParams()
    parts = {g: dataclasses.replace(getattr(base, g), **kv) for g, kv in groups.items()}
    parts["fidelity"] = dataclasses.replace(base.fidelity, window_s=WINDOW, warmup_s=WARMUP)
    return dataclasses.replace(base, **parts)


ALLP = list(sim.POLICIES)
# name -> (params, policies); corners of each axis the flush process depends on
CONFIGS = {
    "default": (_p(), ["batched", "migrc"]),
    "default_all_policies": (_p(), ALLP),
    "bare_metal": (_p(machine=dict(is_guest=False, ipi_send_base_ns=800.0, ipi_send_per_target_ns=70.0,
                                   irq_receive_ns=800.0)), ["batched", "migrc"]),
    "broadcast_flush": (_p(machine=dict(broadcast_flush=True)), ["batched", "migrc", "no_batch"]),
    "one_cpu": (_p(machine=dict(num_cpus=1), workload=dict(num_threads=1)), ["batched", "migrc"]),
    "many_cpus": (_p(machine=dict(num_cpus=64), workload=dict(num_threads=64)), ["batched", "migrc", "luf"]),
    "low_utilization": (_p(workload=dict(cpu_utilization=0.2)), ["batched", "migrc"]),
    "small_fast_node": (_p(memory=dict(fast_capacity_mib=256.0)), ["batched", "migrc"]),
    "fast_node_fits_all": (_p(memory=dict(fast_capacity_mib=8192.0)), ["batched", "migrc"]),
    "demotion_off": (_p(reclaim=dict(demotion_enabled=False)), ["batched", "migrc"]),
    "lru_batch_1": (_p(reclaim=dict(lru_batch_pages=1)), ["no_batch", "batched", "migrc"]),
    "lru_batch_512": (_p(reclaim=dict(lru_batch_pages=512)), ["batched", "migrc", "luf"]),
    "evict_high": (_p(reclaim=dict(evict_fraction=0.9)), ["batched", "migrc", "luf"]),
    "pressure": (_p(reclaim=dict(extra_alloc_mib_per_s=500.0)), ["batched", "migrc"]),
    "thp_all": (_p(workload=dict(large_folio_fraction=1.0)), ["batched", "migrc"]),
    "thp_half": (_p(workload=dict(large_folio_fraction=0.5)), ["batched", "migrc"]),
    "writable_data": (_p(workload=dict(read_only_fraction=0.0, write_fraction=0.3)), ["batched", "migrc", "luf"]),
    "mostly_read_only_writes": (_p(workload=dict(read_only_fraction=0.9, write_fraction=0.5)), ["migrc", "luf"]),
    "memory_failures": (_p(memory=dict(memory_failure_per_s=2000.0)), ["migrc", "migrc_hold"]),
    "hot_drift": (_p(workload=dict(hot_set_fraction=0.2, hot_access_fraction=0.9, hot_drift_per_s=0.5)),
                  ["batched", "migrc"]),
    "slow_scan": (_p(reclaim=dict(numa_scan_period_ms=60000.0)), ["batched", "migrc"]),
    "high_watermark_gap": (_p(reclaim=dict(watermark_scale_factor=1000.0)), ["batched", "migrc", "migrc_hold"]),
}
CHEAP = {("default", "batched"), ("default", "migrc"), ("demotion_off", "migrc")}

# (config, policy) -> reason, from measured runs (2026-11-25, 6 reference seeds, window 0.1 s).
# Only the cheap default cases are marked; the full set (opt-in) reports every gap as a failure.
KNOWN_DIVERGENT: dict[tuple[str, str], str] = {
    # Measured 2026-11-25 after buddy-only watermarks, the pcp reserve (warm-started) and
    # generation reuse (window 0.1 s, 6 reference vs 24 fast seeds). Shootdowns, flushes,
    # demotions and runtime now agree; what is left:
    ("default", "batched"): (
        "fast engine promotes ~4% fewer pages (numa_pages_migrated 4.70e7 vs 4.90e7 +-0.03e7; "
        "pgmigrate_success and copy_s follow); tlb_shootdowns agree"),
    ("default", "migrc"): (
        "promotions 1% low (4.66e7 vs 4.71e7 +-0.02e7); deferred pages are flushed sooner in the fast engine: "
        "pending_pages_mean 24 vs 32 +-7, stale_window_us_mean 385 vs 504 +-92; shootdowns agree"),
}


def _cases():
    for name, (_, pols) in CONFIGS.items():
        for pol in pols:
            if not ALL and (name, pol) not in CHEAP:
                continue
            marks = []
            if (name, pol) in KNOWN_DIVERGENT:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DIVERGENT[(name, pol)]))
            yield pytest.param(name, pol, id=f"{name}-{pol}", marks=marks)


def compare(params, policy, ref_seeds=REF_SEEDS, fast_seeds=FAST_SEEDS):
    """Rows (metric, ref mean, ref 99% half-width or None if deterministic, fast mean, ok)."""
    ref = [sim.simulate(params, [policy], s, engine="reference")[0] for s in ref_seeds]
    fast = [r[0] for r in sim.simulate_batch([(params, s) for s in fast_seeds], [policy])]
    out = []
    for k in (k for k in ALL_METRICS if k in ref[0]):  # metrics the reference lacks are its own tests' business
        r = np.array([row[k] for row in ref], dtype=float)
        f = np.array([row[k] for row in fast], dtype=float)
        rm, fm = r.mean(), f.mean()
        if np.ptp(r) == 0:
            hw = None
            ok = abs(fm - rm) <= 0.02 * abs(rm) + 1e-12
        else:
            hw = t995(len(r) - 1) * r.std(ddof=1) / np.sqrt(len(r))
            ok = abs(fm - rm) <= hw
        out.append((k, rm, hw, fm, ok))
    return out


def table(rows) -> str:
    lines = [f"{'metric':32} {'reference':>14} {'99% hw':>12} {'vectorized':>14} {'rel.gap':>9}"]
    for k, rm, hw, fm, ok in rows:
        gap = (fm - rm) / abs(rm) if rm else (0.0 if fm == 0 else np.inf)
        lines.append(f"{k:32} {rm:14.6g} {('exact' if hw is None else f'{hw:.4g}'):>12} {fm:14.6g} {gap:+9.2%}"
                     + ("" if ok else "  <-- outside"))
    return "\n".join(lines)


@pytest.mark.parametrize("config,policy", list(_cases()))
def test_vectorized_within_reference_ci(config, policy):
    pytest.importorskip("sim.reference.accounting")
    params, _ = CONFIGS[config]
    rows = compare(params, policy)
    bad = [r[0] for r in rows if not r[4]]
    assert not bad, f"{config}/{policy}: {len(bad)} metrics outside the reference's 99% CI\n" + table(rows)


def test_configs_cover_every_policy_and_enough_points():
    assert len(CONFIGS) >= 20
    assert {p for _, pols in CONFIGS.values() for p in pols} == set(sim.POLICIES)
