"""A quiet phase of the flush process, and kswapd's wake at its end.

Between two kswapd bursts, allocations on every CPU take free memory down from
where the last burst left it to where kswapd wakes: the high watermark (or, under
migrc_hold, buddy pages alone below min). A phase is one step of a lane in
`flush_cycle._cycles_kernel`; it runs the events that fire for pending deferrals
while it lasts (a thread's flush, which under migrc_hold cuts the phase), and
`kswapd_wake` then picks the CPU kswapd runs on and the pcp list it finds there.
"""

from __future__ import annotations

import numpy as np
from .jit_cache import njit  # numba's, with sim's cache stamp installed

from .rng import draw_gamma, draw_poisson, draw_uniform
from .pcp_clocks import list_due, list_pages, quiet_refills, refill_events, walk_start, wave_integral
from .flush_events import (
    add_flush, drain_reserve, drain_swap, drain_swap_pages, eat_buddy, eat_buddy_head, in_window, integrate,
    leave_list, mean_alloc, old_list_rate, old_tag_rate, pop_tags, pop_spread, quiet_fixed_point, refill_rate,
    release_held, reserve_rate, retire, spread_onto_list, spread_rate_now, tagged_alloc_rate, thp_hint_faults,
    thp_in_window, thread_flush, trigger,
)
from .flush_layout import (  # the kernel compiles these in as constants
    I_COLD_PROMOTE, I_COLD_SHARE, I_FLUSH_WAIT, I_MF, I_MIGRATING, I_NUM_CPUS, I_PCP_BATCH, I_PCP_HIGH,
    I_PROMOTE, I_REFAULT_LAM, I_WAVE, PROFILE_BINS, I_WHIGH, I_WMIN, I_WPROMO, I_WRITE, O_KSWAPD_WAIT, O_PROMOTED,
    O_T_RECLAIM, P_AHEAD, P_COVER, P_FREE, P_HELD, P_K_MIXED, P_KCPU, P_OLD, P_OLD_MIXED, P_OLD2, P_OLD2_MIXED, P_PCP,
    P_SP_AT, P_SP_CPU, P_SP_RATE, P_BUDDY, P_BUDDY_GAP, P_SPREAD, W_T_SP, _K_NONE, _S_CLOCK, _S_COLD, _S_PCP,
    _S_STEP_ALLOCS,
)


