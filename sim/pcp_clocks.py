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


# --- the clock's speed: a base rate, and the small promotions, which come in a wave ---
# A CPU's thread allocates at s_base (allocations other than promotions, and promotions
# outside the wave) plus s_wave times the wave's rate, piecewise constant in the bins of
# `wave` over each `gap` between THP hint faults (mean 1; scan_pattern). Wave time x is
# the time since a THP hint fault, modulo gap; without THPs (gap inf) the speed is flat.

@njit(cache=True)
def wave_integral(wave, gap, x):
    """The wave's rate integrated over [0, x) of wave time (x may run over many gaps)."""
    if not gap < np.inf:
        return x
    k = wave.shape[0]
    width = gap / k
    per = np.floor(x / gap)
    r = x - per * gap
    b = min(int(r / width), k - 1)
    acc = 0.0
    for q in range(b):
        acc += wave[q]
    return per * gap + (acc + wave[b] * (r / width - b)) * width


@njit(cache=True)
def clock_gain(s_base, s_wave, wave, gap, x, dt):
    """How far the clock runs in `dt` seconds from wave time x."""
    if not dt > 0:
        return 0.0
    if not (s_wave > 0 and gap < np.inf):
        return (s_base + s_wave) * dt
    return s_base * dt + s_wave * (wave_integral(wave, gap, x + dt) - wave_integral(wave, gap, x))


@njit(cache=True)
def _gain_to_period_end(g, s_base, s_wave, wave, width, r, b):
    """Bin by bin from r (in bin b) to the end of the gap: (seconds, gain left); the gain
    left is 0 when the clock got there first, the seconds then being when."""
    k = wave.shape[0]
    t = 0.0
    while b < k:
        end = (b + 1) * width
        rate = s_base + s_wave * wave[b]
        left = end - r
        if rate * left >= g:
            return t + (g / rate if rate > 0 else 0.0), 0.0
        g -= rate * left
        t += left
        r = end
        b += 1
    return t, g


@njit(cache=True)
def time_to_gain(g, s_base, s_wave, wave, gap, x):
    """Seconds the clock takes to run `g` from wave time x (inf if it stands still)."""
    if not g > 0:
        return 0.0
    if not (s_wave > 0 and gap < np.inf):
        speed = s_base + s_wave
        return g / speed if speed > 0 else np.inf
    k = wave.shape[0]
    width = gap / k
    r = x - np.floor(x / gap) * gap
    t, g = _gain_to_period_end(g, s_base, s_wave, wave, width, r, min(int(r / width), k - 1))
    if not g > 0:
        return t
    whole = np.floor(g / ((s_base + s_wave) * gap))      # gaps run through whole (mean rate 1)
    g -= whole * (s_base + s_wave) * gap
    t2, g = _gain_to_period_end(g, s_base, s_wave, wave, width, 0.0, 0)
    return t + whole * gap + t2


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
def _passes(w, clock0, clock1):
    """The clock runs from clock0 to clock1 past the spread list's first tagged page, not
    passed before (the caller records when: `_passed`). (The wave stays out of this
    per-event call: an array argument costs numba a reference count each call.)"""
    return w[W_T_SP] == np.inf and clock0 < w[W_SP_AT] <= clock1


@njit(cache=True)
def _passed(w, tt, clock0, s_base, s_wave, wave, gap, x):
    """...when the clock, at clock0 at time tt (wave time x), reaches it."""
    w[W_T_SP] = tt + time_to_gain(w[W_SP_AT] - clock0, s_base, s_wave, wave, gap, x)


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
    if due.shape[0] == 0 or not speed > 0:
        return 0, np.inf
    j = np.argmin(due)
    if not due[j] < np.inf:
        return j, np.inf
    return j, (due[j] - clock) / speed


