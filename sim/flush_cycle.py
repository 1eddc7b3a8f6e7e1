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
    _S_TRIG, _S_TRIG2, _S_TRIG3, _S_TRIG4, _OUT, FlushTally, kernel_inputs,
    I_ALLOC, I_COPY_NS, I_EVICT, I_FLUSH_WAIT, I_LRU, I_MF, I_MIGRATE_NS, I_MIGRATING, I_NUM_CPUS,
    I_PCP_BATCH, I_PCP_HIGH, I_PROMOTE, I_P_ANY, I_RO_P, I_TARGETS, I_THP_P, I_WARMUP, I_WHIGH, I_WINDOW,
    I_WMIN, I_WPROMO, I_WRITE, O_ALLOC_WAIT, O_DEMOTED, O_EVICTED, O_FLUSHES, O_HELD_PEAK, O_HELD_S,
    O_KSWAPD_NS, O_KSWAPD_WAIT, O_PEND_PEAK, O_PEND_S, O_PROMOTED, O_REMOTE, O_STALE_PAGES, O_STALE_S,
    O_TARGETS, O_THREAD_WAIT, O_T_ALLOC, O_T_GIVEUP, O_T_MF, O_T_PIGGY, O_T_RECLAIM, O_T_WRITE, P_BUDDY,
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
    st[P_HELD] = 0.0   # held folios were already counted as free (RFC v2's watermark adjustment)
    st[P_LEN] = 0.0


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
def _trigger(P_i, st, span_s, quiet, hold, key, ctr, i):
    """Time to the first event that forces the pending flush, and its kind (_K_*)."""
    if not (_owed(st) and _tagged(st) > 0):
        return np.inf, _K_NONE
    num_cpus = P_i[I_NUM_CPUS]
    alloc = P_i[I_ALLOC]
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
def _integrate(o, st, pend_n, span_s, c):
    if c:
        pp = _pending_pages(st, pend_n)
        o[O_PEND_S] += pp * span_s
        o[O_PEND_PEAK] = max(o[O_PEND_PEAK], pp)
        o[O_HELD_S] += st[P_HELD] * span_s
        o[O_HELD_PEAK] = max(o[O_HELD_PEAK], st[P_HELD])


@njit(cache=True)
def _thread_flush(o, hist, P_i, st, pend_t, pend_n, t, first, kind, bins):
    """A thread pays the deferred flush: at an allocation, a write fault or a memory failure."""
    if kind == _K_NONE:
        return
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
    _retire(o, hist, st, pend_t, pend_n, at, c, bins)


