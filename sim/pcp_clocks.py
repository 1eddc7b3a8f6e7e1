"""Other CPUs' pcp lists as clocks: when each runs empty and refills from buddy.

A CPU's thread pops its own pcp list one page per small allocation and refills it
with `batch` pages from the buddy head when it is empty; each refill takes a whole
batch off NR_FREE_PAGES. Allocations on one CPU are close to Poisson, so its list
runs empty after a Gamma(batch) number of them: nearly regular (CV 1/sqrt(batch)).
The refills of all other CPUs are the superposition of those cycles, which over a
kswapd burst (shorter than a cycle) is far from Poisson, and which carries memory
from one burst to the next: in the reference's evict_high a refilling CPU runs
through its batch in about one kswapd cycle, 68% of its consecutive refills fall
in consecutive cycles and their points in the cycle correlate 0.73. Drawn as
Poisson events, a burst's refill count varied 2.9 times its mean (the reference's:
1.06).

Every other CPU's list is a clock: `due[j]` is the allocations its thread makes
until the list runs empty, counted on a common clock that advances by the pages
each cycling CPU allocates. All of them allocate at the same rate, so one clock
serves: a CPU's refill is exact for Poisson allocations at a rate that varies in
time (promotions let through or refused), and costs one Gamma draw. Some CPUs
hold pages kswapd left on their lists (the reserve's holders, see
`reserve_holders`) and refill nothing until those are gone; a list that runs
empty refills with the odds that its CPU is not one of them, so the refill rate
is the one `refill_rate` gives.
"""

from __future__ import annotations

import numpy as np
from .jit_cache import njit  # numba's, with sim's cache stamp installed

from .rng import draw_gamma, draw_uniform
from .flush_layout import _S_CLOCK
from .flush_events import reserve_holders


@njit(cache=True)
def cycling_cpus(reserve, num_cpus, pcp_high):
    """Other CPUs in their cycle of refills: the ones not holding pages kswapd left."""
    return max(num_cpus - 1.0 - reserve_holders(reserve, num_cpus, pcp_high), 0.0)


@njit(cache=True)
def start_clocks(key, ctr, i, due, batch):
    """Each list part-way through its cycle, as a stationary renewal process finds it:
    a uniform part of a length-biased cycle, Gamma(batch + 1). The clock starts at 0."""
    for j in range(due.shape[0]):
        due[j] = draw_uniform(key, ctr, _S_CLOCK, i) * draw_gamma(key, ctr, _S_CLOCK, i, batch + 1.0)


@njit(cache=True)
def advance_clocks(key, ctr, i, due, clock, pages, cycling, batch):
    """The `cycling` CPUs refill `pages` between them (a quiet phase's fluid refills); the
    lists that run empty on the way refill, each once per cycle (the phase's refills took
    free memory already, as a fluid: only the lists' levels are left to follow). Returns
    the new clock.

    The refill that ends a phase (and wakes kswapd) is some CPU's, but the others' cycles
    are independent of it, so the clock stops where the fluid puts it, not at the last
    list to run empty: stopped there, the next refill came a whole gap later in every
    burst, and evict_high/batched refilled a fifth less in its bursts and promoted 5.6%
    more than the reference."""
    clock += max(pages, 0.0) / max(cycling, 1e-9)
    for j in range(due.shape[0]):
        while due[j] <= clock:
            # A long phase runs a list through many cycles: k of them at once are one
            # Gamma(k batch) draw, k kept six standard deviations short of the clock so that
            # the jump all but never passes it (if it does, it is not taken)
            gap = clock - due[j]
            k = np.floor((gap - 6.0 * np.sqrt(gap * batch)) / batch)
            if k >= 2:
                jump = draw_gamma(key, ctr, _S_CLOCK, i, k * batch)
                if jump <= gap:
                    due[j] += jump
                    continue
            due[j] += draw_gamma(key, ctr, _S_CLOCK, i, batch)
    return clock


@njit(cache=True)
def _next_run_out(due, clock, speed):
    """The list that runs empty next, and in how many seconds at `speed` pages/s a CPU."""
    m = due.shape[0]
    j = np.argmin(due) if m > 0 else 0
    return j, ((due[j] - clock) / speed if (speed > 0 and m > 0) else np.inf)


