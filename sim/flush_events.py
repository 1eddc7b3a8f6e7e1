"""The events of one lane's flush process, for the kernel in flush_cycle.py.

Each is a small numba function on the lane's state vector (`st`, columns P_*),
its pending ring and its tally row (`o`, columns O_*): a shootdown issued, the
pending work retired, the time to the next event that forces a deferred flush,
a thread paying it (and the others spinning on it), the rates at which
allocations take tagged pages, the tagged pages refills carry off the buddy head
onto other CPUs' lists, time
integrals inside the window, the swap pool's refaults, the reserve of pages
kswapd left on pcp lists (and the refills it spares), and the split of one LRU
batch between the inactive and active lists. Kept apart so the kernel's loop
reads on its own.
"""

from __future__ import annotations

import numpy as np
from .jit_cache import njit  # numba's, with sim's cache stamp installed

from .rng import draw_binomial, draw_exponential, draw_uniform

from .flush_layout import (  # compiled in as constants
    I_FLUSH_WAIT, I_MF, I_NUM_CPUS, I_PCP_BATCH, I_P_ANY, I_TARGETS, I_WINDOW, I_WRITE, O_ALLOC_WAIT, O_FLUSHES,
    O_HELD_PEAK, O_HELD_S, O_PEND_PEAK, O_PEND_S, O_REFAULTED, O_REMOTE, O_STALE_PAGES, O_STALE_S, O_TARGETS,
    O_THREAD_WAIT, O_T_ALLOC, O_T_MF, O_T_WRITE, P_BUDDY, P_BUDDY_GAP, P_COVER, P_FREE, P_HELD, P_LEN, P_OLD,
    P_PCP, P_FLUSH_END, P_KCPU, P_K_MIXED, P_OLD_CPU, P_OLD_MIXED, P_OLD2, P_OLD2_CPU, P_OLD2_MIXED, P_SP_AT,
    P_SP_CPU, P_SP_GAP, P_SP_RATE, P_SPREAD, W_HIT_CLEAN, W_HIT_CLOCK,
    W_HIT_DUE, W_HIT_GAP, W_HIT_J, W_HIT_TAGS, _K_ALLOC, _K_MF, _K_NONE, _K_WRITE, _S_DIRTY, _S_EVICT, _S_LAST,
    _S_RO, _S_SPREAD, _S_TRIG, _S_TRIG2, _S_TRIG3, _S_TRIG4,
)


@njit(cache=True)
def add_flush(o, P_i, c):
    """Tally one shootdown issued at a counted time (c)."""
    if c:
        o[O_FLUSHES] += 1.0
        o[O_TARGETS] += P_i[I_TARGETS]
        o[O_REMOTE] += P_i[I_P_ANY]


@njit(cache=True)
def retire(o, hist, st, pend_t, pend_n, at, c, bins, keep_tags=False):
    """A flush covered everything pending: record stale windows, clear the state.

    `keep_tags`: kswapd's own flush retired the pending work (rmap_flush_end)
    without advancing migrc_gen_done, so the freed pages keep a generation that
    the next deferred batch reuses; taking one of them then forces that batch's
    flush early (v9, see docs/model.md). Only a flush paid through
    check_migrc_flush() advances the generation and makes the tags harmless.

    Returns the pages migrc_hold held: they are freed now, onto a pcp list, so
    the caller takes them out of NR_FREE_PAGES, which counted them while held
    (RFC v2's watermark adjustment), and puts them where that list is modelled.
    """
    if c:
        for j in range(int(st[P_LEN])):
            w = pend_n[j]
            age = max(at - pend_t[j], 0.0)
            o[O_STALE_PAGES] += w
            o[O_STALE_S] += w * age
            hist[np.searchsorted(bins, age * 1e6)] += w
    for j in range(int(st[P_LEN])):
        pend_n[j] = 0.0
    if not keep_tags:
        st[P_PCP] = 0.0
        st[P_OLD] = 0.0
        st[P_OLD2] = 0.0
        st[P_BUDDY] = 0.0
        st[P_COVER] = 0.0
        st[P_SPREAD] = 0.0
    released = st[P_HELD]
    st[P_HELD] = 0.0
    st[P_FREE] -= released
    st[P_LEN] = 0.0
    return released


