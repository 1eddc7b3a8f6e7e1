"""The CPUs' pcp lists as clocks (sim/pcp_clocks.py): refills keep their mean rate, and
over a span shorter than a list's cycle they come far more evenly than Poisson events;
a list holding what kswapd left refills nothing until that is gone, and kswapd's own is
frozen; a quiet phase ends on whichever takes free memory below high first, and one cut
short stands where the same walk's refills had left it.
"""

import numpy as np

from sim.flush_events import leave_list, old_list_rate
from sim.flush_layout import (NUM_STREAMS, P_K_MIXED, P_KCPU, P_OLD, P_OLD2, P_OLD2_CPU, P_PCP, P_SIZE, W_HIT_CLEAN,
                              W_HIT_J, W_HIT_TAGS, W_T_SP, WALK_SIZE, _S_CLOCK)
from sim.pcp_clocks import list_due, quiet_refills, refill_events, start_clocks, walk_start
from sim.scan_pattern import PROFILE_BINS
from sim.rng import LaneRandom


def _lists(cpus, batch, seed, high=0.0):
    rnd = LaneRandom(np.array([seed]), NUM_STREAMS)
    key, ctr = rnd.keys[0], rnd.counters
    due = np.empty(cpus)
    start_clocks(key, ctr, 0, due, batch, high)
    return key, ctr, due


FLAT = np.ones(PROFILE_BINS)     # no THPs: small promotions at a steady rate


def _walk(cover=0.0, tags=0.0, gap=1.0, sp_at=np.inf):
    w = np.empty(WALK_SIZE)
    walk_start(w, cover, tags, gap, sp_at)
    return w


def _spans(cpus, batch, speed, span_s, n_spans, seed=3, due_fn=None):
    """Refills in consecutive spans of one step each, free memory far above high."""
    key, ctr, due = _lists(cpus, batch, seed)
    if due_fn is not None:
        due_fn(due)
    clock = 0.0
    counts = np.empty(n_spans)
    w = _walk()
    for s in range(n_spans):
        _, refilled, _, _, _, clock = refill_events(key, ctr, 0, span_s, 1e9, 0.0, speed, speed, np.inf, np.inf,
                                                    FLAT, batch, 0.0, due, clock, w)
        counts[s] = refilled / batch
    return counts


def test_refills_keep_their_rate_and_come_evenly_over_a_cycle():
    # evict_high's sizes: 15 lists cycling, 63-page batches; a list runs through its batch
    # in 63 / speed = 2.25 ms, about a kswapd cycle
    speed, batch = 28000.0, 63.0
    cycle_s = batch / speed
    counts = _spans(15, batch, speed, cycle_s, 3000)
    expect = 15 * speed / batch * cycle_s
    assert abs(counts.mean() - expect) < 4 * np.sqrt(expect / len(counts))
    # Poisson refills would give var/mean 1; lists that each run empty once a cycle leave
    # only their cycles' jitter
    assert counts.var() / counts.mean() < 0.3


def test_a_list_refills_about_once_a_cycle():
    # one list: its refills come a Gamma(batch) of its allocations apart
    speed, batch = 63000.0, 63.0          # a refill every 1 ms on average
    counts = _spans(1, batch, speed, 0.25e-3, 8000)
    gaps = np.diff(np.flatnonzero(counts)) * 0.25e-3
    assert abs(gaps.mean() - 1e-3) < 0.03e-3
    # Poisson gaps vary as much as their mean; a batch's worth of allocations, 1/sqrt(63)
    assert gaps.std() / gaps.mean() < 0.3


def test_lists_holding_kswapds_pages_and_kswapds_own_refill_nothing():
    speed, batch, span_s = 10000.0, 15.0, 1e-3          # each list makes 10 allocations a span

    def hold_and_freeze(due):
        due[:4] += 60.0 * batch        # pages kswapd left: 60 batches' worth, 90 spans of pops
        due[4] = np.inf                 # kswapd runs on this CPU: its thread is preempted

    counts = _spans(16, batch, speed, span_s, 80, due_fn=hold_and_freeze)
    # only the 11 others cycle: 11 * 10 / 15 refills a span
    assert abs(counts.mean() - 11 * speed * span_s / batch) < 0.5