@njit(cache=True)
def _run_out(key, ctr, i, due, j, batch, q):
    """List `j` runs empty and starts its next cycle; its CPU refills from buddy with the
    odds `q` that it is not one of the reserve's holders. Returns whether it refilled."""
    due[j] += draw_gamma(key, ctr, _S_CLOCK, i, batch)
    return draw_uniform(key, ctr, _S_CLOCK, i) < q


@njit(cache=True)
def refill_events(key, ctr, i, span_s, free, whigh, r_on, r_off, thp_due, thp_gap, batch, cover, due, clock,
                  cycling):
    """Other CPUs' pcp refills from buddy, and THP promotions, through one kswapd step.

    NR_FREE_PAGES falls a whole pcp batch at a refill, so it sits below the high
    watermark a lump at a time, refusing promotions, where a fluid drain would hold it
    at high. Refills come `r_on` per second while free memory is at or above `whigh`
    and `r_off` (promotions refused) below, spread over `cycling` CPUs (the others hold
    pages kswapd left): each of the `due` lists runs empty on the common clock, which
    advances by the pages a cycling CPU allocates, and refills if its CPU cycles. THP
    hint faults come on the scanner's clock (see `thp_quiet_wake`), the next `thp_due`
    seconds after the step's start: one that comes while free memory is below high is
    refused. Returns the time promotions were allowed, the pages refilled, the THP pages
    promoted, when the first allocation reached past the `cover` clean pages on the
    buddy list's head (inf if none did: it takes a pending page there), when the next
    THP hint fault is due after the step's end, and the clock at the step's end.
    """
    allowed = 0.0
    tt = 0.0
    refilled = 0.0
    thp_taken = 0.0
    t_reach = np.inf
    b = free
    m = due.shape[0]
    q = cycling / m if m > 0 else 0.0          # odds that a list running empty refills
    while True:
        on = b >= whigh
        speed = (r_on if on else r_off) * batch / cycling if cycling > 0 else 0.0   # pages/s a CPU
        j, dt = _next_run_out(due, clock, speed)
        big = thp_due - tt < dt
        if big:
            dt = thp_due - tt
        if on:
            allowed += min(dt, span_s - tt)
        if tt + dt >= span_s:
            return allowed, refilled, thp_taken, t_reach, thp_due - span_s, clock + speed * (span_s - tt)
        tt += dt
        if big:
            clock += speed * dt
            thp_due += thp_gap
            if on:
                b -= 512.0
                thp_taken += 512.0
        else:
            clock = due[j]
            if _run_out(key, ctr, i, due, j, batch, q):
                b -= batch
                refilled += batch
        if refilled + thp_taken > cover and t_reach == np.inf:
            t_reach = tt


@njit(cache=True)
def quiet_refills(key, ctr, i, free, wake_at, r, thp_due, thp_gap, batch, due, clock, cycling):
    """A quiet phase with THPs, event by event, until free memory is below `wake_at`.

    The cycling CPUs refill `r` times a second on their lists' clocks (as in
    `refill_events`), a whole batch each, and THP promotions take 512 pages on the
    scanner's clock, the next `thp_due` seconds from the phase's start. Whichever takes
    free memory below `wake_at` wakes kswapd, so where the phase ends, and how deep the
    wake lands, depend on how many refills came first: a phase that happened to refill
    little runs on to the THP and lands deeper than the mean drain would put it.
    Returns (a THP promotion woke kswapd, the phase's span, its THP promotions, free
    memory after the waking allocation, the clock at the phase's end)."""
    m = due.shape[0]
    q = cycling / m if m > 0 else 0.0
    speed = r * batch / cycling if cycling > 0 else 0.0      # pages/s a cycling CPU allocates
    b = free
    tt = 0.0
    k = 0.0
    while True:
        j, dt = _next_run_out(due, clock, speed)
        a = thp_due + k * thp_gap
        if a - tt <= dt:
            clock += speed * (a - tt)
            tt = a
            k += 1.0
            b -= 512.0
            if b < wake_at:
                return True, tt, k, b, clock
        else:
            tt += dt
            clock = due[j]
            if _run_out(key, ctr, i, due, j, batch, q):
                b -= batch
                if b < wake_at:
                    return False, tt, k, b, clock