@njit(cache=True)
def owed(st):
    """Is a deferred flush outstanding?"""
    return st[P_LEN] > 0


@njit(cache=True)
def pending_pages(st, pend_n):
    s = 0.0
    for j in range(int(st[P_LEN])):
        s += pend_n[j]
    return s


@njit(cache=True)
def trigger(P_i, st, span_s, own_cpu_runs, hold, key, ctr, i, alloc, refill_rate, old_rate, t_buddy=-1.0,
            t_spread=-1.0):
    """Time to the first event that forces the pending flush, its kind (_K_*), and the rate
    at which the flushing thread's own CPU would take tagged pages itself.

    `alloc` is the allocation rate (pages/s) and `refill_rate` the rate of pcp
    refills from buddy (see `refill_rate`); `own_cpu_runs`: the thread on kswapd's CPU
    allocates, popping the pending pages kswapd freed there; `old_rate`: allocations that
    take a pending page left on an earlier kswapd CPU's list (see `old_tag_rate`);
    `t_buddy`, when not negative, the time of the refill that reaches a pending page on
    the buddy list (see `refill_events`), instead of one drawn at `refill_rate`;
    `t_spread`, when not negative, the time the list a refill filled with tagged pages
    pops the first of them (the lists' clock reaching P_SP_AT), instead of a pop drawn
    from the pool at `spread_pop_rate` (one CPU). A write
    fault or memory failure needs only a deferral pending, not a tagged free page: a
    batch is pending while kswapd copies it, before its pages are freed.

    The last value is the share of `tagged_alloc_rate` that is the flusher's own: a thread
    that pops a tagged page off a list (kswapd's old one, or one a refill filled) would
    go on popping that list at its CPU's allocation rate, but it is the one flushing, so
    none of those pops wait on its flush (see `spin_wait_ns`); a refill from buddy, a
    write fault or a memory failure leaves no such list behind."""
    if not owed(st):
        return np.inf, _K_NONE, 0.0
    num_cpus = P_i[I_NUM_CPUS]
    per_cpu_alloc = alloc / num_cpus
    t_alloc = np.inf
    own_rate = 0.0
    e = draw_exponential(key, ctr, _S_TRIG, i, old_rate)
    if not hold and st[P_OLD] + st[P_OLD2] > 0:
        t_alloc = e
        own_rate = min(old_rate, per_cpu_alloc)
    if own_cpu_runs:  # once the burst is over, or all along when it is the only CPU
        e = draw_exponential(key, ctr, _S_TRIG4, i, per_cpu_alloc)
        if not hold and st[P_PCP] > 0 and e < t_alloc:
            t_alloc = e
            own_rate = per_cpu_alloc
    # a pop of a tagged page on a list a refill filled (their count decays as they are
    # popped, so the hazard is inverted through the decay: see `spread_pop_rate`)
    e = -np.log(draw_uniform(key, ctr, _S_SPREAD, i))
    if t_spread >= 0:
        if not hold and st[P_SPREAD] > 0 and t_spread < t_alloc:
            t_alloc = t_spread
            own_rate = per_cpu_alloc
    elif not hold and e < st[P_SPREAD]:
        k = spread_pop_rate(1.0, alloc, num_cpus, P_i[I_PCP_BATCH])
        e = -np.log(1.0 - e / st[P_SPREAD]) / max(k, 1e-300)
        if e < t_alloc:
            t_alloc = e
            own_rate = min(spread_pop_rate(st[P_SPREAD], alloc, num_cpus, P_i[I_PCP_BATCH]), per_cpu_alloc)
    drain_s = st[P_COVER] / max(P_i[I_PCP_BATCH] * refill_rate, 1e-12)
    e = draw_exponential(key, ctr, _S_TRIG2, i, refill_rate)
    if t_buddy < 0:
        t_buddy = drain_s + e
    if not hold and st[P_BUDDY] > 0 and t_buddy < t_alloc:
        t_alloc = t_buddy
        own_rate = 0.0
    wm = P_i[I_WRITE] + P_i[I_MF]
    t_write = draw_exponential(key, ctr, _S_TRIG3, i, wm)
    first = min(t_alloc, t_write)
    if not first < span_s:
        return first, _K_NONE, 0.0
    is_mf = draw_uniform(key, ctr, _S_TRIG3, i) * max(wm, 1e-300) < P_i[I_MF]
    if t_alloc <= t_write:
        return first, _K_ALLOC, own_rate
    return first, (_K_MF if is_mf else _K_WRITE), 0.0


