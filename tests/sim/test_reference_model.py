"""Behaviour of the reference engine: contract, conservation, counter identities and directions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from reference_cases import SAFE, small

import sim
from sim.reference import run_model
from sim.reference.accounting import metrics_row
from sim.reference.workload import SLOW, SWAPPED


@pytest.fixture(scope="module")
def rows():
    return sim.simulate(small(), list(sim.POLICIES), seed=3, engine="reference")


def test_every_metric_for_every_policy(rows):
    assert [r["policy"] for r in rows] == list(sim.POLICIES)
    for r in rows:
        assert set(r) == {"policy", *sim.ALL_METRICS}
        for k in sim.ALL_METRICS:
            assert isinstance(r[k], float) and math.isfinite(r[k]), (r["policy"], k, r[k])
            assert r[k] >= 0, (r["policy"], k, r[k])


def test_checker_flags_only_the_unsafe_policy(rows):
    by = {r["policy"]: r for r in rows}
    for pol in SAFE:
        assert by[pol]["stale_read_violations"] == 0, pol
    assert by["no_flush"]["stale_read_violations"] > 0


@pytest.mark.parametrize("policy", ["batched", "migrc", "migrc_hold", "luf"])
def test_pages_and_frames_are_conserved(policy):
    m = run_model(small(reclaim=dict(evict_fraction=0.3)), policy, seed=1)
    free = [fr for lst in m.mem.pcp for fr in lst] + m.mem.buddy
    held = [fr for lst in [] for fr in lst]
    used = [int(m.loc[v]) for v in range(m.n_folios) if m.loc[v] >= 0 and m.size[v] == 1]
    used += [fr for fl in m.thp_frames.values() for fr in fl]
    used += list(m.other_frame.values())
    all_frames = free + used + held
    assert len(all_frames) == len(set(all_frames)), "a frame is in two places"
    in_flight = m.fast_pages - len(all_frames)          # isolated by a kswapd step at the window's end
    assert 0 <= in_flight <= m.lru_batch + m.held_pages
    on_lru = set(m.lru_hot) | set(m.lru_cold)
    fast = {v for v in range(m.n_folios) if m.loc[v] >= 0}
    assert fast - on_lru == set() or len(fast - on_lru) <= m.lru_batch
    assert ((m.loc >= 0) | (m.loc == SLOW) | (m.loc == SWAPPED)).all()


@pytest.mark.parametrize("policy", ["no_batch", "batched", "migrc", "luf"])
def test_shootdowns_received_equal_ipis_sent(policy):
    m = run_model(small(reclaim=dict(evict_fraction=0.2)), policy, seed=2)
    row, per_cpu = metrics_row(m)
    assert m.c.received.sum() == m.c.targets
    assert m.c.remote_flushes <= m.c.flushes
    assert m.c.targets <= m.c.remote_flushes * (len(m.mask) - 0)
    assert row["tlb_shootdowns"] == pytest.approx(per_cpu.sum())
    assert row["nr_tlb_remote_flush_received"] == pytest.approx(row["tlb_shootdowns"])
    assert (m.c.received[len(m.mask):] == 0).all(), "CPUs outside mm_cpumask got IPIs"


def _per_page(r):
    return r["tlb_shootdowns"] / max(r["pgdemote_kswapd"], 1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cfg", [dict(), dict(machine=dict(num_cpus=16), workload=dict(num_threads=16)),
                                 dict(memory=dict(fast_capacity_mib=64.0), machine=dict(num_cpus=16),
                                      reclaim=dict(numa_scan_size_mib=16.0))])
def test_migrc_never_sends_more_ipis_than_batched_on_common_numbers(seed, cfg):
    """Read-only data, so every batch is eligible. Normalised per demoted page: migrc's
    faster kswapd admits slightly more promotions, so raw counts can differ by that."""
    b, mg = sim.simulate(small(**cfg), ["batched", "migrc"], seed, engine="reference")
    assert _per_page(mg) <= _per_page(b) * 1.01


def test_mixed_batches_can_make_migrc_flush_more_than_batched():
    """A v9 property, not a model bug: the read-only part of a mixed batch is handed to
    migrc_ubc just before kswapd's own flush covers it, and generations retired by that
    piggyback are re-armed when the next batch reuses them; write faults and allocations
    in those windows flush again."""
    p = small(workload=dict(read_only_fraction=0.5, write_fraction=0.3))
    b, mg = sim.simulate(p, ["batched", "migrc"], 0, engine="reference")
    assert mg["deferred_flush_piggyback"] > 0 and mg["deferred_flush_write_fault"] > 0
    assert _per_page(mg) > _per_page(b)


def _ipis(params, policy, seeds=(0, 1)):
    """Shootdown IRQs per second of run (the run's length changes with the thread count)."""
    rs = [sim.simulate(params, [policy], s, engine="reference")[0] for s in seeds]
    return np.mean([r["tlb_shootdowns"] / r["runtime_s"] for r in rs])


def test_more_cpus_more_interrupts():
    few = _ipis(small(machine=dict(num_cpus=4), workload=dict(num_threads=4)), "batched")
    many = _ipis(small(machine=dict(num_cpus=16), workload=dict(num_threads=16)), "batched")
    assert many > 2 * few


def test_more_read_only_bigger_migrc_reduction():
    # a large fast node and slow promotions: freed pages sit in pcp/buddy long enough to matter
    def reduction(ro):
        p = small(memory=dict(fast_capacity_mib=64.0), workload=dict(read_only_fraction=ro, write_fraction=1.0),
                  machine=dict(num_cpus=16), reclaim=dict(numa_scan_size_mib=16.0))
        return 1 - _ipis(p, "migrc") / _ipis(p, "batched")
    assert reduction(1.0) > reduction(0.3) + 0.05


def test_write_faults_force_deferred_flushes():
    p = small(workload=dict(read_only_fraction=0.2, write_fraction=1.0))
    r = sim.simulate(p, ["migrc"], 0, engine="reference")[0]
    assert r["write_faults"] > 0 and r["deferred_flush_write_fault"] > 0
    ro = sim.simulate(small(), ["migrc"], 0, engine="reference")[0]
    assert ro["write_faults"] == 0 and ro["deferred_flush_write_fault"] == 0


def test_luf_defers_evictions_too():
    """With every reclaimed folio evicted, migrc has nothing to defer; LUF defers the read-only ones."""
    p = small(reclaim=dict(evict_fraction=1.0))
    mg, luf = sim.simulate(p, ["migrc", "luf"], 0, engine="reference")
    assert mg["pending_pages_peak"] == 0 and mg["pgdemote_kswapd"] == 0
    assert luf["pending_pages_peak"] > 0 and luf["deferred_flush_alloc"] > 0


def test_an_eviction_in_the_batch_flushes_the_deferred_demotions_at_once():
    """shrink_folio_list() unmaps its evictions before demote_folio_list(); their flush is
    migrate_pages_batch()'s, which retires migrc's pending batch straight away (piggyback)."""
    p = small(reclaim=dict(evict_fraction=0.5))
    b, mg = sim.simulate(p, ["batched", "migrc"], 0, engine="reference")
    assert mg["deferred_flush_piggyback"] > 5 * mg["deferred_flush_alloc"]
    assert mg["nr_tlb_remote_flush"] == pytest.approx(b["nr_tlb_remote_flush"], rel=0.15)


def test_migrc_hold_holds_memory_and_flushes_for_reclaim():
    r = sim.simulate(small(), ["migrc_hold", "migrc"], 0, engine="reference")
    hold, mg = r
    assert hold["held_mib_peak"] > 0 and hold["deferred_flush_reclaim"] > 0
    assert mg["held_mib_peak"] == 0 and mg["deferred_flush_reclaim"] == 0


def test_a_deferral_that_outlasts_the_window_sets_its_peaks():
    """Pages held through the whole window count in its peaks: with a wide watermark gap
    and slow scanning a quiet phase outlasts a short window, and the peaks read 0 while
    the means read the level held."""
    p = small(reclaim=dict(watermark_scale_factor=1000.0, numa_scan_period_ms=4000.0),
              fidelity=dict(window_s=0.01, warmup_s=0.03))
    rows = [sim.simulate(p, ["migrc_hold"], s, engine="reference")[0] for s in (0, 5, 9)]
    assert any(r["held_mib_mean"] > 0 for r in rows)
    for r in rows:
        assert r["pending_pages_peak"] >= r["pending_pages_mean"] > 0 or r["pending_pages_mean"] == 0
        assert r["held_mib_peak"] >= r["held_mib_mean"]


def test_thp_is_never_deferred():
    p = small(workload=dict(large_folio_fraction=1.0))
    b, mg = sim.simulate(p, ["batched", "migrc"], 0, engine="reference")
    assert mg["pending_pages_peak"] == 0 and mg["pgdemote_kswapd"] > 0
    assert mg["tlb_shootdowns"] == pytest.approx(b["tlb_shootdowns"], rel=0.3)


def test_memory_failures_force_deferred_flushes():
    p = small(memory=dict(memory_failure_per_s=2000.0))
    r = sim.simulate(p, ["migrc"], 0, engine="reference")[0]
    assert r["deferred_flush_memory_failure"] > 0


def test_no_migration_when_the_footprint_fits():
    r = sim.simulate(small(workload=dict(footprint_mib=8.0)), ["batched", "migrc"], 0, engine="reference")
    for row in r:
        assert row["pgmigrate_success"] == 0 and row["tlb_shootdowns"] == 0


def test_watermarks_see_buddy_pages_only_and_allocations_never_take_another_cpus_pcp():
    """NR_FREE_PAGES excludes pcp pages, and rmqueue_pcplist() only ever takes the local pcp:
    with buddy empty, an allocation drains every pcp into buddy (drain_all_pages()) and refills
    from there, instead of popping the head of another CPU's list."""
    from sim.reference.memory import FreeLists
    mem = FreeLists(num_frames=64, num_cpus=2, batch=4, high=16)
    for fr in range(10):
        mem.free_page(0, fr, gen=7 if fr >= 6 else 0)     # CPU0's pcp: 10 pages, pending ones on top
    assert mem.free == 0 and mem.free_frames == 10
    frame, mgen = mem.alloc_page(1)                        # CPU1: empty pcp, empty buddy
    assert mem.drains == 1 and not mem.pcp[0]
    assert (frame, mgen) == (9, 7)                         # drained tail first: CPU0's pcp head is the buddy head
    assert mem.free == 6 and mem.free_frames == 9 and sorted(mem.pcp[1]) == [6, 7, 8]
    for fr in range(20, 37):                               # 17 > high: one batch spills, tail first
        mem.free_page(0, fr)
    assert mem.buddy[-4:] == [20, 21, 22, 23] and mem.free == 10


def test_the_scanner_faults_each_thp_once_per_pass():
    """A scan chunk that starts no folio (it lies inside a THP) must select nothing: the
    scanner passes scan_size per period, so hint faults per second are bounded by the
    folios it passes, and promoted pages by the pages it passes."""
    p = small(workload=dict(large_folio_fraction=1.0))
    m = run_model(p, "batched", seed=0)
    scan_pages_per_s = m.scan_pages_per_s
    assert 0 < m.c.hint_faults / m.window <= 1.05 * scan_pages_per_s / 512
    assert 0 < m.c.promoted / m.window <= 1.05 * scan_pages_per_s


def test_hint_faults_armed_before_the_window_still_fire():
    """The scanner's last pass before the start left faults armed: when every page is
    touched within a scan cycle, the hint-fault rate is the scanner's, however long the
    first touch takes, even in a window shorter than that."""
    def rate(util):
        p = small(workload=dict(cpu_utilization=util), fidelity=dict(window_s=0.05, warmup_s=0.0))
        m = run_model(p, "batched", seed=0)
        assert m.lam.min() * m.cycle_s > 10          # P(touched within a cycle) ~ 1
        return m.c.hint_faults / m.window

    assert rate(0.01) == pytest.approx(rate(0.05), rel=0.1)