def test_a_list_holding_pages_runs_empty_after_about_that_many_allocations():
    rnd = LaneRandom(np.array([4]), NUM_STREAMS)
    key, ctr = rnd.keys[0], rnd.counters
    runs = np.array([list_due(key, ctr, 0, 100.0, 200.0) for _ in range(4000)]) - 100.0
    assert abs(runs.mean() - 200.0) < 1.0
    assert abs(runs.std() - np.sqrt(200.0)) < 1.0      # Poisson pops
    assert list_due(key, ctr, 0, 100.0, 0.0) == 100.0   # an empty list runs empty at its next allocation


def _quiet_phases(free, wake_at, speed, thp_due, thp_gap, n, cpus=16, batch=63.0, seed=11):
    """n quiet phases from the same level, the lists' clocks running on from one to the next."""
    key, ctr, due = _lists(cpus, batch, seed)
    clock = 0.0
    out = []
    for _ in range(n):
        woke, span, k, after, clock, _, refilled = quiet_refills(key, ctr, 0, free, wake_at, speed, 0.0, thp_due,
                                                                 thp_gap, FLAT, batch, 0.0, due, clock, np.inf,
                                                                 _walk())
        out.append((woke, span, k, after, refilled))
    return out


def test_a_quiet_phase_ends_on_a_whole_refill_or_a_thp():
    # thp_half's sizes: high 626, THPs every 15.6 ms, small allocations draining buddy at
    # 20 pages/ms over 16 CPUs. At that mean a phase from 900 pages would reach high at
    # 13.7 ms, after the THP due at 12 ms, which lands it 512 lower; a phase that refilled
    # more than the mean by then wakes kswapd on a refill instead.
    batch, gap = 63.0, 512.0 / 32768.0
    phases = _quiet_phases(900.0, 626.0, 20000.0 / 16, 0.012, gap, 400)
    for woke, span, k, after, refilled in phases:
        assert refilled / batch == np.round(refilled / batch) and after == 900.0 - refilled - 512.0 * k
        if woke:
            assert span == 0.012 + (k - 1.0) * gap and after < 626.0 <= after + 512.0
        else:
            assert after < 626.0 <= after + batch
    by_thp = np.mean([p[0] for p in phases])
    assert 0.3 < by_thp < 0.95


def test_quiet_phases_vary_and_a_long_one_is_followed_by_a_short_one():
    # the seed's sizes: 5 refills of 63 pages a phase from 16 lists; every phase starts at the
    # same level and ends on a refill
    phases = _quiet_phases(626.0 + 5 * 63.0 - 1.0, 626.0, 28000.0, np.inf, np.inf, 2000)
    spans = np.array([p[1] for p in phases])
    assert all(p[4] == 5 * 63.0 for p in phases)
    cv = spans.std() / spans.mean()
    assert 0.2 < cv < 0.5          # the reference's: 0.29-0.32; one fluid length: 0
    assert np.corrcoef(spans[:-1], spans[1:])[0, 1] < -0.3


def test_a_long_quiet_phase_refills_at_its_mean_rate():
    batch, speed = 63.0, 20000.0 / 16
    (woke, span, k, after, refilled), = _quiet_phases(batch * 30000, 1.0, speed, np.inf, np.inf, 1)
    assert not woke and k == 0
    assert abs(refilled / span / (16 * speed) - 1.0) < 0.01


