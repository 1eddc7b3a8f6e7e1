"""A quiet phase of the flush process, and kswapd's wake at its end.

Between two kswapd bursts, allocations on every CPU take free memory down from
where the last burst left it to where kswapd wakes: the high watermark (or, under
migrc_hold, buddy pages alone below min). A phase is one step of a lane in
`flush_cycle._cycles_kernel`; it runs the events that fire for pending deferrals
while it lasts (a thread's flush, which under migrc_hold cuts the phase), and
`kswapd_wake` then picks the CPU kswapd runs on and the pcp list it finds there.
"""

from __future__ import annotations

from .jit_cache import njit  # numba's, with sim's cache stamp installed

from .rng import draw_poisson, draw_uniform
from .pcp_clocks import advance_clocks, cycling_cpus, quiet_refills
from .flush_events import (
    add_flush, cut_refills, drain_reserve, drain_swap, eat_buddy, in_window, integrate, mean_alloc, old_tag_rate,
    quiet_fixed_point, refill_rate, reserve_holders, reserve_rate, retire, spill_pages, tagged_alloc_rate,
    thp_hint_faults, thp_in_window, thp_quiet_wake, thread_flush, trigger, wake_lump,
)
from .flush_layout import (  # the kernel compiles these in as constants
    I_COLD_PROMOTE, I_COLD_SHARE, I_FLUSH_WAIT, I_LRU, I_MF, I_MIGRATING, I_NUM_CPUS, I_PCP_BATCH, I_PCP_HIGH,
    I_PROMOTE, I_REFAULT_LAM, I_WHIGH, I_WMIN, I_WPROMO, I_WRITE, O_KSWAPD_WAIT, O_PROMOTED, O_T_RECLAIM, P_FREE,
    P_HELD, P_OLD, P_PCP, _K_NONE, _S_COLD, _S_PCP, _S_REFILL,
)