@njit(cache=True)
def spread_pop_rate(pages, alloc, num_cpus, batch):
    """Pops per second of the `pages` tagged pages that refills moved onto other CPUs' lists.

    A refill that takes tagged pages off the buddy head while nothing is pending puts them
    on its CPU's list with their tags (and migrc v9 reuses a generation kswapd's own flush
    retired), so every pop of one needs the flush once a deferral reuses it. That CPU's
    thread pops its list at alloc/num_cpus, the clean pages that lay over the tagged ones in
    buddy first: the refill that reaches them holds a uniform part of a batch of those, so a
    tagged page waits 3/4 of a batch on average, and they go at 4/3 alloc/(num_cpus batch)
    each (the reference's evict_high: 1.31). Without them, pops of such pages (a third of
    evict_high's allocation-triggered flushes in the reference) were missed."""
    return pages * (4.0 / 3.0) * alloc / (max(num_cpus, 1.0) * batch)


@njit(cache=True)
def eat_buddy(st, eaten, small_share, alloc, num_cpus, batch, span_s):
    """Allocations through [0, span_s) take `eaten` pages off the buddy head, evenly: the
    clean pages over the tagged ones first, then those. Tagged pages that small-folio
    refills take (`small_share` of them; a THP promotion consumes its tags) go onto the
    refilling CPUs' lists, where they keep their tags until popped (`spread_pop_rate`)."""
    k = spread_pop_rate(1.0, alloc, num_cpus, batch)
    st[P_SPREAD] *= np.exp(-k * span_s)
    cover = st[P_COVER]
    st[P_COVER] = max(cover - eaten, 0.0)
    moved = min(max(eaten - cover, 0.0), st[P_BUDDY])
    st[P_BUDDY] -= moved
    if moved > 0:
        # those pages were reached about when the refills took the middle of them
        at_s = (cover + 0.5 * moved) / eaten * span_s
        st[P_SPREAD] += moved * small_share * np.exp(-k * (span_s - at_s))


@njit(cache=True)
def eat_buddy_head(st, eaten):
    """`eaten` pages left the buddy head, where P_BUDDY tagged pages lie P_BUDDY_GAP apart,
    the first P_COVER down (with one CPU, together: `eat_buddy`). Returns the tagged
    pages taken."""
    cover = st[P_COVER]
    if not st[P_BUDDY] > 0 or eaten <= cover:
        st[P_COVER] = max(cover - eaten, 0.0)
        return 0.0
    gap = max(st[P_BUDDY_GAP], 1.0)
    took = min(np.floor((eaten - 1.0 - cover) / gap) + 1.0, st[P_BUDDY])
    st[P_BUDDY] -= took
    st[P_COVER] = cover + took * gap - eaten if st[P_BUDDY] > 0 else 0.0
    return took


@njit(cache=True)
def spread_onto_list(st, w, batch):
    """The refill a walk found taking tagged pages off the buddy head (see `walk_start`)
    puts them on its list, under the clean pages it took first: that list's thread pops
    the first of them once it has popped those, and the next ones as far apart as they
    lay on the buddy list (its clock covers the batch from the refill to its next
    run-out). Tagged pages already on a list stay there, counted with these and popped
    from the earlier of the two (kept while nothing is pending: a pending deferral's flush
    would have retired them all)."""
    if w[W_HIT_J] < 0 or not w[W_HIT_TAGS] > 0:
        return
    per_page = max(w[W_HIT_DUE] - w[W_HIT_CLOCK], 1e-9) / batch      # the list's clock a page
    gap = w[W_HIT_GAP] * per_page
    at = w[W_HIT_CLOCK] + (w[W_HIT_CLEAN] + 1.0) * per_page
    if st[P_SPREAD] > 0:
        st[P_SP_AT] = min(st[P_SP_AT], at)
    else:
        st[P_SP_CPU] = w[W_HIT_J]
        st[P_SP_AT] = at
        st[P_SP_GAP] = gap
    st[P_SPREAD] += w[W_HIT_TAGS]


