"""The flush process of kswapd reclaim cycles, simulated per lane by a numba kernel.

Free memory on the fast node falls from the promo watermark to the high one
while promotions and other allocations take pages; then kswapd wakes on some
CPU and reclaims LRU batches (or single THPs) until free memory is back at the
promo watermark. Each step of a lane is a whole quiet phase, or one kswapd batch.

Under migrc, a batch whose folios are all mapped read-only is freed carrying a
pending flush instead of being flushed. The freed pages land on the kswapd
CPU's pcp list (top), spill to the buddy list in pcp-batch chunks from the
list's tail, and the deferred flush is paid by the first thread that takes a
pending page (its own CPU's pcp, or a pcp refill from the buddy head), by a
write fault, by a memory failure, or is covered ("piggyback") by any normal
flush of the same mm.

The loop over lanes and steps runs in `_cycles_kernel` (numba, compiled once and
cached on disk). It replaced a numpy lock-step loop over all lanes, which was
bound by Python overhead (~150 numpy calls per step); that loop survives as the
test oracle in tests/engine/numpy_oracle.py, and the kernel reproduces it draw
for draw. Lanes are independent: a lane's tally depends only on its own
parameters and seed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .rng import LaneRandom, draw_exponential, draw_normal, draw_uniform
from .steady import Flows

from .flush_layout import (  # the kernel compiles these in as constants
    STALE_BINS_US, _MAX_PENDING_BATCHES, _S_THP, _S_EVICT, _S_RO, _S_GIVEUP, _S_PCP,
    _S_TRIG, _S_TRIG2, _S_TRIG3, _S_TRIG4, _S_DIRTY, _S_LAST, _OUT, FlushTally, kernel_inputs,
    I_ALLOC, I_REFAULT, I_REFAULT_LAM, I_REFAULT_SHARE, I_COPY_NS, I_EVICT, I_FLUSH_WAIT, I_LRU, I_MF, I_MIGRATE_NS, I_MIGRATING, I_NUM_CPUS,
    I_PCP_BATCH, I_PCP_HIGH, I_PROMOTE, I_P_ANY, I_RO_P, I_TARGETS, I_THP_P, I_WARMUP, I_WHIGH, I_WINDOW,
    I_WMIN, I_WPROMO, I_WRITE, O_ALLOC_WAIT, O_DEMOTED, O_EVICTED, O_FLUSHES, O_HELD_PEAK, O_HELD_S,
    O_KSWAPD_NS, O_KSWAPD_WAIT, O_PEND_PEAK, O_PEND_S, O_PROMOTED, O_REMOTE, O_STALE_PAGES, O_STALE_S,
    O_REFAULTED, O_TARGETS, O_THREAD_WAIT, O_T_ALLOC, O_T_GIVEUP, O_T_MF, O_T_PIGGY, O_T_RECLAIM, O_T_WRITE, P_BUDDY,
    P_COVER, P_FREE, P_HELD, P_LEN, P_OLD, P_PCP, P_THREAD_FLUSHES, _K_ALLOC, _K_MF, _K_NONE, _K_WRITE,
)


def run_cycles(f: Flows, L, policy: np.ndarray, rnd: LaneRandom, window_s: np.ndarray, warmup_s: np.ndarray):
    """Simulate every lane's flush process over [-warmup, window); returns a FlushTally."""
    P = kernel_inputs(f, L, window_s, warmup_s)
    n = P.shape[0]
    out = np.zeros((n, len(_OUT)))
    hist = np.zeros((n, len(STALE_BINS_US) + 1))
    _cycles_kernel(P, np.asarray(policy, dtype=np.int64), rnd.keys, rnd.counters, STALE_BINS_US, out, hist)
    return FlushTally.from_arrays(out, hist)


# --- the kernel ---------------------------------------------------------------

@njit(cache=True)
def _add_flush(o, P_i, c):
    """Tally one shootdown issued at a counted time (c)."""
    if c:
        o[O_FLUSHES] += 1.0
        o[O_TARGETS] += P_i[I_TARGETS]
        o[O_REMOTE] += P_i[I_P_ANY]


@njit(cache=True)
def _retire(o, hist, st, pend_t, pend_n, at, c, bins, keep_tags=False):
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
        st[P_BUDDY] = 0.0
        st[P_COVER] = 0.0
    released = st[P_HELD]
    st[P_HELD] = 0.0
    st[P_FREE] -= released
    st[P_LEN] = 0.0
    return released