@njit(cache=True)
def quiet_phase(P_i, hold, base_alloc, thp, thp_gap, key, ctr, i, st, pend_t, pend_n, o, h, bins, due, t, end,
                swapped, reserve, pcp_count, cold_pages, thp_due, clock):
    """One quiet phase of lane `i`, from free memory `st[P_FREE]` at time `t` to kswapd's
    wake (or to a migrc_hold release that leaves free memory at or above high, so that
    kswapd sleeps on). Returns (kswapd wakes, and the lane's state after the phase: t,
    swapped, reserve, pcp_count, cold_pages, thp_due, clock)."""
    wmin, whigh = P_i[I_WMIN], P_i[I_WHIGH]
    pcp_batch, pcp_high = P_i[I_PCP_BATCH], P_i[I_PCP_HIGH]
    num_cpus = P_i[I_NUM_CPUS]
    one_cpu = num_cpus <= 1
    promote, lam, flush_wait, cold_share = P_i[I_PROMOTE], P_i[I_REFAULT_LAM], P_i[I_FLUSH_WAIT], P_i[I_COLD_SHARE]
    alloc = base_alloc + swapped * lam
    # Allocations take free memory down to where kswapd wakes, at the phase's mean rate (refaults slow down as the swap pool drains; a fixed
    # point, so the pages the pool loses are the ones free memory lost)
    # migrc_hold's held folios count as free, but buddy pages alone below the min
    # watermark wake kswapd too (the reference's 645-page wakes: 576 held, buddy
    # 69 < min 102; 5 of 53 at the seed's sizes). Waking at high only, the fast
    # engine's cycles ran ~2% long, and its flush counts ~2% short.
    wake_at = max(whigh, wmin + st[P_HELD]) if hold and st[P_HELD] > 0 else whigh
    drop = max(st[P_FREE] - wake_at, 0.0)
    alloc, rr, span, used = quiet_fixed_point(base_alloc, swapped, lam, alloc, thp, reserve, num_cpus,
                                              pcp_high, drop, end - t)
    # The allocation that wakes kswapd is a pcp refill of `batch` pages, which lands
    # free memory part of a batch below high, where the phase's start fixes it
    # (wake_lump); or a THP promotion, which comes on the scanner's clock and lands
    # it part of 512 below. Either way the phase's allocations took all of it: its
    # span is the time they take. (Without THPs the refills of a phase are many
    # CPUs' cycles, which over a whole phase take free memory at the allocation
    # rate with no pages ahead: the lists' clocks only advance; with one CPU the
    # refill is that CPU's own: see kswapd_wake.)
    lump = 0.0
    n_thp = 0.0             # THP promotions in the phase, all let through above high
    u_cut = 0.0             # where a cut phase's refills stand (see the cut below)
    if thp > 0:
        # The phase's mean rates come from a fluid drain (thp_quiet_wake); then it
        # runs refill by refill at those rates (quiet_refills) and ends on whichever
        # takes free memory below high first, a refill or a THP. Ended by the fluid,
        # every phase after a burst that ended on its THP step ran on to the next
        # THP and landed ~410 pages deep (in the reference 15% of them woke on a
        # refill), so thp_half/migrc's bursts ended on the THP step 84% of the
        # time against 65%, and left 43% fewer deferrals for allocations to flush.
        # (A cut phase under migrc_hold has run its clocks through the whole phase.)
        for _ in range(3):
            small = max(alloc - thp - min(rr, reserve / max(span, 1e-12)), 0.0)
            thp_woke, t_w, k = thp_quiet_wake(st[P_FREE], wake_at, small, thp_due, thp_gap, end - t)
            if thp_woke:
                span = t_w
            elif small > 0:
                span = (drop + wake_lump(drop, pcp_batch, k) - 512.0 * k) / small
            else:
                span = end - t + 1e-9
            alloc = mean_alloc(base_alloc, swapped, lam, span)
            rr = reserve_rate(alloc - thp, reserve, num_cpus, pcp_high)
        _, span, n_thp, after, clock = quiet_refills(
            key, ctr, i, st[P_FREE], wake_at, small / pcp_batch, thp_due, thp_gap, pcp_batch, due, clock,
            cycling_cpus(reserve, num_cpus, pcp_high))
        lump = wake_at - after
        used = min(rr * span, reserve)
    elif not one_cpu:
        # (two uniforms the THP draws took before sim 0.12, kept so that runs
        # without THPs keep their random streams; a cut phase uses the first)
        u_cut = draw_uniform(key, ctr, _S_REFILL, i)
        draw_uniform(key, ctr, _S_REFILL, i)
        lump = wake_lump(drop, pcp_batch, 0.0)
        if lump > 0:
            alloc, rr, span, used = quiet_fixed_point(base_alloc, swapped, lam, alloc, thp, reserve,
                                                      num_cpus, pcp_high, drop + lump, end - t)
    reserve0 = reserve
    # refills run at the phase's mean rate: the reserve drains through it
    rr = 0.5 * (rr + reserve_rate(alloc - thp, max(reserve - used, 0.0), num_cpus, pcp_high))
    refills = refill_rate(alloc, rr, num_cpus, pcp_batch)
    old_rate = old_tag_rate(st, rr, reserve0)
    first, kind, own_rate = trigger(P_i, st, span, True, hold, key, ctr, i, alloc, refills, old_rate)
    # migrc_hold: the flush frees the folios held, which NR_FREE_PAGES counted, onto
    # kswapd's last list, spilling past its high mark. The phase is cut there: if
    # free memory is now below high, kswapd wakes at the next allocation or refused
    # promotion; if not, a new phase starts from the new level. (Run on to high
    # with the held pages taken off after, a phase ended them below high, and the
    # next burst ran that much longer: memory_failures/migrc_hold's pending peak
    # was 1.9x the reference's.)
    taken = drop + lump
    cut = hold and kind != _K_NONE
    listed = 0.0        # pages refills took beyond the allocations, left on lists
    if cut:
        at = min(first + flush_wait * 1e-9, span)
        used *= at / span
        n_thp = min(n_thp, thp_hint_faults(thp_due, thp_gap, at)[0])
        # NR_FREE_PAGES moves by whole refills, so the cut finds it on the phase's
        # lattice, and the next wake lands where the reference's do (at the seed's
        # sizes: 573 pages, every time). Cut as a fluid, the next phase started
        # anywhere: memory_failures/migrc_hold woke 31 pages under high on average
        # against 53, and let 0.4% more promotions through.
        fluid = taken * at / span
        taken = fluid
        if not one_cpu:
            if thp > 0:
                u_cut = draw_uniform(key, ctr, _S_REFILL, i)
            taken = cut_refills(fluid, n_thp, u_cut, pcp_batch)
            listed = taken - fluid
        span = at
    # others that need the flush while it runs wait for it (spin_wait_ns), not the
    # flushing thread's own CPU
    need = P_i[I_WRITE] + P_i[I_MF] + tagged_alloc_rate(st, hold, alloc, refills, num_cpus, True, old_rate,
                                                        pcp_batch, refills * pcp_batch * min(first, span))
    need -= own_rate
    integrate(o, st, pend_n, t, min(first + flush_wait * 1e-9, span), end)
    reserve = drain_reserve(st, reserve, used)
    if listed > 0:
        reserve += listed
    elif listed < 0:
        reserve = drain_reserve(st, reserve, -listed)
    pcp_count += thread_flush(o, h, P_i, st, pend_t, pend_n, t, first, kind, bins, need)
    spilled = spill_pages(pcp_count, pcp_high, pcp_batch)
    pcp_count -= spilled
    o[O_PROMOTED] += (promote - thp) * in_window(t, span, end)
    if n_thp > 0:
        o[O_PROMOTED] += 512.0 * thp_in_window(t, thp_due, thp_gap, n_thp, end)
    # folios join the inactive list one by one, as the allocations come
    cold_pages += draw_poisson(key, ctr, _S_COLD, i, cold_share * alloc * span)
    swapped = drain_swap(o, swapped, lam, t, span, end)
    t = t + span
    thp_due = thp_hint_faults(thp_due, thp_gap, span)[1]
    # the phase's allocations took free memory down to high and the lump below
    # (or, cut, their share of that); a release's spills came back to it
    st[P_FREE] += spilled - taken
    # the cycling CPUs' lists ran through the phase's small refills
    if not one_cpu and not thp > 0:
        clock = advance_clocks(key, ctr, i, due, clock, taken - 512.0 * n_thp,
                               cycling_cpus(reserve0, num_cpus, pcp_high), pcp_batch)
    # the phase's refills took its pages from the buddy head: the clean ones over
    # any tagged pages there, then those (harmlessly, with nothing pending, or
    # the trigger above fired and retired them), which stay tagged on their lists
    eat_buddy(st, taken, max(taken - 512.0 * n_thp, 0.0) / max(taken, 1e-12) if thp > 0 else 1.0, alloc,
              num_cpus, pcp_batch, span)
    return not (cut and st[P_FREE] >= whigh), t, swapped, reserve, pcp_count, cold_pages, thp_due, clock