@njit(cache=True)
def pop_spread(st, clock):
    """The spread list's thread popped its head up to `clock`: the tagged pages it reached
    went (harmlessly, while nothing is pending, or the trigger would have fired)."""
    if not st[P_SPREAD] > 0 or clock < st[P_SP_AT]:
        return
    k = np.floor((clock - st[P_SP_AT]) / st[P_SP_GAP]) + 1.0
    st[P_SPREAD] = max(st[P_SPREAD] - k, 0.0)
    st[P_SP_AT] += k * st[P_SP_GAP]


@njit(cache=True)
def spread_rate_now(st, clock, speed):
    """Pops per second of the spread list's tagged pages, at `clock`: once its head has
    reached them, its thread's rate over the pages between two of them; none before."""
    if not st[P_SPREAD] > 0 or st[P_SP_AT] - clock > st[P_SP_GAP]:
        return 0.0
    return speed / max(st[P_SP_GAP], 1.0)


@njit(cache=True)
def spill_tags(st, spilled, tagged, mixed):
    """kswapd's list spilled `spilled` pages onto the buddy head (a THP's frames count as a
    clean spill): `tagged` of them among the `mixed` it spilled last (the newest, now on
    top), the rest clean and older. The tags lie
    as if at random among those (the k-th k/(tagged+1) of the way down), and earlier tags
    stay below the whole spill: P_COVER down to the first, P_BUDDY_GAP apart on average.
    (In the reference's evict_high a refilled list holds its tagged pages under 12.9 clean
    ones at a deferral.)"""
    if tagged > 0:
        step = mixed / (tagged + 1.0)
        first = step
        last = tagged * step
        if st[P_BUDDY] > 0:
            last = spilled + st[P_COVER] + max(st[P_BUDDY] - 1.0, 0.0) * st[P_BUDDY_GAP]
        total = st[P_BUDDY] + tagged
        st[P_BUDDY_GAP] = max((last - first) / max(total - 1.0, 1.0), 1.0)
        st[P_COVER] = first
        st[P_BUDDY] = total
    elif st[P_BUDDY] > 0:
        st[P_COVER] += spilled


@njit(cache=True)
def tagged_alloc_rate(st, hold, alloc, refills, num_cpus, own_cpu_runs, old_rate, batch, cover_eaten=0.0):
    """Allocations per second that take a free page carrying the live generation: the
    thread of an old kswapd CPU popping its pcp list's head (or of kswapd's CPU, when it
    runs there too, or of a CPU whose list a refill filled with tagged pages), or a pcp
    refill from the buddy head that reaches it, once refills have eaten the clean pages
    over it to less than a batch (`cover_eaten` of them so far) (the rates `trigger` draws
    from; migrc_hold frees nothing)."""
    if hold:
        return 0.0
    spread, old, own = list_pop_rates(st, alloc, num_cpus, own_cpu_runs, old_rate, batch)
    r = spread + old + own
    if st[P_BUDDY] > 0 and st[P_COVER] < cover_eaten + batch:      # a refill takes a whole batch
        r += refills
    return r


@njit(cache=True)
def list_pop_rates(st, alloc, num_cpus, own_cpu_runs, old_rate, batch):
    """Pops per second of tagged pages off pcp lists, by the list they lie on: lists a
    refill filled, old kswapd CPUs' lists, and kswapd's own (when its CPU's thread runs)."""
    spread = st[P_SP_RATE] if st[P_SP_RATE] >= 0 else spread_pop_rate(st[P_SPREAD], alloc, num_cpus, batch)
    old = old_rate if st[P_OLD] + st[P_OLD2] > 0 else 0.0
    own = alloc / num_cpus if (own_cpu_runs and st[P_PCP] > 0) else 0.0
    return spread, old, own


@njit(cache=True)
def in_window(t, span_s, end):
    """The part of [t, t + span_s) inside the window [0, end).

    Rates are integrated over this overlap, not over whole phases that start in
    the window: a phase straddling the start would be lost and one straddling
    the end counted whole, and the two do not cancel while phase lengths drift.
    """
    return max(min(t + span_s, end) - max(t, 0.0), 0.0)


@njit(cache=True)
def drain_swap(o, swapped, lam, t, span_s, end):
    """Evicted pages touched again during [t, t + span_s) come back as allocations."""
    back = swapped * (1.0 - np.exp(-lam * span_s))
    if span_s > 0:
        o[O_REFAULTED] += back * in_window(t, span_s, end) / span_s
    return swapped - back


