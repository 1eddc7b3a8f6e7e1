"""The flush process of kswapd reclaim cycles, simulated per lane by a numba kernel.

Free memory on the fast node falls from the promo watermark to the high one
while promotions and other allocations take pages; then kswapd wakes on some
CPU and reclaims LRU batches (or single THPs) until free memory is back at the
promo watermark. Each step of a lane is a whole quiet phase, or one kswapd batch.
Free memory (NR_FREE_PAGES, buddy pages only) moves by whole pcp batches: other
CPUs refill their lists `batch` pages at a time (each list runs empty about once
a cycle of its CPU's allocations: pcp_clocks.py) and kswapd's list spills `batch`
pages at a time.

Under migrc, a batch whose folios are all mapped read-only is freed carrying a
pending flush instead of being flushed. The freed pages land on the kswapd
CPU's pcp list (top), spill to the buddy list in pcp-batch chunks from the
list's tail, and the deferred flush is paid by the first thread that takes a
pending page (its own CPU's pcp, or a pcp refill from the buddy head), by a
write fault, by a memory failure, or is covered ("piggyback") by any normal
flush of the same mm.

The loop over lanes and steps runs in `_cycles_kernel` (numba, compiled once and
cached on disk), which takes kswapd's steps itself; a quiet phase and kswapd's wake
are in quiet_phase.py, and the events they are made of in flush_events.py. It replaced a
numpy lock-step loop over all lanes, which was bound by Python overhead (~150
numpy calls per step); that loop survives as the test oracle in
tests/engine/numpy_oracle.py, and the kernel reproduces it draw for draw. Lanes
are independent: a lane's tally depends only on its own parameters and seed.
"""

from __future__ import annotations

import numpy as np
from .jit_cache import njit  # numba's, with sim's cache stamp installed

from .rng import LaneRandom, draw_poisson, draw_uniform
from .steady import Flows