@njit(cache=True)
def _next_run_out_waved(due, clock, s_base, s_wave, wave, gap, x):
    """The same, the speed in the wave from wave time x."""
    if due.shape[0] == 0:
        return 0, np.inf
    j = np.argmin(due)
    if not due[j] < np.inf:
        return j, np.inf
    return j, time_to_gain(due[j] - clock, s_base, s_wave, wave, gap, x)


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
def refill_events(key, ctr, i, span_s, free, whigh, s_on, s_off, thp_due, thp_gap, wave, batch, cover, due, clock, w):
    """Pcp refills from buddy, and THP promotions, through one kswapd step.

    NR_FREE_PAGES falls a whole pcp batch at a refill, so it sits below the high
    watermark a lump at a time, refusing promotions, where a fluid drain would hold it
    at high. Each unfrozen CPU allocates small pages at `s_on` pages/s on average while
    free memory is at or above `whigh` (its promotions part of it, in the `wave`), and at
    `s_off` (promotions refused) below; its list runs empty on the common clock and
    refills. THP hint faults come on the scanner's clock (every `thp_gap` seconds), the
    next `thp_due` seconds after the step's start: one that comes while free memory is
    below high is refused. Returns the time promotions were allowed (weighted by the
    wave's rate, so that it times the mean promotion rate gives the pages promoted), the
    pages refilled, the THP pages promoted, when the first allocation reached past the
    `cover` clean pages on the buddy list's head (inf if none did: it takes a pending page
    there), when the next THP hint fault is due after the step's end, and the clock at the
    step's end; and fills in the walk's record `w`.
    """
    allowed = 0.0
    tt = 0.0
    refilled = 0.0
    thp_taken = 0.0
    t_reach = np.inf
    b = free
    x0 = thp_gap - thp_due if thp_gap < np.inf else 0.0      # wave time at the step's start
    while True:
        on = b >= whigh
        s_base, s_wave = (s_off, s_on - s_off) if on and thp_gap < np.inf else (s_on if on else s_off, 0.0)
        if s_wave > 0:
            j, dt = _next_run_out_waved(due, clock, s_base, s_wave, wave, thp_gap, x0 + tt)
        else:
            j, dt = _next_run_out(due, clock, s_base)
        big = thp_due - tt < dt
        if big:
            dt = thp_due - tt
        if s_wave > 0:          # (only while promotions are allowed)
            x = x0 + tt
            allowed += wave_integral(wave, thp_gap, x + min(dt, span_s - tt)) - wave_integral(wave, thp_gap, x)
        elif on:
            allowed += min(dt, span_s - tt)
        if tt + dt >= span_s:
            if s_wave > 0:
                end = clock + clock_gain(s_base, s_wave, wave, thp_gap, x0 + tt, span_s - tt)
            else:
                end = clock + s_base * (span_s - tt)
            if _passes(w, clock, end):
                _passed(w, tt, clock, s_base, s_wave, wave, thp_gap, x0 + tt)
            return allowed, refilled, thp_taken, t_reach, thp_due - span_s, end
        nxt = clock + (clock_gain(s_base, s_wave, wave, thp_gap, x0 + tt, dt) if s_wave > 0 else s_base * dt)
        if _passes(w, clock, nxt):
            _passed(w, tt, clock, s_base, s_wave, wave, thp_gap, x0 + tt)
        tt += dt
        if big:
            clock = nxt
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
def quiet_refills(key, ctr, i, free, wake_at, s_base, s_wave, thp_due, thp_gap, wave, batch, cover, due, clock, limit_s,
                  w):
    """A quiet phase, event by event, until free memory is below `wake_at` (or `limit_s`).

    Each CPU allocates small pages at `s_base` pages/s plus its promotions, `s_wave` on
    average in the `wave`, and refills its list on the clock, a whole batch each, and THP
    promotions take 512 pages on the scanner's clock, the next `thp_due` seconds from the
    phase's start. Whichever takes free memory below `wake_at` wakes kswapd, so where the
    phase ends, and how deep the wake lands, depend on how many refills came first: a
    phase that happened to refill little runs on to the THP and lands deeper than the
    mean drain would put it.
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
    x0 = thp_gap - thp_due if thp_gap < np.inf else 0.0      # wave time at the phase's start
    while True:
        if s_wave > 0:
            j, dt = _next_run_out_waved(due, clock, s_base, s_wave, wave, thp_gap, x0 + tt)
        else:
            j, dt = _next_run_out(due, clock, s_base)
        a = thp_due + k * thp_gap if k > 0 else thp_due     # (0 * inf is nan)
        if min(a - tt, dt) >= limit_s - tt:
            if s_base + s_wave > 0 and limit_s < np.inf:
                end = clock + (clock_gain(s_base, s_wave, wave, thp_gap, x0 + tt, limit_s - tt) if s_wave > 0
                               else s_base * (limit_s - tt))
                if _passes(w, clock, end):
                    _passed(w, tt, clock, s_base, s_wave, wave, thp_gap, x0 + tt)
                clock = end
            return False, limit_s, k, b, clock, t_reach, refilled
        if a - tt <= dt:
            nxt = clock + (clock_gain(s_base, s_wave, wave, thp_gap, x0 + tt, a - tt) if s_wave > 0
                           else s_base * (a - tt))
            if _passes(w, clock, nxt):
                _passed(w, tt, clock, s_base, s_wave, wave, thp_gap, x0 + tt)
            clock = nxt
            tt = a
            _takes(w, -1, clock, refilled + 512.0 * k, 512.0, 0.0)
            k += 1.0
            b -= 512.0
            by_thp = True
        else:
            if _passes(w, clock, due[j]):
                _passed(w, tt, clock, s_base, s_wave, wave, thp_gap, x0 + tt)
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
