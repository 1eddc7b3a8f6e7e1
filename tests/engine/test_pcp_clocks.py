"""Other CPUs' pcp lists as clocks (sim/pcp_clocks.py): refills keep their mean rate, and
over a span shorter than a list's cycle they come far more evenly than Poisson events; a
quiet phase with THPs ends on whichever takes free memory below high first.
"""

import numpy as np

from sim.flush_layout import NUM_STREAMS
from sim.pcp_clocks import advance_clocks, quiet_refills, refill_events, start_clocks
from sim.rng import LaneRandom


def _spans(cpus, holders, batch, rate_per_s, span_s, n_spans, seed=3):
    """Refills in consecutive spans of one step each, free memory far above high."""
    rnd = LaneRandom(np.array([seed]), NUM_STREAMS)
    key, ctr = rnd.keys[0], rnd.counters
    due = np.empty(cpus - 1)
    start_clocks(key, ctr, 0, due, batch)
    clock = 0.0
    counts = np.empty(n_spans)
    for s in range(n_spans):
        _, refilled, _, _, _, clock = refill_events(key, ctr, 0, span_s, 1e9, 0.0, rate_per_s, rate_per_s, np.inf,
                                                    np.inf, batch, 0.0, due, clock, cpus - 1.0 - holders)
        counts[s] = refilled / batch
    return counts


def test_refills_keep_their_rate_and_come_evenly_over_a_cycle():
    # evict_high's sizes: 16 CPUs, a quarter of the others holding what kswapd left, 63-page
    # batches; a cycling CPU runs through its batch in cycling/rate = 2.25 ms, about a kswapd cycle
    rate = 5000.0
    cycle_s = (15 - 3.75) / rate
    counts = _spans(16, 3.75, 63.0, rate, cycle_s, 3000)
    mean = counts.mean()
    assert abs(mean - rate * cycle_s) < 4 * np.sqrt(rate * cycle_s / len(counts))
    # Poisson refills would give var/mean 1; lists that each run empty once a cycle leave
    # the holders' thinning (1 - 0.75) and the cycles' jitter
    assert counts.var() / mean < 0.45


def test_a_list_refills_about_once_a_cycle():
    # one other CPU, no holders: its refills come a Gamma(batch) of its allocations apart
    rate, batch = 1000.0, 63.0          # a refill every 1 ms on average
    counts = _spans(2, 0.0, batch, rate, 0.25e-3, 8000)
    gaps = np.diff(np.flatnonzero(counts)) * 0.25e-3
    assert abs(gaps.mean() - 1e-3) < 0.03e-3
    # Poisson gaps vary as much as their mean; a batch's worth of allocations, 1/sqrt(63)
    assert gaps.std() / gaps.mean() < 0.3


def test_advancing_the_clock_refills_each_list_once_a_batch():
    rnd = LaneRandom(np.array([5]), NUM_STREAMS)
    key, ctr = rnd.keys[0], rnd.counters
    due = np.empty(15)
    start_clocks(key, ctr, 0, due, 63.0)
    clock = advance_clocks(key, ctr, 0, due, 0.0, 15 * 63.0 * 200, 15.0, 63.0)
    assert clock == 63.0 * 200
    # every list is due again within a cycle or so of the clock, none behind it
    assert np.all(due > clock) and np.all(due < clock + 4 * 63.0)


def test_a_list_run_through_a_billion_cycles_is_a_few_draws():
    # with every other CPU a holder the phase's refills fall on almost none: the clock
    # jumps by a huge amount (before the jumps, two CPUs hung a sweep)
    rnd = LaneRandom(np.array([9]), NUM_STREAMS)
    key, ctr = rnd.keys[0], rnd.counters
    due = np.empty(1)
    start_clocks(key, ctr, 0, due, 63.0)
    clock = advance_clocks(key, ctr, 0, due, 0.0, 63e9, 1.0, 63.0)
    assert clock < due[0] < clock + 10 * 63.0
    assert rnd.counters.sum() < 500


def _quiet_phases(free, wake_at, small_per_s, thp_due, thp_gap, n, holders=5.0, cpus=16, batch=63.0, seed=11):
    """n quiet phases from the same level, the lists' clocks running on from one to the next."""
    rnd = LaneRandom(np.array([seed]), NUM_STREAMS)
    key, ctr = rnd.keys[0], rnd.counters
    due = np.empty(cpus - 1)
    start_clocks(key, ctr, 0, due, batch)
    clock = 0.0
    out = []
    for _ in range(n):
        woke, span, k, after, clock = quiet_refills(key, ctr, 0, free, wake_at, small_per_s / batch, thp_due,
                                                    thp_gap, batch, due, clock, cpus - 1.0 - holders)
        out.append((woke, span, k, after))
    return out


def test_a_quiet_phase_ends_on_a_whole_refill_or_a_thp():
    # thp_half's sizes: high 626, THPs every 15.6 ms, small allocations draining buddy at
    # 20 pages/ms. At that mean a phase from 900 pages would reach high at 13.7 ms, after
    # the THP due at 12 ms, which lands it 512 lower; a phase that refilled more than the
    # mean by then wakes kswapd on a refill instead.
    batch, gap = 63.0, 512.0 / 32768.0
    phases = _quiet_phases(900.0, 626.0, 20000.0, 0.012, gap, 400)
    for woke, span, k, after in phases:
        if woke:
            assert span == 0.012 + (k - 1.0) * gap and after < 626.0 <= after + 512.0
        else:
            refills = (900.0 - 512.0 * k - after) / batch
            assert refills == np.round(refills) and after < 626.0 <= after + batch
    by_thp = np.mean([p[0] for p in phases])
    assert 0.5 < by_thp < 0.95


def test_a_long_quiet_phase_refills_at_its_mean_rate():
    batch, small = 63.0, 20000.0
    (woke, span, k, after), = _quiet_phases(batch * 30000, 1.0, small, 1e9, 1e9, 1)
    assert not woke and k == 0
    # thinned by the holders, 30000 refills vary by 0.33%
    assert abs((batch * 30000 - after) / span / small - 1.0) < 0.02