@njit(cache=True)
def kswapd_wake(P_i, hold, base_alloc, thp_gap, key, ctr, i, st, pend_t, pend_n, o, h, bins, due, t, end, swapped,
                reserve, pcp_count, cold_pages, thp_due, clock):
    """kswapd wakes at the end of a quiet phase: under migrc_hold it first flushes and
    frees what it holds; then it runs on a new CPU, whose pcp list it finds part-full.
    Returns (a burst starts, and the lane's state: t, swapped, reserve, pcp_count,
    cold_pages, thp_due, clock)."""
    wpromo = P_i[I_WPROMO]
    pcp_batch, pcp_high = P_i[I_PCP_BATCH], P_i[I_PCP_HIGH]
    num_cpus = P_i[I_NUM_CPUS]
    one_cpu = num_cpus <= 1
    migrating = P_i[I_MIGRATING] != 0
    promote, lam, flush_wait = P_i[I_PROMOTE], P_i[I_REFAULT_LAM], P_i[I_FLUSH_WAIT]
    cold_share, cold_promote, lru = P_i[I_COLD_SHARE], P_i[I_COLD_PROMOTE], P_i[I_LRU]
    # Where kswapd leaves a list: its last spill took it from just past high back by a
    # batch, so it holds high - batch plus part of what kswapd freed at once (a step's
    # folios; under migrc_hold, the held folios released at the wake, a batch or more).
    # In the reference, at 90% evicted, no list kswapd came back to held more than 198
    # pages in 432 wakes (pcp_high 252). Drawn as draining from pcp_high, kswapd's new
    # list held 57 pages on average against the reference's 49 (now 48) and spilled
    # sooner, so promotions were refused for less of a burst: evict_high promoted 1.55%
    # more than the reference, now 0.90% (refused in 48.6% of burst time; reference 51.8%).
    left_pages = pcp_high - pcp_batch + 0.5 * min(pcp_batch if hold else lru, pcp_batch)
    # kswapd wakes; in migrc_hold it first flushes and frees what it holds
    flushed_first = hold and st[P_HELD] > 0
    if flushed_first:
        c = (t >= 0) & (t < end)
        add_flush(o, P_i, c)
        if c:
            o[O_KSWAPD_WAIT] += flush_wait
            o[O_T_RECLAIM] += 1.0
        # freed onto the CPU kswapd held them on, spilling past its high mark
        pcp_count += retire(o, h, st, pend_t, pend_n, t + flush_wait * 1e-9, c, bins)
        spilled = spill_pages(pcp_count, pcp_high, pcp_batch)
        pcp_count -= spilled
        st[P_FREE] += spilled
    # pending pages stay on the old kswapd CPU's pcp list
    st[P_OLD] += st[P_PCP]
    st[P_PCP] = 0.0
    # What kswapd left on its last CPU's pcp serves that CPU's thread later,
    # without touching NR_FREE_PAGES: it joins the reserve of such pages.
    reserve += pcp_count
    # kswapd's new CPU is one that kswapd left pages on once (one of the reserve's
    # holders, whose lists drain evenly from where kswapd left them), or one whose
    # thread drains its list between refills of `batch` pages. A share of the
    # reserve on every CPU instead made no list ever short, and bursts too short.
    u_pcp = draw_uniform(key, ctr, _S_PCP, i)
    p_holder = reserve_holders(reserve, num_cpus, pcp_high) / (num_cpus - 1.0) if num_cpus > 1 else 0.0
    if u_pcp < p_holder:
        pcp_count = u_pcp / p_holder * left_pages
    else:
        pcp_count = (u_pcp - p_holder) / (1.0 - p_holder) * pcp_batch
    reserve = drain_reserve(st, reserve, pcp_count)
    if one_cpu:
        # the allocation that woke kswapd refilled this list from buddy: it holds a
        # whole batch, and free memory fell the rest of that batch below high
        lump = pcp_batch - pcp_count
        st[P_FREE] -= lump
        pcp_count += lump
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
        served = min(reserve_rate(off, reserve, num_cpus, pcp_high) * span, reserve)
        reserve = drain_reserve(st, reserve, served)
        st[P_FREE] -= off * span - served
        clock = advance_clocks(key, ctr, i, due, clock, off * span - served,
                               cycling_cpus(reserve, num_cpus, pcp_high), pcp_batch)
        cold_pages += max(cold_share * alloc * span - cold_promote * promote * span, 0.0)
        swapped = drain_swap(o, swapped, lam, t, span, end)
        thp_due = thp_hint_faults(thp_due, thp_gap, span)[1]
        t = t + span
    return burst, t, swapped, reserve, pcp_count, cold_pages, thp_due, clock
