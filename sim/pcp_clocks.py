"""The CPUs' pcp lists as clocks: when each runs empty and refills from buddy.

A CPU's thread pops its own pcp list one page per small allocation and refills it
with `batch` pages from the buddy head when it is empty; each refill takes a whole
batch off NR_FREE_PAGES. Allocations on one CPU are close to Poisson, so a list
holding p pages runs empty after a Gamma(p) number of them, and a refilled one
after a Gamma(batch): nearly regular (CV 1/sqrt(batch)). The refills of all CPUs
are the superposition of those cycles, which over a kswapd burst (shorter than a
cycle) is far from Poisson, and which carries memory from one burst to the next:
in the reference's evict_high a refilling CPU runs through its batch in about one
kswapd cycle, 68% of its consecutive refills fall in consecutive cycles and their
points in the cycle correlate 0.73. Drawn as Poisson events, a burst's refill count
varied 2.9 times its mean (the reference's: 1.06).

Every CPU's list is a clock: `due[j]` is the allocations its thread makes until the
list runs empty, counted on a common clock that advances by the pages each CPU
allocates. All of them allocate at the same rate, so one clock serves: a CPU's
refill is exact for Poisson allocations at a rate that varies in time (promotions
let through or refused), and costs one Gamma draw. The list kswapd runs on is
frozen (`due` inf) while kswapd works there: its thread is preempted, and kswapd's
own frees and spills set what it holds (`list_due` starts it again from that). So
the CPUs that hold pages kswapd left on an earlier visit are particular lists,
whose next run-out those pages push back, and a quiet phase ends on the refill
that takes free memory below high: its length varies as the reference's, and
consecutive phases anticorrelate (a long one drains lists that the next refills
soon). A walk also follows the tagged pages on the buddy head into the refill that
takes them (`walk_start`): their list pops them once its clock has run through the
clean pages over them.
"""

from __future__ import annotations

import numpy as np
from .jit_cache import njit  # numba's, with sim's cache stamp installed

from .rng import draw_gamma, draw_uniform
from .flush_layout import (
    W_COVER, W_GAP, W_HIT_CLEAN, W_HIT_CLOCK, W_HIT_DUE, W_HIT_GAP, W_HIT_J, W_HIT_TAGS, W_SP_AT, W_T_SP, W_TAGS,
    _S_CLOCK,
)


@njit(cache=True)
def walk_start(w, cover, tags, gap, sp_at):
    """A walk's record: on the buddy list's head, `tags` tagged pages `gap` pages apart, the
    first `cover` pages down; and `sp_at`, the clock at which a list's thread pops the first
    tagged page a refill put there (inf if none). The walk fills in when the clock reached
    `sp_at` (W_T_SP, inf if it did not), and the first refill that took some of the tags:
    its list, the clock, the clean pages over them in it, when that list runs empty next,
    and the tags (W_HIT_J < 0: none)."""
    w[W_COVER] = cover
    w[W_TAGS] = tags
    w[W_GAP] = max(gap, 1.0)
    w[W_SP_AT] = sp_at
    w[W_T_SP] = np.inf
    w[W_HIT_J] = -1.0
    w[W_HIT_CLOCK] = 0.0
    w[W_HIT_CLEAN] = 0.0
    w[W_HIT_DUE] = 0.0
    w[W_HIT_TAGS] = 0.0
    w[W_HIT_GAP] = 1.0


@njit(cache=True)
def _passes(w, tt, clock0, clock1, speed):
    """The clock ran from clock0 (at time tt) to clock1 at `speed`."""
    if w[W_T_SP] == np.inf and clock0 < w[W_SP_AT] <= clock1 and speed > 0:
        w[W_T_SP] = tt + (w[W_SP_AT] - clock0) / speed