@njit(cache=True)
def _tagged(st):
    """Freed pages carrying the current generation (or held, in migrc_hold)."""
    return st[P_PCP] + st[P_OLD] + st[P_BUDDY] + st[P_HELD]


@njit(cache=True)
def _owed(st):
    """Is a deferred flush outstanding?"""
    return st[P_LEN] > 0


@njit(cache=True)
def _pending_pages(st, pend_n):
    s = 0.0
    for j in range(int(st[P_LEN])):
        s += pend_n[j]
    return s


@njit(cache=True)
def _trigger(P_i, st, span_s, quiet, hold, key, ctr, i, alloc):
    """Time to the first event that forces the pending flush, and its kind (_K_*)."""
    if not (_owed(st) and _tagged(st) > 0):
        return np.inf, _K_NONE
    num_cpus = P_i[I_NUM_CPUS]
    per_cpu_alloc = alloc / num_cpus
    refill_rate = alloc * max(num_cpus - 1, 0.0) / num_cpus / P_i[I_PCP_BATCH]
    t_alloc = np.inf
    e = draw_exponential(key, ctr, _S_TRIG, i, per_cpu_alloc)
    if not hold and st[P_OLD] > 0:
        t_alloc = e
    if quiet:  # kswapd's CPU runs the workload again once the burst is over
        e = draw_exponential(key, ctr, _S_TRIG4, i, per_cpu_alloc)
        if not hold and st[P_PCP] > 0:
            t_alloc = min(t_alloc, e)
    drain_s = st[P_COVER] / max(P_i[I_PCP_BATCH] * refill_rate, 1e-12)
    e = draw_exponential(key, ctr, _S_TRIG2, i, refill_rate)
    if not hold and st[P_BUDDY] > 0:
        t_alloc = min(t_alloc, drain_s + e)
    wm = P_i[I_WRITE] + P_i[I_MF]
    t_write = draw_exponential(key, ctr, _S_TRIG3, i, wm)
    first = min(t_alloc, t_write)
    if not first < span_s:
        return first, _K_NONE
    is_mf = draw_uniform(key, ctr, _S_TRIG3, i) * max(wm, 1e-300) < P_i[I_MF]
    if t_alloc <= t_write:
        return first, _K_ALLOC
    return first, (_K_MF if is_mf else _K_WRITE)


@njit(cache=True)
def _inside(t, span_s, end):
    """The part of [t, t + span_s) inside the window [0, end).

    Rates are integrated over this overlap, not over whole phases that start in
    the window: a phase straddling the start would be lost and one straddling
    the end counted whole, and the two do not cancel while phase lengths drift.
    """
    return max(min(t + span_s, end) - max(t, 0.0), 0.0)


@njit(cache=True)
def _drain_swap(o, swapped, lam, t, span_s, end):
    """Evicted pages touched again during [t, t + span_s) come back as allocations."""
    back = swapped * (1.0 - np.exp(-lam * span_s))
    if span_s > 0:
        o[O_REFAULTED] += back * _inside(t, span_s, end) / span_s
    return swapped - back


@njit(cache=True)
def _integrate(o, st, pend_n, t, span_s, end):
    inside = _inside(t, span_s, end)
    if inside > 0:
        pp = _pending_pages(st, pend_n)
        o[O_PEND_S] += pp * inside
        o[O_PEND_PEAK] = max(o[O_PEND_PEAK], pp)
        o[O_HELD_S] += st[P_HELD] * inside
        o[O_HELD_PEAK] = max(o[O_HELD_PEAK], st[P_HELD])


@njit(cache=True)
def _thread_flush(o, hist, P_i, st, pend_t, pend_n, t, first, kind, bins):
    """A thread pays the deferred flush: at an allocation, a write fault or a memory failure."""
    if kind == _K_NONE:
        return 0.0
    at = t + first
    c = (at >= 0) & (at < P_i[I_WINDOW])
    _add_flush(o, P_i, c)
    st[P_THREAD_FLUSHES] += 1.0
    if c:
        o[O_THREAD_WAIT] += P_i[I_FLUSH_WAIT]
        if kind == _K_ALLOC:
            o[O_ALLOC_WAIT] += P_i[I_FLUSH_WAIT]
            o[O_T_ALLOC] += 1.0
        elif kind == _K_WRITE:
            o[O_T_WRITE] += 1.0
        else:
            o[O_T_MF] += 1.0
    return _retire(o, hist, st, pend_t, pend_n, at, c, bins)