def test_a_walk_cut_short_stands_where_the_same_walks_refills_left_it():
    """migrc_hold's release cuts a quiet phase: walked again from the same draws up to the
    cut, free memory stands on the phase's lattice of whole refills (as in the reference,
    where a cut's next wake lands 573 pages down at the seed's sizes, every time)."""
    key, ctr, due = _lists(16, 63.0, 21)
    saved, c0 = due.copy(), ctr[_S_CLOCK, 0]
    full = quiet_refills(key, ctr, 0, 941.0, 626.0, 28000.0, 0.0, np.inf, np.inf, FLAT, 63.0, 0.0, due, 0.0, np.inf,
                         _walk())
    due[:] = saved
    ctr[_S_CLOCK, 0] = c0
    cut = quiet_refills(key, ctr, 0, 941.0, 626.0, 28000.0, 0.0, np.inf, np.inf, FLAT, 63.0, 0.0, due, 0.0,
                        0.5 * full[1], _walk())
    assert cut[1] == 0.5 * full[1] and not cut[0]
    assert (941.0 - cut[3]) % 63.0 == 0 and cut[3] > full[3]
    assert abs(cut[4] - 0.5 * full[1] * 28000.0) < 1e-6 * full[4]      # the clock at the cut


def test_a_walk_finds_the_refill_that_takes_tagged_pages_and_when_a_list_reaches_its_own():
    """Four tagged pages lie 10 pages apart on the buddy head, the first 30 down: the first
    refill of 63 pages takes all four, under 30 clean ones; a list's tagged page due at
    clock 2.0 is reached when the clock passes it."""
    key, ctr, due = _lists(16, 63.0, 8)
    w = _walk(cover=30.0, tags=4.0, gap=10.0, sp_at=2.0)
    _, refilled, _, t_reach, _, clock = refill_events(key, ctr, 0, 1e-3, 1e9, 0.0, 28000.0, 28000.0, np.inf, np.inf,
                                                      FLAT, 63.0, 30.0, due, 0.0, w)
    assert refilled > 0 and np.isfinite(t_reach)
    assert w[W_HIT_J] >= 0 and w[W_HIT_CLEAN] == 30.0 and w[W_HIT_TAGS] == 4.0
    assert clock > 2.0 and abs(w[W_T_SP] - 2.0 / 28000.0) < 1e-12
    # tags deeper than a refill reaches stay for the next one: the second refill takes them,
    # under the 100 - 63 clean pages the first left
    w = _walk(cover=100.0, tags=4.0, gap=10.0)
    _, refilled, _, _, _, _ = refill_events(key, ctr, 0, 1e-3, 1e9, 0.0, 28000.0, 28000.0, np.inf, np.inf, FLAT, 63.0,
                                            100.0, due, clock, w)
    assert refilled >= 2 * 63.0
    # the fourth lies past that refill, and goes with the first list's when a third takes it
    assert w[W_HIT_CLEAN] == 100.0 - 63.0 and w[W_HIT_TAGS] == (4.0 if refilled >= 3 * 63.0 else 3.0)


def test_earlier_kswapd_lists_keep_their_tags_and_their_threads_pop_both():
    """kswapd leaves list 3 holding 40 tagged pages, then list 7 holding 10: both lists keep
    theirs, and their threads pop them at both lists' rates; back on list 3, kswapd's new
    tags lie over the old ones there, one list again."""
    st = np.zeros(P_SIZE)
    st[P_KCPU], st[P_PCP], st[P_K_MIXED] = 3, 40.0, 80.0
    leave_list(st)
    assert st[P_OLD] == 40.0 and st[P_OLD2] == 0.0 and st[P_PCP] == 0.0
    one = old_list_rate(st, False, False, 100.0)
    assert one == 50.0                                  # half of that list's head is tagged
    st[P_KCPU], st[P_PCP], st[P_K_MIXED] = 7, 10.0, 10.0
    leave_list(st)
    assert st[P_OLD] == 10.0 and st[P_OLD2] == 40.0 and st[P_OLD2_CPU] == 3
    assert old_list_rate(st, False, False, 100.0) == 150.0
    assert old_list_rate(st, False, True, 100.0) == 100.0      # kswapd is back on list 3
    st[P_KCPU], st[P_PCP], st[P_K_MIXED] = 3, 5.0, 5.0
    leave_list(st)
    assert st[P_OLD] == 45.0 and st[P_OLD2] == 10.0