@njit(cache=True)
def drain_swap_pages(o, swapped, back, t, span_s, end):
    """`back` evicted pages come back as allocations during [t, t + span_s): what a walked
    phase's refaults took on the lists' clocks, so the pool loses what was allocated."""
    back = min(max(back, 0.0), swapped)
    if span_s > 0:
        o[O_REFAULTED] += back * in_window(t, span_s, end) / span_s
    return swapped - back


@njit(cache=True)
def mean_alloc(base, swapped, lam, span_s):
    """Allocations per second over [t, t + span_s): the fixed ones, plus the refaults of a
    swap pool of `swapped` pages, each touched at rate `lam`, which `drain_swap` takes
    out over the same span. (Held at the starting rate, the pool lost fewer pages than
    free memory did, and with most reclaim evicted the pool and the reclaim fed on each
    other: at 90% evicted kswapd reclaimed 1.4% more than was allocated, and the pool
    ran 11% too full.)"""
    if lam > 0 and span_s > 0:
        return base + swapped * (1.0 - np.exp(-lam * span_s)) / span_s
    return base + swapped * lam


@njit(cache=True)
def quiet_fixed_point(base_alloc, swapped, lam, alloc, thp, reserve, num_cpus, pcp_high, pages, left_s):
    """A quiet phase that takes `pages` from buddy: its mean allocation rate, the rate the
    reserve serves, its span and the reserve pages it uses, found together (refaults slow
    down as the swap pool drains over the span, so the pages the pool gives up are the
    ones the phase allocates; a span and rate that disagree leak pages: at 50% evicted,
    kswapd reclaimed 1.3% more than was allocated when the waking refill's pages were
    left out of the fixed point)."""
    for _ in range(3):
        rr = reserve_rate(alloc - thp, reserve, num_cpus, pcp_high)
        span, used = quiet_span(alloc, rr, reserve, pages, left_s)
        alloc = mean_alloc(base_alloc, swapped, lam, span)
    rr = reserve_rate(alloc - thp, reserve, num_cpus, pcp_high)
    span, used = quiet_span(alloc, rr, reserve, pages, left_s)
    return alloc, rr, span, used


@njit(cache=True)
def start_free(promo_pages, high_pages, batch_pages, u):
    """Free memory (NR_FREE_PAGES) at the start of a run: a point of a quiet phase, uniform
    among the levels it passes on its way from the promo watermark down to high. Free
    memory moves by whole pcp batches, so the levels are promo minus whole batches, from
    which the refill that crosses high lands the wake where the reference's does. Always
    starting at promo put every run at the start of a cycle: where a quiet phase outlasts
    the warmup (slow scanning, a wide watermark gap), the window saw a cycle's first part
    only, and at the default fidelity slow_scan's demotions came out 12% under a run
    started 1 s earlier (now within 6% over warm-ups of 0.1 to 3 s: the start still falls
    on a batch boundary)."""
    steps = np.floor(max(promo_pages - high_pages, 0.0) / batch_pages)
    return promo_pages - batch_pages * np.floor(u * (steps + 1.0))


@njit(cache=True)
def quiet_span(alloc, rr, reserve, drop, left_s):
    """How long a quiet phase lasts, and the reserve pages it uses: allocations at `alloc`
    take `drop` pages of free memory, less those the reserve serves at `rr` until it runs
    out (then all take buddy pages). Without allocations, the rest of the run (`left_s`)."""
    if not alloc > 0:
        return left_s + 1e-9, 0.0
    until_empty = reserve / max(rr, 1e-12)
    if (alloc - rr) * until_empty >= drop:
        span = drop / max(alloc - rr, 1e-12)
        return span, rr * span
    return until_empty + (drop - (alloc - rr) * until_empty) / alloc, reserve


@njit(cache=True)
def integrate(o, st, pend_n, t, span_s, end):
    inside = in_window(t, span_s, end)
    if inside > 0:
        pp = pending_pages(st, pend_n)
        o[O_PEND_S] += pp * inside
        o[O_PEND_PEAK] = max(o[O_PEND_PEAK], pp)
        o[O_HELD_S] += st[P_HELD] * inside
        o[O_HELD_PEAK] = max(o[O_HELD_PEAK], st[P_HELD])