@njit(cache=True)
def _reserve_rate(alloc, reserve, num_cpus, pcp_high):
    """Allocations per second served from pages kswapd left on other CPUs' pcp lists.

    Each CPU holding such pages serves its own thread (1/num_cpus of the
    allocations) from them until they run out. A list is left near `pcp_high` and
    drains evenly, so holders carry pcp_high/2 on average: about
    2*reserve/pcp_high CPUs hold some, and at most the other num_cpus-1 (on one
    CPU, the thread takes what kswapd left on its own list).
    """
    holders = min(2.0 * reserve / max(pcp_high, 1.0), max(num_cpus - 1.0, 1.0))
    return min(alloc, alloc / num_cpus * holders)


@njit(cache=True)
def _split_batch(key, ctr, i, lru, e, ro_p, small):
    """An LRU batch of `lru` small folios: (evicted, demoted, dirty evicted, whether the
    loop's last eviction was clean and so left unflushed, read-only demoted).

    One uniform decides the demoted folios' mix: all read-only below ro^dem, none
    above 1 - (1-ro)^dem, the mean share between. Every draw is taken on every step so
    the streams stay aligned across policies.
    """
    z = draw_normal(key, ctr, _S_EVICT, i)
    u_ro = draw_uniform(key, ctr, _S_RO, i)
    z_dirty = draw_normal(key, ctr, _S_DIRTY, i)
    u_last = draw_uniform(key, ctr, _S_LAST, i)
    if not small:
        return 0.0, 0.0, 0.0, False, 0.0
    ev = min(max(np.rint(lru * e + np.sqrt(lru * e * (1 - e)) * z), 0.0), lru)
    dem = lru - ev
    dirty = 0.0
    left = False
    if ev > 0:
        w = 1.0 - ro_p
        dirty = min(max(np.rint(ev * w + np.sqrt(ev * w * ro_p) * z_dirty), 0.0), ev)
        left = u_last * ev < ev - dirty
    ro_dem = 0.0
    if dem > 0:
        if u_ro < ro_p ** dem:
            ro_dem = dem
        elif u_ro < 1.0 - (1.0 - ro_p) ** dem:
            ro_dem = min(max(np.rint(dem * ro_p), 1.0), dem - 1.0)
    return ev, dem, dirty, left, ro_dem