from .quiet_phase import kswapd_wake, quiet_phase
from .pcp_clocks import refill_events, refill_rate_now, start_clocks, walk_start
from .flush_events import (
    add_flush, drain_reserve, drain_swap, eat_buddy, eat_buddy_head, in_window, integrate, mean_alloc,
    old_list_rate, old_tag_rate, owed, pending_pages, pop_spread, pop_tags, racer_own_rate, refill_rate,
    reserve_rate, retire, spill_pages, spill_tags, spin_wait_ns, split_batch, spread_onto_list, spread_rate_now,
    start_free, tagged_alloc_rate, thread_flush, trigger,
)
from .flush_layout import (  # the kernel compiles these in as constants
    I_MF, I_WRITE, O_ALLOC_WAIT, O_THREAD_WAIT, O_T_ALLOC, O_T_MF, O_T_WRITE,
    FlushTally, I_ALLOC, I_COPY_NS, I_EVICT, I_FLUSH_WAIT, I_LRU, I_MIGRATE_NS, I_NUM_CPUS,
    I_PCP_BATCH, I_PCP_HIGH, I_PROMOTE, I_REFAULT, I_REFAULT_LAM, I_REFAULT_SHARE, I_RO_COLD, I_RO_HOT,
    I_THP_ALLOC, I_WAVE, PROFILE_BINS, I_COLD_SHARE, I_COLD_PROMOTE, I_THP_P, I_WARMUP,
    I_WHIGH, I_WINDOW, I_WMIN, I_WPROMO, O_DEMOTED, O_EVICTED, O_KSWAPD_NS, O_KSWAPD_WAIT, O_PEND_PEAK, O_PEND_S,
    O_PROMOTED, O_STALE_PAGES, O_STALE_S, O_T_GIVEUP, O_T_PIGGY, P_AHEAD, P_BUDDY, P_BUDDY_GAP, P_COVER, P_FREE,
    P_OLD, P_OLD_CPU, P_OLD_MIXED, P_OLD2, P_OLD2_CPU, P_OLD2_MIXED, P_SP_AT, P_SP_CPU, P_SP_RATE, P_SPREAD, P_HELD,
    P_LEN, P_PCP, P_FLUSH_END,
    P_SIZE, STALE_BINS_US, W_T_SP, WALK_SIZE, _K_NONE, _MAX_PENDING_BATCHES, _OUT, _S_COLD, _S_RACE, _S_START,
    _S_STEP_ALLOCS, _S_THP, kernel_inputs,
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
def _cycles_kernel(P, policy, keys, ctr, bins, out, hist):
    n = P.shape[0]
    pend_t = np.zeros(_MAX_PENDING_BATCHES)
    pend_n = np.zeros(_MAX_PENDING_BATCHES)
    st = np.zeros(P_SIZE)
    w = np.zeros(WALK_SIZE)
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
        ro_cold, ro_hot = P_i[I_RO_COLD], P_i[I_RO_HOT]
        cold_share, cold_promote = P_i[I_COLD_SHARE], P_i[I_COLD_PROMOTE]
        one_cpu = num_cpus <= 1       # kswapd shares its CPU with the thread
        # THP promotions: 512-page lumps from buddy that no pcp list serves (the fluid
        # one-CPU path keeps them among the rest)
        thp = 0.0 if one_cpu else P_i[I_THP_ALLOC]
        wave = P_i[I_WAVE:I_WAVE + PROFILE_BINS]      # small promotions between THP hint faults

        t = -warmup
        burst = False
        # The LRU holds small_per_thp small folios between two THPs on average, and
        # `to_thp` of them are left before the next one: the run starts part-way through.
        thp_p = P_i[I_THP_P]
        small_per_thp = lru * (1.0 - thp_p) / thp_p if thp_p > 0 else np.inf
        u_thp = draw_uniform(key, ctr, _S_THP, i)      # taken anyway: runs keep their streams
        to_thp = np.floor(u_thp * small_per_thp) if thp_p > 0 else np.inf
        # THP hint faults come every thp_gap seconds, the next in thp_due: the scanner sweeps
        # the address space at a steady pace and THPs lie evenly in it (in the reference their
        # gaps vary by 5%), so the THP that takes free memory below high wakes kswapd and the
        # next comes a whole gap later, after the burst (the reference refused none of 76 in
        # thp_all, where Poisson arrivals fell in the burst they had just started 2% of the time)
        thp_gap = 512.0 / thp if thp > 0 else np.inf
        thp_due = draw_uniform(key, ctr, _S_THP, i) * thp_gap if thp > 0 else np.inf
        cold_pages = 0.0      # on the inactive LRU list, waiting for kswapd
        pcp_count = 0.0
        # one CPU only: what kswapd left on the one list beyond the refill it holds, which
        # the thread takes before it refills again (with more CPUs every list is a clock)
        reserve = 0.0
        st[:] = 0.0
        st[P_FLUSH_END] = -np.inf
        st[P_SP_RATE] = -1.0 if one_cpu else 0.0      # one CPU: refilled tagged pages are a pool
        st[P_FREE] = start_free(wpromo, whigh, pcp_batch, draw_uniform(key, ctr, _S_START, i))
        if thp > 0:
            # The reference fills the fast node folio by folio up to that level: where the
            # folio that does not fit is a THP (their share of the pages), it starts up to
            # 511 pages higher, off the lattice of whole batches free memory then moves on
            # (so a phase that ends on a spill stops anywhere up to a batch past promo,
            # not at promo itself, and needs a refill more to wake kswapd as often)
            u_thp_start = draw_uniform(key, ctr, _S_START, i)
            lump = np.floor(draw_uniform(key, ctr, _S_START, i) * 512.0)
            if u_thp_start * promote < thp:
                st[P_FREE] += lump
        pend_t[:] = 0.0
        pend_n[:] = 0.0
        # every CPU's pcp list, each part-way through its refill cycle (pcp_clocks)
        due = np.empty(0 if one_cpu else int(num_cpus))
        start_clocks(key, ctr, i, due, pcp_batch, pcp_high)
        clock = 0.0

        while t < end:
            if not burst:
                woke, t, swapped, reserve, pcp_count, cold_pages, thp_due, clock = quiet_phase(
                    P_i, hold, base_alloc, thp, thp_gap, key, ctr, i, st, pend_t, pend_n, o, h, bins, due, w, t, end,
                    swapped, reserve, pcp_count, cold_pages, thp_due, clock)
                if not woke:
                    continue            # a release cut the phase, and kswapd sleeps on
                burst, t, swapped, reserve, pcp_count, cold_pages, thp_due, clock = kswapd_wake(
                    P_i, hold, base_alloc, thp_gap, key, ctr, i, st, pend_t, pend_n, o, h, bins, due, w, t, end,
                    swapped, reserve, pcp_count, cold_pages, thp_due, clock)
                if not t < end:
                    break
            if not burst:
                continue

            # one kswapd step: an LRU batch of small folios, or one THP. THPs lie evenly
            # among the small folios (the share the parameter gives, in any stretch of the
            # LRU), not at geometric gaps: a long run of small batches has no THP flush to
            # retire what migrc defers. The small folios between two THPs are the small
            # allocations made between two THP promotions, a Poisson count, and the batch
            # that reaches a THP stops short of it (a batch of small folios takes no large
            # one). With whole batches between THPs, kswapd took 16 small steps between two
            # THPs at thp_half every time, where the reference takes 16 or 17, the last one
            # short, and thp_half/batched made 4.85% fewer shootdowns than the reference.
            is_thp = to_thp <= 0
            n_small = lru
            if is_thp:
                to_thp = draw_poisson(key, ctr, _S_THP, i, small_per_thp)
            else:
                n_small = min(lru, to_thp)
                to_thp -= n_small
            small = not is_thp
            # the inactive list's folios go first: a batch takes what has gathered there
            n_cold = min(cold_pages, n_small) if small else 0.0
            cold_pages -= n_cold
            ev, dem, dirty, left, ro_dem = split_batch(key, ctr, i, n_small, e, ro_cold, ro_hot, n_cold, small)
            pages = 512.0 if is_thp else n_small
            may_defer = defers & small & (st[P_FREE] > wmin)
            # read-only folios handed to migrc (LUF: the clean evicted ones too)
            k_def = ro_dem + ((ev - dirty) if luf else 0.0) if may_defer else 0.0
            cand = k_def > 0
            # migrc_add_pending_ubc() gives up while a thread's deferred flush is running
            # (on_flushing): one that started before this batch was unmapped, after the
            # dirty evictions' flushes
            give_up = cand & (t + dirty * flush_wait * 1e-9 < st[P_FLUSH_END])
            owed_before = owed(st)      # older deferrals, pending as the step starts
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
                work_ns = dem * P_i[I_COPY_NS] + n_small * P_i[I_MIGRATE_NS]
            span = (work_ns + nf * flush_wait) * 1e-9
            alloc = mean_alloc(base_alloc, swapped, lam, span)

            # Promotions are refused once free memory is below the high watermark: allocations
            # drain it through the step, and the step's freed pages only come at its end.
            rr = reserve_rate(alloc - thp, reserve, num_cpus, pcp_high)
            old_frozen = True
            old2_frozen = True
            sp_live = False
            t_spread = -1.0
            clock0 = clock
            if one_cpu:
                # the thread allocates from kswapd's own list through the step (see from_pcp)
                allowed = min(span, max(st[P_FREE] - whigh, 0.0) / max(alloc - rr, 1e-12))
                refilled = 0.0
                t_buddy = -1.0
                thp_taken = 0.0
            else:
                # the others' threads allocate on their lists' clocks (kswapd's CPU's faults
                # go to another CPU), only what promotions refused leave while below high
                off = max(alloc - promote, 0.0)
                old_frozen = not due[int(st[P_OLD_CPU])] < np.inf
                old2_frozen = not due[int(st[P_OLD2_CPU])] < np.inf
                sp_live = st[P_SPREAD] > 0 and due[int(st[P_SP_CPU])] < np.inf
                walk_start(w, st[P_COVER], st[P_BUDDY], st[P_BUDDY_GAP], st[P_SP_AT] if sp_live else np.inf)
                allowed, refilled, thp_taken, t_buddy, thp_due, clock = refill_events(
                    key, ctr, i, span, st[P_FREE], whigh, max(alloc - thp, 0.0) / (num_cpus - 1.0),
                    off / (num_cpus - 1.0), thp_due, thp_gap, wave, pcp_batch, st[P_COVER], due, clock, w)
                t_spread = w[W_T_SP]
            # small-folio allocations as a fluid, THP promotions as the lumps drawn
            take = (alloc - thp) * span - (promote - thp) * (span - allowed) + thp_taken
            cold_pages += draw_poisson(key, ctr, _S_COLD, i,
                                       max(cold_share * alloc * span - cold_promote * promote * (span - allowed), 0.0))

            # events that fire for older pending pages while kswapd works, at the step's
            # allocation rate (promotions refused part of it); old kswapd CPUs' threads pop
            # their lists only for the small allocations the step makes: with promotions
            # refused, often none
            # (with one CPU, the thread keeps running there and takes kswapd's freed pages)
            if one_cpu:
                refills = refill_rate(take / span, rr, num_cpus, pcp_batch)
                old_rate = old_tag_rate(st, reserve_rate(max(take - thp_taken, 0.0) / span, reserve, num_cpus,
                                                         pcp_high), reserve)
            else:
                small_speed = max(take - thp_taken, 0.0) / span / (num_cpus - 1.0)
                refills = refill_rate_now(due, clock, small_speed, pcp_batch)
                old_rate = old_list_rate(st, old_frozen, old2_frozen, small_speed)
                st[P_SP_RATE] = spread_rate_now(st, clock, small_speed) if sp_live else 0.0
            # kswapd's first flush, once done, retires what is pending: the first dirty one,
            # or migrate_pages_batch()'s; a thread can only pay it before then
            fw_s = flush_wait * 1e-9
            t_k = fw_s if n_before > 0 else ((n_before + 1.0) * fw_s if after else np.inf)
            # pcp lists serve the small allocations only: THP promotions take from buddy
            small_rate = (take - thp_taken) / span
            first, kind, own_rate = trigger(P_i, st, min(span, t_k), one_cpu, hold, key, ctr, i, small_rate, refills,
                                            old_rate, t_buddy, t_spread)
            eaten = refills * pcp_batch * min(first, span)     # of the clean pages over the tagged ones
            need = P_i[I_WRITE] + P_i[I_MF] + tagged_alloc_rate(st, hold, small_rate, refills, num_cpus, one_cpu,
                                                                old_rate, pcp_batch, eaten)
            c = (t >= 0) & (t < end)
            integrate(o, st, pend_n, t, min(first + fw_s, t_k, span), end)
            pp_at_flush = pending_pages(st, pend_n) if kind != _K_NONE else 0.0
            # held pages a flush releases go to the pcp list kswapd freed them from: this one
            pcp_count += thread_flush(o, h, P_i, st, pend_t, pend_n, t, first, kind, bins, need - own_rate)
            pp_before = pending_pages(st, pend_n) if cand else 0.0    # for a deferral's pending peak
            # kswapd's own flushes: each costs a shootdown; the first retires what is pending
            k = 0
            while k < nf:
                add_flush(o, P_i, c)
                if c:
                    o[O_KSWAPD_WAIT] += flush_wait
                k += 1
            if owed(st) & (n_before > 0):
                if c:
                    o[O_T_PIGGY] += 1.0
                pcp_count += retire(o, h, st, pend_t, pend_n, t + fw_s, c, bins, True)
            # a deferral that the step's own flush retires at once (v9 keeps its generation)
            now_retired = cand & (not give_up) & after
            # While kswapd's own flush is in flight the deferral already sits in migrc's
            # batch: a write fault or memory failure on another CPU then runs migrc_flush()
            # and pays it (with whatever was pending), and the generation advances; so does
            # an allocation that takes a page still tagged with the generation kswapd's
            # earlier flushes retired, which this deferral reuses (check_migrc_flush()).
            r_mf = P_i[I_MF]
            r_wf = r_mf + P_i[I_WRITE]
            r_all = r_wf + tagged_alloc_rate(st, hold, small_rate, refills, num_cpus, one_cpu, old_rate, pcp_batch)
            p_race = 1.0 - np.exp(-r_all * flush_wait * 1e-9)
            u_race = draw_uniform(key, ctr, _S_RACE, i)
            raced = now_retired & (u_race < p_race)
            if raced:
                # Not counted among the thread flushes a later deferral may give up on: this
                # one ends within a flush of kswapd's own, before its next batch is unmapped.
                add_flush(o, P_i, c)
                if c:
                    # its spinners are the others that need the generation, not its own CPU
                    own = racer_own_rate(st, hold, small_rate, num_cpus, one_cpu, old_rate, pcp_batch, r_all)
                    o[O_THREAD_WAIT] += flush_wait + spin_wait_ns(P_i, r_all - own)
                    if u_race * r_all < p_race * r_mf:
                        o[O_T_MF] += 1.0
                    elif u_race * r_all < p_race * r_wf:
                        o[O_T_WRITE] += 1.0
                    else:
                        o[O_T_ALLOC] += 1.0
                        o[O_ALLOC_WAIT] += flush_wait
            # the step's last flush is done at t_last; a thread that raced it started during
            # it and is done one flush later
            t_last = (n_before + 1.0 + (u_race / p_race if raced else 0.0)) * fw_s
            if raced:
                pcp_count += retire(o, h, st, pend_t, pend_n, t + t_last, c, bins)
            elif (owed(st) & after) | now_retired:
                # a give-up's flush is counted as the give-up: the deferral was abandoned
                # because another CPU was already flushing
                if c and not give_up:
                    o[O_T_PIGGY] += 1.0
                pcp_count += retire(o, h, st, pend_t, pend_n, t + t_last, c, bins, True)
            if now_retired:
                # pending from the unmapping to the step's last flush, with whatever older
                # deferral no dirty flush before it had already retired
                age = t_last
                o[O_PEND_S] += k_def * in_window(t, age, end)
                if c:
                    o[O_PEND_PEAK] = max(o[O_PEND_PEAK], k_def + (pp_before if n_before == 0 else 0.0))
            if now_retired and c:
                o[O_STALE_PAGES] += k_def
                o[O_STALE_S] += k_def * age
                h[np.searchsorted(bins, age * 1e6)] += k_def
            if c:
                if give_up:
                    o[O_T_GIVEUP] += 1.0
                o[O_KSWAPD_NS] += work_ns
                o[O_DEMOTED] += 512.0 if is_thp else dem
                o[O_EVICTED] += ev
            if survive and kind != _K_NONE and n_before == 0:
                # migrc_ubc held this batch from its unmapping at the step's start, so the
                # thread's flush above covered it too: it is retired there, and its pages
                # are freed with a generation already done.
                at = t + first
                o[O_PEND_S] += deferred_pages * in_window(t, first + fw_s, end)
                if (at >= 0) & (at < end):
                    o[O_PEND_PEAK] = max(o[O_PEND_PEAK], pp_at_flush + deferred_pages)
                    o[O_STALE_PAGES] += deferred_pages
                    o[O_STALE_S] += deferred_pages * (first + fw_s)
                    h[np.searchsorted(bins, (first + fw_s) * 1e6)] += deferred_pages
                deferred_pages = 0.0
            elif survive:
                # The batch is pending, and its stale window open, from its unmapping at the
                # step's start: the copy and the free come after (migrate_pages_batch()).
                ln = int(st[P_LEN])
                if ln < _MAX_PENDING_BATCHES:
                    pend_t[ln] = t
                    pend_n[ln] += deferred_pages
                    st[P_LEN] += 1.0
                else:
                    # a full ring merges into its last slot at the pages' mean unmapping
                    # time, which keeps the stale windows' mean. (Merged at the slot's own
                    # time, with 256 slots, lru_batch_1's bursts of ~500 one-folio steps came
                    # out 6.6% stale: their later deferrals took an earlier one's time.)
                    last = _MAX_PENDING_BATCHES - 1
                    pend_t[last] += (t - pend_t[last]) * deferred_pages / max(pend_n[last] + deferred_pages, 1e-300)
                    pend_n[last] += deferred_pages
                # A write fault, memory failure or tagged allocation while kswapd copies pays
                # it then, as it pays older deferrals (the trigger above) when there are any
                # and no flush of kswapd's retired them first. Left to the next step, such a
                # flush never ran into kswapd's next deferral: mostly_read_only_writes gave
                # up 2% as often as the reference.
                pp = pending_pages(st, pend_n)
                held_for = span
                paid = False
                if n_before > 0 or not owed_before:
                    a = n_before * fw_s
                    first2, kind2, own2 = trigger(P_i, st, span - a, one_cpu, hold, key, ctr, i, small_rate, refills,
                                                  old_rate, -1.0, max(t_spread - a, 0.0) if t_spread >= 0 else -1.0)
                    paid = kind2 != _K_NONE
                    if paid:
                        held_for = a + first2 + fw_s
                        pcp_count += thread_flush(o, h, P_i, st, pend_t, pend_n, t + a, first2, kind2, bins,
                                                  need - own2)
                inside = in_window(t, held_for, end)
                if inside > 0:
                    o[O_PEND_S] += deferred_pages * inside
                    o[O_PEND_PEAK] = max(o[O_PEND_PEAK], pp)
                if paid:
                    deferred_pages = 0.0        # freed with a generation already done
            tagged = k_def if (now_retired and not hold and not raced) else 0.0

            # other CPUs' refills (and THP promotions) through the step ate the buddy head as
            # it was before the step's spills
            if one_cpu:
                eat_buddy(st, 0.0, 1.0, take / span, num_cpus, pcp_batch, span)
            else:
                # the tagged pages they took went onto a list (unless a flush made them
                # harmless), and its thread popped what it reached
                if st[P_BUDDY] > 0:
                    spread_onto_list(st, w, pcp_batch)
                if due[int(st[P_SP_CPU])] < np.inf:
                    pop_spread(st, clock)
                eat_buddy_head(st, refilled + thp_taken)

            # With one CPU the thread's allocations through the step pop kswapd's pcp list,
            # which kswapd keeps filling: none of them refills from buddy, so free memory
            # moves by whole spills and stays on the batches' lattice. They are events: their
            # count varies, and with it the step whose frees spill the burst to its end (a
            # fluid count made every one-CPU burst 18 or 20 steps long where the reference's
            # are 18 or 19, and as the thread's flushes alternate from step to step, 70% of
            # them ended with a deferral pending, the reference's 56%).
            if one_cpu:
                take = draw_poisson(key, ctr, _S_STEP_ALLOCS, i, take)
            from_pcp = min(take, pcp_count) if one_cpu else 0.0
            pcp_count -= from_pcp
            take -= from_pcp
            st[P_PCP] = min(st[P_PCP], pcp_count)      # (a pop of a tagged page drawn apart from the trigger)
            st[P_AHEAD] = min(st[P_AHEAD], max(pcp_count - st[P_PCP], 0.0))

            # freed pages: held (migrc_hold) or onto kswapd's pcp list, spilling to buddy.
            # Watermarks see NR_FREE_PAGES, i.e. buddy pages only: pcp pages count once
            # they spill, THPs at once, and held folios at once (v5-v8 adjusted
            # __zone_watermark_ok() by the pending folios).
            if hold:
                st[P_HELD] += deferred_pages
                freed = pages - deferred_pages
                new_tags = tagged
            else:
                freed = pages
                new_tags = deferred_pages + tagged    # tagged: freed carrying the retired generation
            # Nothing allocates from kswapd's list while kswapd runs there (its CPU's thread
            # is preempted; one CPU aside), so it spills in the order it was filled, from the
            # tail: the pages older than its oldest tagged one go first, then the rest, where
            # later batches' clean pages lie among the tags. A step frees its flushed folios
            # first and its tagged ones last.
            if st[P_PCP] <= 0 and new_tags > 0:
                st[P_AHEAD] = pcp_count + freed - new_tags
            st[P_PCP] += new_tags
            if not is_thp:
                pcp_count += freed
            spilled = spill_pages(pcp_count, pcp_high, pcp_batch)
            from_ahead = min(spilled, st[P_AHEAD])
            mixed = pcp_count - st[P_AHEAD]
            spilled_pend = min((spilled - from_ahead) * st[P_PCP] / mixed, st[P_PCP]) if mixed > 0 else 0.0
            st[P_AHEAD] -= from_ahead
            spilled_clean = spilled - spilled_pend
            if not one_cpu:
                # a THP's frames go straight onto the buddy head too, clean, over its tagged
                # pages (left under kswapd's spills, refills took them onto their lists while
                # nothing was pending: 169 there at a deferral, the reference's 5)
                spill_tags(st, spilled + (freed if is_thp else 0.0), spilled_pend, spilled - from_ahead)
            else:
                # (one CPU: its thread takes the spilled pages back a batch at a time, the
                # tagged ones together on top)
                if spilled_pend > 0:
                    st[P_COVER] = 0.0
                elif st[P_BUDDY] > 0:
                    st[P_COVER] += spilled_clean
                st[P_BUDDY] += spilled_pend
            st[P_PCP] -= spilled_pend
            pcp_count -= spilled
            if one_cpu:
                # the thread's refills eat into the clean pages above the pending ones
                st[P_COVER] = max(st[P_COVER] - refills * pcp_batch * span, 0.0)

            o[O_PROMOTED] += (promote - thp) * in_window(t, allowed, end) + (thp_taken if c else 0.0)
            take -= thp_taken
            to_buddy = freed if is_thp else spilled
            if one_cpu:
                from_reserve = min(rr * span, reserve, take)
                reserve = drain_reserve(st, reserve, from_reserve)
                take -= from_reserve
            else:
                # buddy lost the refills (whole batches, which the lists hold until popped)
                # and the THP promotions
                if not old_frozen:
                    pop_tags(st, P_OLD, P_OLD_MIXED, clock - clock0)
                if not old2_frozen:
                    pop_tags(st, P_OLD2, P_OLD2_MIXED, clock - clock0)
                take = refilled + thp_taken
            st[P_FREE] = st[P_FREE] + to_buddy + (deferred_pages if hold else 0.0) - take
            swapped = drain_swap(o, swapped, lam, t, span, end) + ev * P_i[I_REFAULT_SHARE]
            t = t + span
            burst = st[P_FREE] < wpromo