@njit(cache=True)
def spin_wait_ns(P_i, need_rate):
    """Mean time other threads wait on one thread-paid deferred flush while it runs.

    Threads on other CPUs that need the generation in flight (an allocation taking a page
    tagged with it, a write fault, a memory failure: `need_rate` per second) do not flush
    again: they spin in check_migrc_flush() until the flush is done (migrc_on_flushing).
    Those arriving over its `flush_wait` wait the rest of it, flush_wait/2 on average. The
    flushing thread's own CPU takes no part (`trigger`'s last value): in evict_high/LUF it
    pops tagged pages at 34 a millisecond, the others at 4 to 9, and counted with them the
    initiator wait was 8.5% over the reference's."""
    fw_ns = P_i[I_FLUSH_WAIT]
    return need_rate * fw_ns * 1e-9 * fw_ns / 2.0


@njit(cache=True)
def racer_own_rate(st, hold, alloc, num_cpus, own_cpu_runs, old_rate, batch, r_all):
    """`trigger`'s last value, expected of a thread that races kswapd's own flush.

    The racer is one of the `r_all` per second that need the generation in flight: a pop
    of a tagged page off an old kswapd CPU's list, off kswapd's own (one CPU), or off a
    list a refill filled, each as likely as its rate; or a refill from buddy, a write
    fault or a memory failure, which leave no list behind. Its own CPU's later pops wait
    on nobody's flush but its own, so they are not among its spinners."""
    if hold or r_all <= 0:
        return 0.0
    per_cpu_alloc = alloc / num_cpus
    spread, old, own = list_pop_rates(st, alloc, num_cpus, own_cpu_runs, old_rate, batch)
    w = spread * min(spread, per_cpu_alloc) + old * min(old, per_cpu_alloc) + own * min(own, per_cpu_alloc)
    return w / r_all


@njit(cache=True)
def thread_flush(o, hist, P_i, st, pend_t, pend_n, t, first, kind, bins, need_rate=0.0):
    """A thread pays the deferred flush: at an allocation, a write fault or a memory failure.
    `need_rate`: the rate of others that need it while it runs (see `spin_wait_ns`)."""
    if kind == _K_NONE:
        return 0.0
    at = t + first
    c = (at >= 0) & (at < P_i[I_WINDOW])
    add_flush(o, P_i, c)
    st[P_FLUSH_END] = at + P_i[I_FLUSH_WAIT] * 1e-9
    if c:
        o[O_THREAD_WAIT] += P_i[I_FLUSH_WAIT] + spin_wait_ns(P_i, need_rate)
        if kind == _K_ALLOC:
            o[O_ALLOC_WAIT] += P_i[I_FLUSH_WAIT]
            o[O_T_ALLOC] += 1.0
        elif kind == _K_WRITE:
            o[O_T_WRITE] += 1.0
        else:
            o[O_T_MF] += 1.0
    # what was pending is safe once the flush is done
    return retire(o, hist, st, pend_t, pend_n, at + P_i[I_FLUSH_WAIT] * 1e-9, c, bins)


@njit(cache=True)
def old_tag_rate(st, rr, reserve):
    """Allocations per second that take a tagged page from an earlier kswapd CPU's list.

    Those lists are the reserve (see `reserve_rate`), served at `rr` pages/s; their
    tagged pages are mixed in with the rest (each batch freed its clean folios, then its
    deferred ones), so an allocation from them takes one in their proportion.
    """
    return rr * min(st[P_OLD] / max(reserve, 1e-9), 1.0)


@njit(cache=True)
def old_list_rate(st, frozen, frozen2, speed):
    """Allocations per second that take a tagged page from an earlier kswapd CPU's list,
    whose thread pops it from the head at `speed` (none while kswapd runs there again,
    `frozen`; `frozen2` for the lists before it). Its tagged pages lie among the
    P_OLD_MIXED pages at its head that kswapd freed there (each batch freed its clean
    folios, then its deferred ones), so a pop takes one in their proportion; and as much
    again for the lists before it, whose threads pop theirs too."""
    r = 0.0
    if st[P_OLD] > 0 and not frozen:
        r += speed * min(st[P_OLD] / max(st[P_OLD_MIXED], 1e-9), 1.0)
    if st[P_OLD2] > 0 and not frozen2:
        r += speed * min(st[P_OLD2] / max(st[P_OLD2_MIXED], 1e-9), 1.0)
    return r