@njit(cache=True)
def _cycles_kernel(P, policy, keys, ctr, bins, out, hist):
    n = P.shape[0]
    pend_t = np.zeros(_MAX_PENDING_BATCHES)
    pend_n = np.zeros(_MAX_PENDING_BATCHES)
    st = np.zeros(8)
    for i in range(n):
        P_i = P[i]
        o = out[i]
        h = hist[i]
        key = keys[i]
        pol = policy[i]
        defers = (pol == 2) | (pol == 3) | (pol == 4)
        hold = pol == 3
        luf = pol == 4
        wmin, whigh, wpromo = P_i[I_WMIN], P_i[I_WHIGH], P_i[I_WPROMO]
        pcp_batch, pcp_high = P_i[I_PCP_BATCH], P_i[I_PCP_HIGH]
        migrating = P_i[I_MIGRATING] != 0
        promote = P_i[I_PROMOTE]
        num_cpus = P_i[I_NUM_CPUS]
        # Evicted workload pages wait in swap until touched again (rate lam each), then
        # come back as allocations: refaults follow the evictions actually made, starting
        # from the steady pool. Other allocations arrive at a fixed rate.
        lam = P_i[I_REFAULT_LAM]
        swapped = P_i[I_REFAULT] / lam if lam > 0 else 0.0
        base_alloc = P_i[I_ALLOC] - (P_i[I_REFAULT] if lam > 0 else 0.0)
        lru = P_i[I_LRU]
        flush_wait = P_i[I_FLUSH_WAIT]
        warmup = P_i[I_WARMUP]
        end = P_i[I_WINDOW]
        e = P_i[I_EVICT]
        ro_p = P_i[I_RO_P]

        t = -warmup
        burst = False
        pcp_count = 0.0
        # start at the reserve's steady state, which this loop settles to at about
        # pcp_high/5 per other CPU (measured at 16 and 64 CPUs: 0.19 and 0.18), so that
        # the window sees no drift from the start
        reserve = pcp_high * max(num_cpus - 1, 0.0) / 5
        st[:] = 0.0
        st[P_FREE] = wpromo
        pend_t[:] = 0.0
        pend_n[:] = 0.0

        while t < end:
            alloc = base_alloc + swapped * lam
            refill_rate = alloc * max(num_cpus - 1, 0.0) / num_cpus / pcp_batch
            if not burst:
                # quiet phase: allocations take free memory down to the high watermark
                if alloc > 0:
                    # the reserve serves part of the allocations until it runs out; the rest
                    # (then all) take buddy pages
                    rr = _reserve_rate(alloc, reserve, num_cpus, pcp_high)
                    drop = max(st[P_FREE] - whigh, 0.0)
                    until_empty = reserve / max(rr, 1e-12)
                    if (alloc - rr) * until_empty >= drop:
                        span = drop / max(alloc - rr, 1e-12)
                        reserve = max(reserve - rr * span, 0.0)
                    else:
                        span = until_empty + (drop - (alloc - rr) * until_empty) / alloc
                        reserve = 0.0
                else:
                    span = end - t + 1e-9
                first, kind = _trigger(P_i, st, span, True, hold, key, ctr, i, alloc)
                c = (t >= 0) & (t < end)
                _integrate(o, st, pend_n, t, min(first, span), end)
                reserve += _thread_flush(o, h, P_i, st, pend_t, pend_n, t, first, kind, bins)
                o[O_PROMOTED] += promote * _inside(t, span, end)
                swapped = _drain_swap(o, swapped, lam, t, span, end)
                t = t + span
                st[P_FREE] = min(st[P_FREE], whigh)
                # kswapd wakes; in migrc_hold it first flushes and frees what it holds
                if hold and st[P_HELD] > 0:
                    c = (t >= 0) & (t < end)
                    _add_flush(o, P_i, c)
                    if c:
                        o[O_KSWAPD_WAIT] += flush_wait
                        o[O_T_RECLAIM] += 1.0
                    # freed onto the CPU kswapd held them on, spilling past its high mark
                    pcp_count += _retire(o, h, st, pend_t, pend_n, t, c, bins)
                    spilled = min(np.ceil(max(pcp_count - pcp_high, 0.0) / pcp_batch) * pcp_batch, pcp_count)
                    pcp_count -= spilled
                    st[P_FREE] += spilled
                # pending pages stay on the old kswapd CPU's pcp list
                st[P_OLD] += st[P_PCP]
                st[P_PCP] = 0.0
                # What kswapd left on its last CPU's pcp serves that CPU's thread later,
                # without touching NR_FREE_PAGES: it joins the reserve of such pages.
                reserve += pcp_count
                # the thread on kswapd's new CPU drains its pcp between refills of `batch` pages
                pcp_count = draw_uniform(key, ctr, _S_PCP, i) * pcp_batch
                reserve = max(reserve - pcp_count, 0.0)
                burst = (st[P_FREE] < wpromo) & migrating
                if not t < end:
                    break
            if not burst:
                continue

            # one kswapd step: an LRU batch of small folios, or one THP
            is_thp = draw_uniform(key, ctr, _S_THP, i) < P_i[I_THP_P]
            small = not is_thp
            ev, dem, dirty, left, ro_dem = _split_batch(key, ctr, i, lru, e, ro_p, small)
            pages = 512.0 if is_thp else lru
            may_defer = defers & small & (st[P_FREE] > wmin)
            # read-only folios handed to migrc (LUF: the clean evicted ones too)
            k_def = ro_dem + ((ev - dirty) if luf else 0.0) if may_defer else 0.0
            cand = k_def > 0
            u_g = draw_uniform(key, ctr, _S_GIVEUP, i)
            give_up = cand & (u_g < min(1.0, st[P_THREAD_FLUSHES] / max(t + warmup, 1e-9) * flush_wait * 1e-9))
            if luf and cand:
                left = False      # the clean evicted folios went to the deferred batch
            # flushes in shrink_folio_list()'s loop (dirty evictions), then migrate_pages_batch()'s
            # flush of what is left: demoted folios not deferred, clean evictions, a give-up's batch
            n_before = dirty
            after = (dem - (ro_dem if may_defer else 0.0) > 0) | left | give_up
            if pol == 0:
                n_before = dirty + dem      # one flush per demoted folio, then the evictions' batch
                after = left
            if is_thp:
                n_before = 0.0
                after = True
            if pol == 5:
                n_before = 0.0
                after = False
            nf = n_before + (1.0 if after else 0.0)
            survive = cand & (not give_up) & (not after)
            deferred_pages = k_def if survive else 0.0
            if is_thp:
                work_ns = 512 * P_i[I_COPY_NS] + P_i[I_MIGRATE_NS]
            else:
                work_ns = dem * P_i[I_COPY_NS] + lru * P_i[I_MIGRATE_NS]
            span = (work_ns + nf * flush_wait) * 1e-9

            # events that fire for older pending pages while kswapd works
            first, kind = _trigger(P_i, st, span, False, hold, key, ctr, i, alloc)
            c = (t >= 0) & (t < end)
            _integrate(o, st, pend_n, t, min(first, span), end)
            # held pages a flush releases go to the pcp list kswapd freed them from: this one
            pcp_count += _thread_flush(o, h, P_i, st, pend_t, pend_n, t, first, kind, bins)
            # kswapd's own flushes: each costs a shootdown; the first retires what is pending
            k = 0
            while k < nf:
                _add_flush(o, P_i, c)
                if c:
                    o[O_KSWAPD_WAIT] += flush_wait
                k += 1
            if _owed(st) & (n_before > 0):
                if c:
                    o[O_T_PIGGY] += 1.0
                pcp_count += _retire(o, h, st, pend_t, pend_n, t, c, bins, True)
            # a deferral that the step's own flush retires at once (v9 keeps its generation)
            now_retired = cand & (not give_up) & after
            if (_owed(st) & after) | now_retired:
                # a give-up's flush is counted as the give-up: the deferral was abandoned
                # because another CPU was already flushing
                if c and not give_up:
                    o[O_T_PIGGY] += 1.0
                pcp_count += _retire(o, h, st, pend_t, pend_n, t, c, bins, True)
            if now_retired and c:
                age = (n_before + 1.0) * flush_wait * 1e-9
                o[O_STALE_PAGES] += k_def
                o[O_STALE_S] += k_def * age
                h[np.searchsorted(bins, age * 1e6)] += k_def
            if c:
                if give_up:
                    o[O_T_GIVEUP] += 1.0
                o[O_KSWAPD_NS] += work_ns
                o[O_DEMOTED] += 512.0 if is_thp else dem
                o[O_EVICTED] += ev
            if survive:
                ln = int(st[P_LEN])
                idx = min(ln, _MAX_PENDING_BATCHES - 1)
                if ln < _MAX_PENDING_BATCHES:
                    pend_t[idx] = t + span
                    st[P_LEN] += 1.0
                pend_n[idx] += deferred_pages   # a full ring merges into its last slot
            tagged = k_def if (now_retired and not hold) else 0.0

            # freed pages: held (migrc_hold) or onto kswapd's pcp list, spilling to buddy.
            # Watermarks see NR_FREE_PAGES, i.e. buddy pages only: pcp pages count once
            # they spill, THPs at once, and held folios at once (v5-v8 adjusted
            # __zone_watermark_ok() by the pending folios).
            if hold:
                st[P_HELD] += deferred_pages
                freed = pages - deferred_pages
            else:
                freed = pages
                st[P_PCP] += deferred_pages
            st[P_PCP] += tagged      # freed carrying the retired generation
            if not is_thp:
                pcp_count += freed
            over = max(pcp_count - pcp_high, 0.0)
            spills = np.ceil(over / pcp_batch)
            spilled = min(spills * pcp_batch, pcp_count)
            clean = pcp_count - st[P_PCP]
            spilled_clean = min(clean, spilled)
            spilled_pend = spilled - spilled_clean
            if spilled_pend > 0:
                st[P_COVER] = 0.0
            elif st[P_BUDDY] > 0:
                st[P_COVER] += spilled_clean
            st[P_BUDDY] += spilled_pend
            st[P_PCP] -= spilled_pend
            pcp_count -= spilled
            # other CPUs' refills eat into the clean pages above the pending ones
            st[P_COVER] = max(st[P_COVER] - refill_rate * pcp_batch * span, 0.0)

            # Promotions are refused once free memory is below the high watermark: allocations
            # drain it through the step, and the step's freed pages only come at its end.
            rr = _reserve_rate(alloc, reserve, num_cpus, pcp_high)
            allowed = min(span, max(st[P_FREE] - whigh, 0.0) / max(alloc - rr, 1e-12))
            take = alloc * span - promote * (span - allowed)
            o[O_PROMOTED] += promote * _inside(t, allowed, end)
            from_reserve = min(rr * span, reserve, take)
            reserve -= from_reserve
            take -= from_reserve
            to_buddy = freed if is_thp else spilled
            st[P_FREE] = st[P_FREE] + to_buddy + (deferred_pages if hold else 0.0) - take
            swapped = _drain_swap(o, swapped, lam, t, span, end) + ev * P_i[I_REFAULT_SHARE]
            t = t + span
            burst = st[P_FREE] < wpromo