@njit(cache=True)
def _reserve_rate(alloc, reserve, num_cpus, pcp_high):
    """Allocations per second served from pages kswapd left on other CPUs' pcp lists.

    Each CPU holding up to `pcp_high` such pages serves its own thread (1/num_cpus
    of the allocations) from them; about reserve/pcp_high CPUs hold some.
    """
    return min(alloc, alloc / num_cpus * reserve / max(pcp_high, 1.0))


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
        alloc, promote = P_i[I_ALLOC], P_i[I_PROMOTE]
        num_cpus = P_i[I_NUM_CPUS]
        refill_rate = alloc * max(num_cpus - 1, 0.0) / num_cpus / pcp_batch
        lru = P_i[I_LRU]
        flush_wait = P_i[I_FLUSH_WAIT]
        warmup = P_i[I_WARMUP]
        end = P_i[I_WINDOW]
        e = P_i[I_EVICT]
        ro_p = P_i[I_RO_P]

        t = -warmup
        burst = False
        pcp_count = 0.0
        # start near the reserve's steady state: a leftover list drains in ~high/(alloc/num_cpus),
        # many kswapd cycles, so about half of the other CPUs hold one at any time
        reserve = pcp_high * max(num_cpus - 1, 0.0) / 2
        st[:] = 0.0
        st[P_FREE] = wpromo
        pend_t[:] = 0.0
        pend_n[:] = 0.0

        while t < end:
            if not burst:
                # quiet phase: allocations take free memory down to the high watermark
                if alloc > 0:
                    span = max(st[P_FREE] - whigh, 0.0) / max(alloc - _reserve_rate(alloc, reserve, num_cpus, pcp_high),
                                                                 1e-12)
                    reserve = max(reserve - _reserve_rate(alloc, reserve, num_cpus, pcp_high) * span, 0.0)
                else:
                    span = end - t + 1e-9
                first, kind = _trigger(P_i, st, span, True, hold, key, ctr, i)
                c = (t >= 0) & (t < end)
                _integrate(o, st, pend_n, min(first, span), c)
                _thread_flush(o, h, P_i, st, pend_t, pend_n, t, first, kind, bins)
                if c:
                    o[O_PROMOTED] += promote * span
                t = t + span
                st[P_FREE] = min(st[P_FREE], whigh)
                # kswapd wakes; in migrc_hold it first flushes and frees what it holds
                if hold and st[P_HELD] > 0:
                    c = (t >= 0) & (t < end)
                    _add_flush(o, P_i, c)
                    if c:
                        o[O_KSWAPD_WAIT] += flush_wait
                        o[O_T_RECLAIM] += 1.0
                    _retire(o, h, st, pend_t, pend_n, t, c, bins)
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
            z = draw_normal(key, ctr, _S_EVICT, i)
            ev = 0.0
            dem = 0.0
            if small:
                ev = min(max(np.rint(lru * e + np.sqrt(lru * e * (1 - e)) * z), 0.0), lru)
                dem = lru - ev
            pages = 512.0 if is_thp else lru
            u_ro = draw_uniform(key, ctr, _S_RO, i)
            may_defer = defers & small & (st[P_FREE] > wmin)
            if luf:
                defer_set = u_ro < ro_p ** lru
            else:
                defer_set = (u_ro < ro_p ** dem) & (dem > 0)
            defer_set = defer_set & may_defer
            u_g = draw_uniform(key, ctr, _S_GIVEUP, i)
            give_up = defer_set & (u_g < min(1.0, st[P_THREAD_FLUSHES] / max(t + warmup, 1e-9) * flush_wait * 1e-9))
            defer_set = defer_set & (not give_up)
            deferred_pages = 0.0
            if defer_set:
                deferred_pages = lru if luf else dem

            # immediate flushes issued by kswapd in this step
            if pol == 0:
                nf = dem + (1.0 if ev > 0 else 0.0)
            else:
                nf = (1.0 if dem > 0 else 0.0) + (1.0 if ev > 0 else 0.0)
            if defers:
                nf = (1.0 if ev > 0 else 0.0) + (1.0 if (dem > 0) and not defer_set else 0.0)
            if luf and defer_set:
                nf = 0.0
            if is_thp:
                nf = 1.0
            if pol == 5:
                nf = 0.0
            if is_thp:
                work_ns = 512 * P_i[I_COPY_NS] + P_i[I_MIGRATE_NS]
            else:
                work_ns = dem * P_i[I_COPY_NS] + lru * P_i[I_MIGRATE_NS]
            span = (work_ns + nf * flush_wait) * 1e-9

            # events that fire for older pending pages while kswapd works
            first, kind = _trigger(P_i, st, span, False, hold, key, ctr, i)
            c = (t >= 0) & (t < end)
            _integrate(o, st, pend_n, min(first, span), c)
            _thread_flush(o, h, P_i, st, pend_t, pend_n, t, first, kind, bins)
            # kswapd's own flushes: each one costs a shootdown; the first covers what is pending
            had = _owed(st) & (nf > 0)
            k = 0
            while k < nf:
                _add_flush(o, P_i, c)
                if c:
                    o[O_KSWAPD_WAIT] += flush_wait
                k += 1
            if had:
                # a give-up's flush is counted as the give-up: the deferral was abandoned
                # because another CPU was already flushing
                if c and not give_up:
                    o[O_T_PIGGY] += 1.0
                _retire(o, h, st, pend_t, pend_n, t, c, bins, True)
            if c:
                if give_up:
                    o[O_T_GIVEUP] += 1.0
                o[O_KSWAPD_NS] += work_ns
                o[O_DEMOTED] += 512.0 if is_thp else dem
                o[O_EVICTED] += ev
            if defer_set:
                ln = int(st[P_LEN])
                idx = min(ln, _MAX_PENDING_BATCHES - 1)
                if ln < _MAX_PENDING_BATCHES:
                    pend_t[idx] = t + span
                    st[P_LEN] += 1.0
                pend_n[idx] += deferred_pages   # a full ring merges into its last slot

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

            # promotions are refused while free memory is below the high watermark
            if st[P_FREE] >= whigh:
                take = alloc * span
                if c:
                    o[O_PROMOTED] += promote * span
            else:
                take = (alloc - promote) * span
            from_reserve = min(_reserve_rate(alloc, reserve, num_cpus, pcp_high) * span, reserve, take)
            reserve -= from_reserve
            take -= from_reserve
            to_buddy = freed if is_thp else spilled
            st[P_FREE] = st[P_FREE] + to_buddy + (deferred_pages if hold else 0.0) - take
            t = t + span
            burst = st[P_FREE] < wpromo