@njit(cache=True)
def leave_list(st):
    """kswapd leaves its list (P_KCPU) for another, its tagged pages among the P_K_MIXED at the
    list's head: that list joins the earlier kswapd CPUs' lists. The last one before it (P_OLD)
    keeps its tags on its own CPU, and its thread pops them on its own, so it moves down to
    P_OLD2 (into which any before it merge); if kswapd comes back to a list that still holds
    tags, they lie under its new ones and stay one list. (Two lists taken as one, their
    threads popped them at one rate: the reference's thp_half/migrc had two or more such
    lists at 10% of deferrals, pressure/migrc at 7%.)"""
    k = st[P_KCPU]
    if st[P_OLD] > 0 and st[P_OLD_CPU] == k:
        st[P_OLD_MIXED] += st[P_K_MIXED]
        st[P_OLD] += st[P_PCP]
    else:
        if st[P_OLD2] > 0 and st[P_OLD2_CPU] == k:
            st[P_K_MIXED] += st[P_OLD2_MIXED]        # the older tags under kswapd's new ones
            st[P_PCP] += st[P_OLD2]
            st[P_OLD2] = 0.0
        if st[P_OLD] > 0:
            st[P_OLD2_MIXED] = (st[P_OLD2_MIXED] if st[P_OLD2] > 0 else 0.0) + st[P_OLD_MIXED]
            st[P_OLD2_CPU] = st[P_OLD_CPU]
            st[P_OLD2] += st[P_OLD]
        st[P_OLD_MIXED] = st[P_K_MIXED]
        st[P_OLD_CPU] = k
        st[P_OLD] = st[P_PCP]
    st[P_PCP] = 0.0


@njit(cache=True)
def pop_tags(st, tags, mixed, pages):
    """A list's thread popped `pages` off its head, where `st[tags]` tagged pages lie among
    `st[mixed]` (`tags`, `mixed`: slots of the state vector): they go in proportion
    (harmlessly, while no deferral waits on their generation, or the trigger would have
    fired), all of them once it is through."""
    if not st[tags] > 0 or not pages > 0:
        return
    left = max(st[mixed] - pages, 0.0)
    st[tags] *= left / st[mixed] if st[mixed] > 0 else 0.0
    st[mixed] = left


@njit(cache=True)
def release_held(st, due, clock, pcp_count, released, one_cpu, pcp_high, batch):
    """migrc_hold's released folios are freed onto kswapd's last list, which spills past its
    high mark: with one CPU that is `pcp_count`, with more its clock (`onto_list`).
    Returns (pcp_count, the pages spilled to buddy)."""
    if one_cpu:
        pcp_count += released
        spilled = spill_pages(pcp_count, pcp_high, batch)
        return pcp_count - spilled, spilled
    return pcp_count, onto_list(due, int(st[P_KCPU]), clock, released, pcp_high, batch)


@njit(cache=True)
def onto_list(due, j, clock, pages, pcp_high, batch):
    """`pages` freed onto list `j` (migrc_hold's release), which spills past its high mark:
    its run-out moves by what it keeps. Returns the pages spilled to buddy."""
    if not pages > 0:
        return 0.0
    held = max(due[j] - clock, 0.0) + pages
    spilled = spill_pages(held, pcp_high, batch)
    due[j] = max(due[j], clock) + pages - spilled
    return spilled


@njit(cache=True)
def drain_reserve(st, reserve, pages):
    """The reserve loses `pages`; its tagged pages go in proportion (taken harmlessly,
    while no deferral waits on their generation, or the trigger would have fired)."""
    left = max(reserve - pages, 0.0)
    st[P_OLD] *= left / reserve if reserve > 0 else 0.0
    return left


@njit(cache=True)
def thp_hint_faults(thp_due, thp_gap, span_s):
    """THP hint faults in the next `span_s` (every `thp_gap` seconds, the next in
    `thp_due`), and when the next one is due after that."""
    if not thp_due <= span_s:
        return 0.0, thp_due - span_s
    # A span that ends on a THP hint fault (thp_due + k thp_gap, one that woke kswapd)
    # counts it: in floating point (span - due) / gap falls an ulp short of k a quarter of
    # the time, and the next THP came due at once, in the burst it had just started.
    n = np.floor((span_s - thp_due) / thp_gap + 1e-9) + 1.0
    return n, thp_due + n * thp_gap - span_s