@njit(cache=True)
def quiet_phase(P_i, hold, base_alloc, thp, thp_gap, key, ctr, i, st, pend_t, pend_n, o, h, bins, due, w, t, end,
                swapped, reserve, pcp_count, cold_pages, thp_due, clock):
    """One quiet phase of lane `i`, from free memory `st[P_FREE]` at time `t` to kswapd's
    wake (or to a migrc_hold release that leaves free memory at or above high, so that
    kswapd sleeps on). Returns (kswapd wakes, and the lane's state after the phase: t,
    swapped, reserve, pcp_count, cold_pages, thp_due, clock)."""
    wmin, whigh = P_i[I_WMIN], P_i[I_WHIGH]
    pcp_batch, pcp_high = P_i[I_PCP_BATCH], P_i[I_PCP_HIGH]
    num_cpus = P_i[I_NUM_CPUS]
    one_cpu = num_cpus <= 1
    wave = P_i[I_WAVE:I_WAVE + PROFILE_BINS]
    s_wave = 0.0
    promote, lam, flush_wait, cold_share = P_i[I_PROMOTE], P_i[I_REFAULT_LAM], P_i[I_FLUSH_WAIT], P_i[I_COLD_SHARE]
    alloc = base_alloc + swapped * lam
    # migrc_hold's held folios count as free, but buddy pages alone below the min
    # watermark wake kswapd too (the reference's 645-page wakes: 576 held, buddy
    # 69 < min 102; 5 of 53 at the seed's sizes). Waking at high only, the fast
    # engine's cycles ran ~2% long, and its flush counts ~2% short.
    wake_at = max(whigh, wmin + st[P_HELD]) if hold and st[P_HELD] > 0 else whigh
    drop = max(st[P_FREE] - wake_at, 0.0)
    saved = due            # (more than one CPU: the lists' clocks before the walk, below)
    c0 = ctr[_S_CLOCK, i]
    clock0 = clock
    speed = 0.0
    if one_cpu:
        # One CPU: its thread pops what kswapd left on its own list, then refills it a batch
        # at a time, free memory falling on the batches' lattice to the refill that takes it
        # below where kswapd wakes (whose first page it takes); at the phase's mean rate,
        # its allocations events, so the phase lasts a Gamma of them (CV 0.05 at one_cpu's
        # sizes, the reference's 0.04; as a fluid 0.02, and runs that all start in a quiet
        # phase stayed in step long after the warm-up: demotions over a window rang by 2%)
        k_refills = np.floor(drop / pcp_batch) + 1.0
        pages = pcp_batch * (k_refills - 1.0) + 1.0
        alloc, rr, span, used = quiet_fixed_point(base_alloc, swapped, lam, alloc, thp, reserve, num_cpus,
                                                  pcp_high, pages, end - t)
        n_allocs = used + pages
        if alloc > 0 and n_allocs >= 1.0:
            span *= draw_gamma(key, ctr, _S_STEP_ALLOCS, i, n_allocs) / n_allocs
        rr = 0.5 * (rr + reserve_rate(alloc - thp, max(reserve - used, 0.0), num_cpus, pcp_high))
        refills = refill_rate(alloc, rr, num_cpus, pcp_batch)
        old_rate = old_tag_rate(st, rr, reserve)
        t_buddy = -1.0
        taken = pcp_batch * k_refills
        n_thp = 0.0
    else:
        # The list kswapd left starts running again: its thread pops what kswapd left there
        k_cpu = int(st[P_KCPU])
        if not due[k_cpu] < np.inf:
            due[k_cpu] = list_due(key, ctr, i, clock, pcp_count)
            # its tagged pages lie among those kswapd freed after the oldest of them
            st[P_K_MIXED] = max(pcp_count - st[P_AHEAD], st[P_PCP]) if st[P_PCP] > 0 else 0.0
        saved = due.copy()
        c0 = ctr[_S_CLOCK, i]
        # Every CPU's thread allocates small pages on its list's clock until a refill (or a
        # THP promotion) takes free memory below where kswapd wakes: phases vary in length
        # as the lists' cycles fall (CV 0.34 at the seed's sizes, the reference's 0.30-0.34),
        # and a long one is followed by a short one. (A fluid drain made every phase of one
        # length, and migrc_hold's stale windows, which last a phase, 22% short at their p99.)
        # Refaults slow down as the swap pool drains over the phase: walked at the starting
        # rate, then again from the same draws at the mean rate over the span found.
        # (a list a refill filled with tagged pages pops them when the clock reaches P_SP_AT)
        sp_at = st[P_SP_AT] if st[P_SPREAD] > 0 else np.inf
        for it in range(2):
            speed = max(alloc - thp, 0.0) / num_cpus
            # (the promotions, in the wave, where THPs space out the small folios)
            s_wave = max(promote - thp, 0.0) / num_cpus if thp_gap < np.inf else 0.0
            walk_start(w, st[P_COVER], st[P_BUDDY], st[P_BUDDY_GAP], sp_at)
            _, span, n_thp, after, clock, t_reach, refilled = quiet_refills(
                key, ctr, i, st[P_FREE], wake_at, speed - s_wave, s_wave, thp_due, thp_gap, wave, pcp_batch,
                st[P_COVER], due, clock0, end - t + 1e-9, w)
            if lam <= 0 or it == 1:
                break
            alloc = mean_alloc(base_alloc, swapped, lam, span)
            due[:] = saved
            ctr[_S_CLOCK, i] = c0
        taken = st[P_FREE] - after
        t_buddy = t_reach
        refills = refilled / pcp_batch / max(span, 1e-12)
        old_rate = old_list_rate(st, False, False, speed)
        st[P_SP_RATE] = spread_rate_now(st, clock0, speed)
        used = 0.0
    # (pcp lists serve the small allocations only: THP promotions take from buddy)
    first, kind, own_rate = trigger(P_i, st, span, True, hold, key, ctr, i, alloc - thp, refills, old_rate, t_buddy,
                                    -1.0 if one_cpu else w[W_T_SP])
    # migrc_hold: the flush frees the folios held, which NR_FREE_PAGES counted, onto
    # kswapd's last list, spilling past its high mark. The phase is cut there: if
    # free memory is now below high, kswapd wakes at the next allocation or refused
    # promotion; if not, a new phase starts from the new level. (Run on to high
    # with the held pages taken off after, a phase ended them below high, and the
    # next burst ran that much longer: memory_failures/migrc_hold's pending peak
    # was 1.9x the reference's.)
    cut = hold and kind != _K_NONE
    if cut:
        at = min(first + flush_wait * 1e-9, span)
        if one_cpu:
            used *= at / span
            taken = taken * at / span
        else:
            # the same walk, from the same draws, up to the cut: free memory stands where
            # the refills before it left it, on the phase's lattice of whole batches
            due[:] = saved
            ctr[_S_CLOCK, i] = c0
            walk_start(w, st[P_COVER], st[P_BUDDY], st[P_BUDDY_GAP], sp_at)
            _, _, n_thp, after, clock, _, _ = quiet_refills(
                key, ctr, i, st[P_FREE], wake_at, speed - s_wave, s_wave, thp_due, thp_gap, wave, pcp_batch,
                st[P_COVER], due, clock0, at, w)
            taken = st[P_FREE] - after
        span = at
    # others that need the flush while it runs wait for it (spin_wait_ns), not the
    # flushing thread's own CPU
    need = P_i[I_WRITE] + P_i[I_MF] + tagged_alloc_rate(st, hold, alloc - thp, refills, num_cpus, True, old_rate,
                                                        pcp_batch, refills * pcp_batch * min(first, span))
    need -= own_rate
    integrate(o, st, pend_n, t, min(first + flush_wait * 1e-9, span), end)
    released = thread_flush(o, h, P_i, st, pend_t, pend_n, t, first, kind, bins, need)
    if one_cpu:
        reserve = drain_reserve(st, reserve, used)
    else:
        # the threads of kswapd's last and earlier CPUs popped their lists' heads
        pop_tags(st, P_PCP, P_K_MIXED, clock - clock0)
        pop_tags(st, P_OLD, P_OLD_MIXED, clock - clock0)
        pop_tags(st, P_OLD2, P_OLD2_MIXED, clock - clock0)
        # the phase's refills put the tagged pages they took on a list (unless a flush made
        # them harmless), and the lists' threads popped what they reached
        if st[P_BUDDY] > 0:
            spread_onto_list(st, w, pcp_batch)
        pop_spread(st, clock)
    pcp_count, spilled = release_held(st, due, clock, pcp_count, released, one_cpu, pcp_high, pcp_batch)
    # (the small promotions came in the wave: the phase's share of it, not its span)
    if s_wave > 0:
        x0 = thp_gap - thp_due
        o[O_PROMOTED] += (promote - thp) * in_window(t, span, end) * (
            wave_integral(wave, thp_gap, x0 + span) - wave_integral(wave, thp_gap, x0)) / max(span, 1e-300)
    else:
        o[O_PROMOTED] += (promote - thp) * in_window(t, span, end)
    if n_thp > 0:
        o[O_PROMOTED] += 512.0 * thp_in_window(t, thp_due, thp_gap, n_thp, end)
    # folios join the inactive list one by one, as the allocations come
    cold_pages += draw_poisson(key, ctr, _S_COLD, i, cold_share * alloc * span)
    if one_cpu:
        swapped = drain_swap(o, swapped, lam, t, span, end)
    else:
        # the refaults the walk allocated at its rate: so the pool loses what the lists gave
        # out (drained by its own decay instead, a walk at a rate from a different span took
        # more than the pool lost, and at 90% evicted kswapd reclaimed 1.2% too much)
        swapped = drain_swap_pages(o, swapped, (alloc - base_alloc) * span, t, span, end)
    t = t + span
    thp_due = thp_hint_faults(thp_due, thp_gap, span)[1]
    # the phase's refills took free memory down to where kswapd wakes (or, cut, to where
    # they stood); a release's spills came back to it
    st[P_FREE] += spilled - taken
    # the phase's refills took its pages from the buddy head: the clean ones over
    # any tagged pages there, then those (harmlessly, with nothing pending, or
    # the trigger above fired and retired them), which stay tagged on their lists
    if one_cpu:
        eat_buddy(st, taken, 1.0, alloc, num_cpus, pcp_batch, span)
    else:
        eat_buddy_head(st, taken)
    return not (cut and st[P_FREE] >= whigh), t, swapped, reserve, pcp_count, cold_pages, thp_due, clock