@njit(cache=True)
def _takes(w, j, clock, taken_before, size, due_j):
    """List `j` refilled `size` pages (j < 0: a THP promotion took them) from the buddy head,
    where `taken_before` pages had gone since the walk began: it takes the tags among them."""
    depth = w[W_COVER] - taken_before          # of the next tagged page, in this refill
    if w[W_TAGS] > 0 and depth < size:
        took = min(np.floor((size - 1.0 - max(depth, 0.0)) / w[W_GAP]) + 1.0, w[W_TAGS])
        w[W_TAGS] -= took
        w[W_COVER] += took * w[W_GAP]
        if j >= 0:
            if w[W_HIT_J] < 0:
                w[W_HIT_J] = j
                w[W_HIT_CLOCK] = clock
                w[W_HIT_CLEAN] = max(depth, 0.0)
                w[W_HIT_DUE] = due_j
                w[W_HIT_GAP] = w[W_GAP]
            # (tags a later refill takes, past a batch, are kept with the first list's)
            w[W_HIT_TAGS] += took


@njit(cache=True)
def list_due(key, ctr, i, clock, pages):
    """When a list holding `pages` runs empty: after its thread's next `pages` allocations
    (a Gamma(pages) on the clock), at once if it holds less than one."""
    return clock + (draw_gamma(key, ctr, _S_CLOCK, i, pages) if pages >= 1.0 else max(pages, 0.0))


@njit(cache=True)
def list_pages(due, j, clock):
    """What list `j` holds now (its allocations left until it runs empty); 0 if frozen."""
    return max(due[j] - clock, 0.0) if due[j] < np.inf else 0.0


@njit(cache=True)
def start_clocks(key, ctr, i, due, batch, high):
    """Each list part-way through its cycle, as a stationary renewal process finds it (a
    uniform part of a length-biased cycle, Gamma(batch + 1)), and a quarter of them still
    holding part of what kswapd left on an earlier visit, up to `high` (as the reference
    starts). The clock starts at 0."""
    for j in range(due.shape[0]):
        due[j] = draw_uniform(key, ctr, _S_CLOCK, i) * draw_gamma(key, ctr, _S_CLOCK, i, batch + 1.0)
        if draw_uniform(key, ctr, _S_CLOCK, i) < 0.25:
            due[j] += draw_uniform(key, ctr, _S_CLOCK, i) * high


@njit(cache=True)
def _next_run_out(due, clock, speed):
    """The list that runs empty next, and in how many seconds at `speed` pages/s a CPU."""
    m = due.shape[0]
    if m == 0 or not speed > 0:
        return 0, np.inf
    j = np.argmin(due)
    if not due[j] < np.inf:
        return j, np.inf
    return j, (due[j] - clock) / speed


@njit(cache=True)
def refill_rate_now(due, clock, speed, batch):
    """Refills per second the lists make in the near term: each in its refill cycle (at most
    a batch left) runs empty about once a batch of its allocations; one holding more, not
    before those are gone; a frozen one never."""
    n = 0.0
    for j in range(due.shape[0]):
        if due[j] - clock <= batch:
            n += 1.0
    return n * speed / batch