@njit(cache=True)
def thp_in_window(t, thp_due, thp_gap, n, end):
    """How many of the `n` THP hint faults due from `t + thp_due`, every `thp_gap`
    seconds, fall in the window [0, end). (Spread over their phase instead, the last
    phase of a run, cut by its end before its THP came, counted none: thp_all's
    promotions came out 3.6% low.)"""
    k = 0.0
    j = 0.0
    while j < n:
        a = t + thp_due + j * thp_gap
        if a >= end:
            break
        if a >= 0:
            k += 1.0
        j += 1.0
    return k


@njit(cache=True)
def spill_pages(count, pcp_high, batch):
    """What a pcp list holding `count` pages spills to buddy: whole batches from its tail
    until it holds no more than `high` (free_pcppages_bulk())."""
    return min(np.ceil(max(count - pcp_high, 0.0) / batch) * batch, count)


@njit(cache=True)
def refill_rate(alloc, rr, num_cpus, pcp_batch):
    """pcp refills from the buddy head per second, by CPUs other than kswapd's.

    Allocations that pages kswapd left on a pcp list serve (`rr`, see
    `reserve_rate`) refill nothing: a CPU refills only once its list is empty.
    """
    return max(alloc * max(num_cpus - 1.0, 0.0) / num_cpus - rr, 0.0) / pcp_batch


@njit(cache=True)
def reserve_holders(reserve, num_cpus, pcp_high):
    """How many CPUs hold pages kswapd left on their pcp lists. A list is left near
    `pcp_high` and drains evenly, so holders carry pcp_high/2 on average: about
    2*reserve/pcp_high CPUs hold some, and at most the other num_cpus-1 (on one CPU,
    the thread takes what kswapd left on its own list)."""
    return min(2.0 * reserve / max(pcp_high, 1.0), max(num_cpus - 1.0, 1.0))


@njit(cache=True)
def reserve_rate(alloc, reserve, num_cpus, pcp_high):
    """Allocations per second served from pages kswapd left on other CPUs' pcp lists:
    each holder (`reserve_holders`) serves its own thread, 1/num_cpus of the
    allocations, from them until they run out."""
    return min(alloc, alloc / num_cpus * reserve_holders(reserve, num_cpus, pcp_high))


@njit(cache=True)
def split_batch(key, ctr, i, lru, e, ro_cold, ro_hot, n_cold, small):
    """An LRU batch of `lru` small folios, `n_cold` of them from the inactive list (read-only
    with odds ro_cold) and the rest from the active one (ro_hot): (evicted, demoted, dirty
    evicted, whether the loop's last eviction was clean and so left unflushed, read-only
    demoted).

    Each folio is evicted with odds `e`, and an evicted one is dirty unless read-only:
    binomial counts (`draw_binomial`). One uniform decides the demoted folios' mix: all
    read-only with the odds that each is, none likewise, the mean share between. Every
    draw is taken on every step so the streams stay aligned across policies.
    """
    ro_p = (n_cold * ro_cold + (lru - n_cold) * ro_hot) / lru
    ev = draw_binomial(key, ctr, _S_EVICT, i, lru if small else 0.0, e)
    u_ro = draw_uniform(key, ctr, _S_RO, i)
    dirty = draw_binomial(key, ctr, _S_DIRTY, i, ev, 1.0 - ro_p)
    u_last = draw_uniform(key, ctr, _S_LAST, i)
    if not small:
        return 0.0, 0.0, 0.0, False, 0.0
    dem = lru - ev
    left = False
    if ev > 0:
        left = u_last * ev < ev - dirty
    ro_dem = 0.0
    if dem > 0:
        d_cold = dem * n_cold / lru          # evictions pick folios regardless of their list
        d_hot = dem - d_cold
        if u_ro < ro_cold ** d_cold * ro_hot ** d_hot:
            ro_dem = dem
        elif u_ro < 1.0 - (1.0 - ro_cold) ** d_cold * (1.0 - ro_hot) ** d_hot:
            ro_dem = min(max(np.rint(dem * ro_p), 1.0), dem - 1.0)
    return ev, dem, dirty, left, ro_dem