@njit(cache=True)
def kswapd_wake(P_i, hold, base_alloc, thp_gap, key, ctr, i, st, pend_t, pend_n, o, h, bins, due, w, t, end, swapped,
                reserve, pcp_count, cold_pages, thp_due, clock):
    """kswapd wakes at the end of a quiet phase: under migrc_hold it first flushes and
    frees what it holds; then it runs on a CPU drawn at random, whose pcp list it finds
    part-full and whose thread it preempts.
    Returns (a burst starts, and the lane's state: t, swapped, reserve, pcp_count,
    cold_pages, thp_due, clock)."""
    wpromo = P_i[I_WPROMO]
    pcp_batch, pcp_high = P_i[I_PCP_BATCH], P_i[I_PCP_HIGH]
    num_cpus = P_i[I_NUM_CPUS]
    one_cpu = num_cpus <= 1
    migrating = P_i[I_MIGRATING] != 0
    promote, lam, flush_wait = P_i[I_PROMOTE], P_i[I_REFAULT_LAM], P_i[I_FLUSH_WAIT]
    cold_share, cold_promote = P_i[I_COLD_SHARE], P_i[I_COLD_PROMOTE]
    # kswapd wakes; in migrc_hold it first flushes and frees what it holds
    flushed_first = hold and st[P_HELD] > 0
    if flushed_first:
        c = (t >= 0) & (t < end)
        add_flush(o, P_i, c)
        if c:
            o[O_KSWAPD_WAIT] += flush_wait
            o[O_T_RECLAIM] += 1.0
        # freed onto the CPU kswapd held them on, spilling past its high mark
        released = retire(o, h, st, pend_t, pend_n, t + flush_wait * 1e-9, c, bins)
        pcp_count, spilled = release_held(st, due, clock, pcp_count, released, one_cpu, pcp_high, pcp_batch)
        st[P_FREE] += spilled
    # pending pages stay on the old kswapd CPU's pcp list, among the pages kswapd freed
    # after the oldest of them
    if st[P_PCP] > 0:
        leave_list(st)
    u_pcp = draw_uniform(key, ctr, _S_PCP, i)
    if one_cpu:
        # What kswapd left on the list serves the thread later, without touching
        # NR_FREE_PAGES; the allocation that woke kswapd refilled this list from buddy
        # (the phase counted the batch) and took one page of it
        reserve += pcp_count
        pcp_count = pcp_batch - 1.0
    else:
        # kswapd wakes on any CPU and finds its list as that list's clock has it: part of a
        # refill, or what kswapd left there on an earlier visit, less what its thread took
        # (at 90% evicted 50 pages on average, the reference's 49; drawn as one of the
        # reserve's holders or a cycling list, 48, but from no particular list)
        k_cpu = min(int(u_pcp * num_cpus), int(num_cpus) - 1)
        pcp_count = list_pages(due, k_cpu, clock)
        due[k_cpu] = np.inf       # its thread is preempted while kswapd runs there
        st[P_KCPU] = k_cpu
        if k_cpu == st[P_SP_CPU]:
            st[P_SPREAD] = 0.0      # (tagged pages under kswapd's frees there: not followed)
    burst = (st[P_FREE] < wpromo) & migrating
    if flushed_first and burst:
        # that flush is kswapd's first work: through its wait the others allocate
        # on, promotions refused. Started at once, bursts let promotions through a
        # flush early: 200-300 us after a wake, default/migrc_hold refused 55% of
        # hint faults, the reference 69% (68% with this alone, 63% with the wake at
        # min above). (A wake at min leaves the count above high, and the reference
        # lets that flush's promotions through: one wake in ten, ~0.03% of the
        # time, not modelled.)
        span = flush_wait * 1e-9
        alloc = mean_alloc(base_alloc, swapped, lam, span)
        off = max(alloc - promote, 0.0)
        if one_cpu:
            served = min(reserve_rate(off, reserve, num_cpus, pcp_high) * span, reserve)
            reserve = drain_reserve(st, reserve, served)
            st[P_FREE] -= off * span - served
            thp_due = thp_hint_faults(thp_due, thp_gap, span)[1]
        else:
            s_off = off / (num_cpus - 1.0)
            walk_start(w, st[P_COVER], 0.0, 1.0, np.inf)
            _, refilled, _, _, thp_due, clock = refill_events(
                key, ctr, i, span, st[P_FREE], np.inf, s_off, s_off, thp_due, thp_gap,
                P_i[I_WAVE:I_WAVE + PROFILE_BINS], pcp_batch, st[P_COVER], due, clock, w)
            st[P_FREE] -= refilled
        cold_pages += max(cold_share * alloc * span - cold_promote * promote * span, 0.0)
        swapped = drain_swap(o, swapped, lam, t, span, end)
        t = t + span
    return burst, t, swapped, reserve, pcp_count, cold_pages, thp_due, clock