@njit(cache=True)
def refill_events(key, ctr, i, span_s, free, whigh, s_on, s_off, thp_due, thp_gap, batch, cover, due, clock, w):
    """Pcp refills from buddy, and THP promotions, through one kswapd step.

    NR_FREE_PAGES falls a whole pcp batch at a refill, so it sits below the high
    watermark a lump at a time, refusing promotions, where a fluid drain would hold it
    at high. Each unfrozen CPU allocates small pages at `s_on` pages/s while free memory
    is at or above `whigh`, and at `s_off` (promotions refused) below; its list runs
    empty on the common clock and refills. THP hint faults come on the scanner's clock
    (every `thp_gap` seconds), the next `thp_due` seconds after the step's start: one that
    comes while free memory is below high is refused. Returns the time promotions were
    allowed, the pages refilled, the THP pages promoted, when the first allocation
    reached past the `cover` clean pages on the buddy list's head (inf if none did: it
    takes a pending page there), when the next THP hint fault is due after the step's
    end, and the clock at the step's end; and fills in the walk's record `w`.
    """
    allowed = 0.0
    tt = 0.0
    refilled = 0.0
    thp_taken = 0.0
    t_reach = np.inf
    b = free
    while True:
        on = b >= whigh
        speed = s_on if on else s_off
        j, dt = _next_run_out(due, clock, speed)
        big = thp_due - tt < dt
        if big:
            dt = thp_due - tt
        if on:
            allowed += min(dt, span_s - tt)
        if tt + dt >= span_s:
            _passes(w, tt, clock, clock + speed * (span_s - tt), speed)
            return allowed, refilled, thp_taken, t_reach, thp_due - span_s, clock + speed * (span_s - tt)
        _passes(w, tt, clock, clock + speed * dt, speed)
        tt += dt
        if big:
            clock += speed * dt
            thp_due += thp_gap
            if on:
                _takes(w, -1, clock, refilled + thp_taken, 512.0, 0.0)
                b -= 512.0
                thp_taken += 512.0
        else:
            clock = due[j]
            due[j] += draw_gamma(key, ctr, _S_CLOCK, i, batch)
            _takes(w, j, clock, refilled + thp_taken, batch, due[j])
            b -= batch
            refilled += batch
        if refilled + thp_taken > cover and t_reach == np.inf:
            t_reach = tt


@njit(cache=True)
def quiet_refills(key, ctr, i, free, wake_at, speed, thp_due, thp_gap, batch, cover, due, clock, limit_s, w):
    """A quiet phase, event by event, until free memory is below `wake_at` (or `limit_s`).

    Each CPU allocates small pages at `speed` pages/s and refills its list on the clock,
    a whole batch each, and THP promotions take 512 pages on the scanner's clock, the next
    `thp_due` seconds from the phase's start. Whichever takes free memory below `wake_at`
    wakes kswapd, so where the phase ends, and how deep the wake lands, depend on how many
    refills came first: a phase that happened to refill little runs on to the THP and
    lands deeper than the mean drain would put it.
    Returns (a THP promotion woke kswapd, the phase's span, its THP promotions, free memory
    after the waking allocation, the clock at the phase's end, when refills first reached
    past the `cover` clean pages on the buddy head (inf if never), the pages refilled), and
    fills in the walk's record `w`. A phase that reaches `limit_s` first ends there,
    kswapd still asleep."""
    b = free
    tt = 0.0
    k = 0.0
    refilled = 0.0
    t_reach = np.inf
    while True:
        j, dt = _next_run_out(due, clock, speed)
        a = thp_due + k * thp_gap if k > 0 else thp_due     # (0 * inf is nan)
        if min(a - tt, dt) >= limit_s - tt:
            if speed > 0 and limit_s < np.inf:
                _passes(w, tt, clock, clock + speed * (limit_s - tt), speed)
                clock += speed * (limit_s - tt)
            return False, limit_s, k, b, clock, t_reach, refilled
        if a - tt <= dt:
            _passes(w, tt, clock, clock + speed * (a - tt), speed)
            clock += speed * (a - tt)
            tt = a
            _takes(w, -1, clock, refilled + 512.0 * k, 512.0, 0.0)
            k += 1.0
            b -= 512.0
            by_thp = True
        else:
            _passes(w, tt, clock, due[j], speed)
            tt += dt
            clock = due[j]
            due[j] += draw_gamma(key, ctr, _S_CLOCK, i, batch)
            _takes(w, j, clock, refilled + 512.0 * k, batch, due[j])
            b -= batch
            refilled += batch
            by_thp = False
        if refilled + 512.0 * k > cover and t_reach == np.inf:
            t_reach = tt
        if b < wake_at:
            return by_thp, tt, k, b, clock, t_reach, refilled
