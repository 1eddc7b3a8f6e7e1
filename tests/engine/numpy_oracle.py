"""The numpy lock-step implementation of the flush cycle: the oracle for the numba kernel.

This is the vectorised loop that sim/flush_cycle.py ran before issue 4 ported it to
a per-lane @njit kernel. It is kept here, in the tests only, so that
tests/engine/test_kernel_vs_numpy.py can check the kernel reproduces it draw for
draw. Two fixes from the old production code, which the kernel has too:
`retire` now clears the pending ring's page counts (pend_n), which it used to
leave behind so that later batches were added onto stale counts (stale_pages was
~60x the pages deferred); and a deferring policy's step that both evicts and
demotes without deferring issues two flushes, not one (`bool + bool` was a
logical or, which undercounted migrc/luf flushes whenever evict_fraction > 0).
"""

from __future__ import annotations

import numpy as np

from sim.rng import LaneRandom
from sim.steady import Flows

# The kernel's own constants, tally and flush-cost expectations: the oracle checks the loop, not these.
from sim.flush_layout import (  # noqa: E402
    _MAX_PENDING_BATCHES, _S_DIRTY, _S_EVICT, _S_LAST, _S_PCP, _S_COLD, _S_RACE, _S_RO, _S_START, _S_THP,
    _S_STEP_ALLOCS,
    _S_TRIG, _S_TRIG2, _S_TRIG3, _S_TRIG4, _S_SPREAD, _S_CLOCK,
    STALE_BINS_US, FlushTally, _flush_costs, promotion_wave, thp_alloc_per_s,
    W_COVER, W_GAP, W_HIT_CLEAN, W_HIT_CLOCK, W_HIT_DUE, W_HIT_GAP, W_HIT_J, W_HIT_TAGS, W_SP_AT, W_T_SP, W_TAGS,
    WALK_SIZE)


def run_cycles(f: Flows, L, policy: np.ndarray, rnd: LaneRandom, window_s: np.ndarray, warmup_s: np.ndarray,
               wakes: list | None = None):
    n = len(policy)
    tally = FlushTally(n)
    targets, p_any, flush_wait = _flush_costs(f, L)
    defers = (policy == 2) | (policy == 3) | (policy == 4)
    hold = policy == 3
    luf = policy == 4

    num_cpus = L["machine.num_cpus"].astype(float)
    alloc = np.where(f.migrating, f.alloc_per_s, 0.0)
    promote = np.where(f.migrating, f.promote_per_s, 0.0)
    refault = np.where(f.migrating, f.refault_per_s, 0.0)
    lam = f.refault_lam_per_s
    swapped = np.where(lam > 0, refault / np.maximum(lam, 1e-300), 0.0)
    base_alloc = alloc - np.where(lam > 0, refault, 0.0)
    refault_share = np.where(f.reclaim_per_s > 0, (f.promote_per_s + f.refault_per_s)
                             / np.maximum(f.reclaim_per_s, 1e-12), 0.0)
    write_rate = f.write_faults_per_s
    mf_rate = L["memory.memory_failure_per_s"]
    lru = L["reclaim.lru_batch_pages"].astype(float)
    migrate_ns = L["machine.migrate_folio_ns"]

    one_cpu = L["machine.num_cpus"] <= 1
    thp = np.where(one_cpu, 0.0, thp_alloc_per_s(f, L))
    cold_pages = np.zeros(n)
    t = -warmup_s.astype(float).copy()
    end = window_s.astype(float)
    burst = np.zeros(n, bool)
    # small folios left before the LRU's next THP: a Poisson count of them between two THPs
    thp_p = f.thp_step_p
    with np.errstate(divide="ignore", invalid="ignore"):
        small_per_thp = np.where(thp_p > 0, lru * (1.0 - thp_p) / np.where(thp_p > 0, thp_p, 1.0), np.inf)
    to_thp = np.where(thp_p > 0, np.floor(rnd.uniform(_S_THP, np.ones(n, bool)) * np.where(thp_p > 0, small_per_thp, 0.0)),
                      np.inf)
    # THP hint faults come every thp_gap seconds, the next in thp_due
    has_thp = thp > 0
    with np.errstate(divide="ignore"):
        thp_gap = np.where(has_thp, 512.0 / np.where(has_thp, thp, 1.0), np.inf)
    thp_due = np.where(has_thp, rnd.uniform(_S_THP, has_thp) * thp_gap, np.inf)
    # a run starts at a level of a quiet phase, uniform among promo minus whole batches
    steps = np.floor(np.maximum(f.wmark_promo - f.wmark_high, 0.0) / f.pcp_batch)
    free = f.wmark_promo - f.pcp_batch * np.floor(rnd.uniform(_S_START, np.ones(n, bool)) * (steps + 1.0))
    # the reference's warm start: up to 511 pages higher where the folio that does not fit is a THP
    u_thp_start = rnd.uniform(_S_START, has_thp)
    lump = np.floor(rnd.uniform(_S_START, has_thp) * 512.0)
    free = np.where(has_thp & (u_thp_start * promote < thp), free + lump, free)
    # the small promotions' wave between THP hint faults (the kernel's wave_integral etc.)
    wave = promotion_wave(f, L, thp_alloc_per_s(f, L))
    n_bins = wave.shape[1]
    wave_cum = np.concatenate([np.zeros((n, 1)), np.cumsum(wave, axis=1)], axis=1)
    finite_gap = np.isfinite(thp_gap)
    gap1 = np.where(finite_gap, thp_gap, 1.0)
    pcp_count = np.zeros(n)
    reserve = np.zeros(n)      # one CPU only: what kswapd left on the one list beyond its refill
    pcp_pend, old_pend, buddy_pend, buddy_cover, held, spread = (np.zeros(n) for _ in range(6))
    old2_pend = np.zeros(n)      # tagged pages on the lists of the kswapd CPUs before old_cpu
    # more than one CPU: the spread tags lie on list sp_cpu, popped from the clock sp_at every
    # sp_gap; sp_rate their rate now (-1: one CPU, a pool); buddy_gap: pages between buddy tags
    sp_cpu = np.zeros(n, dtype=np.int64)
    sp_at, sp_gap, buddy_gap = np.zeros(n), np.zeros(n), np.zeros(n)
    sp_rate = np.where(L["machine.num_cpus"] <= 1, -1.0, 0.0)
    W = np.zeros((n, WALK_SIZE))        # the walks' records (the kernel's W_* slots)
    ahead = np.zeros(n)     # clean pages on kswapd's list older than its oldest tagged one
    pend_t = np.zeros((n, _MAX_PENDING_BATCHES))
    pend_n = np.zeros((n, _MAX_PENDING_BATCHES))
    pend_len = np.zeros(n, dtype=np.int64)
    lanes = np.arange(n)
    flush_end = np.full(n, -np.inf)      # when the last thread-paid deferred flush is done

    def counting(at):
        return (at >= 0) & (at < end)

    def add_flush(mask, at, by_thread, trigger=None, alloc_path=None, raced=False):
        c = mask & counting(at)
        tally.flushes += c
        tally.targets += c * targets
        tally.remote_flushes += c * p_any
        if by_thread:
            tally.thread_wait_ns += c * flush_wait
            if not raced:       # a race's flush ends with kswapd's
                flush_end[:] = np.where(mask, at + flush_wait * 1e-9, flush_end)
        else:
            tally.kswapd_flush_wait_ns += c * flush_wait
        if alloc_path is not None:
            tally.alloc_wait_ns += c * alloc_path * flush_wait
        if trigger is not None:
            tally.triggers[trigger] += c

    def retire(mask, at, count_at, keep_tags=False):
        """A flush covered everything pending at `at`: record stale windows, clear the state
        (kswapd's own flush keeps the generation tags of the freed pages). The windows count
        when the flush *started* (`count_at`) inside the window, as its shootdown does."""
        if not mask.any():
            return np.zeros(n)
        c = mask & counting(count_at)
        ages_s = np.where(mask[:, None], np.maximum(np.where(mask, at, 0.0)[:, None] - pend_t, 0.0), 0.0)
        live = np.arange(_MAX_PENDING_BATCHES)[None, :] < pend_len[:, None]
        w = pend_n * live * c[:, None]
        tally.stale_pages += w.sum(1)
        tally.stale_page_s += (w * ages_s).sum(1)
        bins = np.searchsorted(STALE_BINS_US, ages_s * 1e6)
        np.add.at(tally.stale_hist, (np.repeat(lanes, _MAX_PENDING_BATCHES), bins.ravel()), w.ravel())
        if not keep_tags:
            for arr in (pcp_pend, old_pend, old2_pend, buddy_pend, buddy_cover, spread):
                arr[mask] = 0.0
        released = np.where(mask, held, 0.0)   # freed onto a pcp list: out of NR_FREE_PAGES
        held[mask] = 0.0
        pend_len[mask] = 0
        pend_n[mask] = 0.0   # fix: the old code left these behind
        return released

    def add_pending(mask, at, pages):
        idx = np.minimum(pend_len, _MAX_PENDING_BATCHES - 1)
        fresh = mask & (pend_len < _MAX_PENDING_BATCHES)
        full = mask & ~fresh        # a full ring merges into its last slot at the pages' mean time
        last = _MAX_PENDING_BATCHES - 1
        pend_t[lanes[fresh], idx[fresh]] = at[fresh]
        pend_t[full, last] += ((at - pend_t[:, last]) * pages / np.maximum(pend_n[:, last] + pages, 1e-300))[full]
        pend_n[lanes[mask], idx[mask]] += pages[mask]
        pend_len[fresh] += 1

    def spread_k(alloc):
        # pops per second of each tagged page refills moved onto other CPUs' lists
        return (4.0 / 3.0) * alloc / (np.maximum(num_cpus, 1.0) * f.pcp_batch)

    def eat_buddy(mask, eaten, small_share, alloc, span_s):
        """The kernel's eat_buddy: the buddy head's clean pages go first, then the tagged
        ones, which small refills move onto their CPUs' lists."""
        k = spread_k(alloc)
        spread[:] = np.where(mask, spread * np.exp(-k * span_s), spread)
        cover = buddy_cover.copy()
        buddy_cover[:] = np.where(mask, np.maximum(cover - eaten, 0.0), buddy_cover)
        moved = np.where(mask, np.minimum(np.maximum(eaten - cover, 0.0), buddy_pend), 0.0)
        buddy_pend[:] = buddy_pend - moved
        with np.errstate(all="ignore"):
            at_s = np.where(moved > 0, (cover + 0.5 * moved) / eaten * span_s, 0.0)
        spread[:] = spread + np.where(moved > 0, moved * small_share * np.exp(-k * (span_s - at_s)), 0.0)

    def pending_pages():
        live = np.arange(_MAX_PENDING_BATCHES)[None, :] < pend_len[:, None]
        return (pend_n * live).sum(1)

    def trigger_times(active, span_s, own_cpu_runs, per_cpu_alloc, refill_rate, old_rate, t_buddy=None, t_spread=None):
        """Time to the first event that forces the pending flush, which kind, and the rate at
        which the flushing thread's own CPU would take tagged pages (the kernel's trigger)."""
        has = active & (pend_len > 0)
        nohold = ~hold
        from_old = has & nohold & (old_pend + old2_pend > 0)
        t_alloc = np.where(from_old, rnd.exponential(_S_TRIG, old_rate, has), np.inf)
        own_rate = np.where(from_old, np.minimum(old_rate, per_cpu_alloc), 0.0)
        # kswapd's CPU runs the workload again once the burst is over (or all along, alone)
        own = has & own_cpu_runs
        t_own = np.where(own & nohold & (pcp_pend > 0), rnd.exponential(_S_TRIG4, per_cpu_alloc, own), np.inf)
        own_rate = np.where(t_own < t_alloc, per_cpu_alloc, own_rate)
        t_alloc = np.minimum(t_alloc, t_own)
        # a pop of a tagged page a refill moved onto some list, the hazard inverted through their decay
        e = -np.log(rnd.uniform(_S_SPREAD, has))
        hit_sp = has & nohold & (e < spread)
        with np.errstate(all="ignore"):
            t_sp = -np.log(1.0 - e / spread) / np.maximum(spread_k(per_cpu_alloc * num_cpus), 1e-300)
        t_sp = np.where(hit_sp, t_sp, np.inf)
        sp_own = np.minimum(spread * spread_k(per_cpu_alloc * num_cpus), per_cpu_alloc)
        if t_spread is not None:        # lists as clocks: the clock reaches the first tagged page
            listed = t_spread >= 0
            t_sp = np.where(listed, np.where(has & nohold & (spread > 0), t_spread, np.inf), t_sp)
            sp_own = np.where(listed, per_cpu_alloc, sp_own)
        own_rate = np.where(t_sp < t_alloc, sp_own, own_rate)
        t_alloc = np.minimum(t_alloc, t_sp)
        drain_s = buddy_cover / np.maximum(f.pcp_batch * refill_rate, 1e-12)
        t_refill = drain_s + rnd.exponential(_S_TRIG2, refill_rate, has)
        if t_buddy is not None:
            t_refill = np.where(t_buddy >= 0, t_buddy, t_refill)
        t_refill = np.where(has & nohold & (buddy_pend > 0), t_refill, np.inf)
        own_rate = np.where(t_refill < t_alloc, 0.0, own_rate)
        t_alloc = np.minimum(t_alloc, t_refill)
        t_write = np.where(has, rnd.exponential(_S_TRIG3, write_rate + mf_rate, has), np.inf)
        first = np.minimum(t_alloc, t_write)
        hit = has & (first < span_s)
        is_mf = rnd.uniform(_S_TRIG3, hit) * np.maximum(write_rate + mf_rate, 1e-300) < mf_rate
        by_alloc = hit & (t_alloc <= t_write)
        return (first, hit, by_alloc, hit & (t_write < t_alloc) & ~is_mf, hit & (t_write < t_alloc) & is_mf,
                np.where(by_alloc, own_rate, 0.0))

    def spill(count):
        """What a pcp list holding `count` pages spills to buddy, in whole batches."""
        return np.minimum(np.ceil(np.maximum(count - f.pcp_high, 0) / f.pcp_batch) * f.pcp_batch, count)

    def reserve_rate(alloc, reserve):
        holders = np.minimum(2.0 * reserve / np.maximum(f.pcp_high, 1.0), np.maximum(num_cpus - 1.0, 1.0))
        return np.minimum(alloc, alloc / num_cpus * holders)

    def old_tag_rate(rr, reserve):
        return rr * np.minimum(old_pend / np.maximum(reserve, 1e-9), 1.0)

    def drain_reserve(mask, reserve, pages):
        """The reserve loses `pages`; its tagged pages go in proportion."""
        left = np.maximum(reserve - pages, 0.0)
        old_pend[:] = np.where(mask, old_pend * np.where(reserve > 0, left / np.maximum(reserve, 1e-300), 0.0),
                               old_pend)
        return np.where(mask, left, reserve)

    def binomial(active, count, p, stream):
        # the kernel's draw_binomial, lane by lane: one uniform, inverted from the lighter
        # side; two more for a normal where the variance is above 50
        count = np.where(active, count, 0.0)
        p = np.broadcast_to(p, (n,)).astype(float)
        u = rnd.uniform(stream, active)
        var = count * p * (1.0 - p)
        trivial = (count <= 0) | (p <= 0) | (p >= 1)
        big = active & ~trivial & (var > 50.0)
        z = rnd.normal(stream, big)
        q = np.where(p > 0.5, 1.0 - p, p)
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = q / (1.0 - q)
        pmf = (1.0 - q) ** count
        cdf = pmf.copy()
        k = np.zeros(n)
        go = active & ~trivial & ~big & (u > cdf) & (k < count)
        while go.any():
            pmf = np.where(go, pmf * odds * (count - k) / (k + 1.0), pmf)
            k = np.where(go, k + 1.0, k)
            cdf = np.where(go, cdf + pmf, cdf)
            go &= (u > cdf) & (k < count)
        k = np.where(p > 0.5, count - k, k)
        k = np.where(big, np.clip(np.rint(count * p + np.sqrt(var) * z), 0.0, count), k)
        k = np.where(trivial, np.where((p >= 1) & (count > 0), count, 0.0), k)
        return np.where(active, k, 0.0)

    def poisson(active, mean, stream=_S_COLD):
        # the kernel's draw_poisson, lane by lane: one uniform, inverted; two more for a
        # normal where the mean is above 50
        mean = np.where(active, mean, 0.0)
        u = rnd.uniform(stream, active)
        big = active & (mean > 50.0)
        z = rnd.normal(stream, big)
        p = np.exp(-mean)
        cdf = p.copy()
        k = np.zeros(n)
        go = active & ~big & (mean > 0) & (u > cdf) & (p > 0)
        while go.any():
            k[go] += 1.0
            p[go] = p[go] * (mean[go] / k[go])
            cdf[go] += p[go]
            go &= (u > cdf) & (p > 0)
        k = np.where(big, np.maximum(np.rint(mean + np.sqrt(mean) * z), 0.0), k)
        return np.where(active & (mean > 0), k, 0.0)

    def gamma(active, shape, stream=_S_CLOCK):
        """The kernel's draw_gamma (Marsaglia and Tsang), every lane's tries in lock-step."""
        out, go = np.zeros(n), active.copy()
        d = shape - 1.0 / 3.0
        c = 1.0 / np.sqrt(9.0 * d)
        while go.any():
            z = rnd.normal(stream, go)
            u = rnd.uniform(stream, go)
            v = 1.0 + c * z
            ok = go & (v > 0)
            v3 = np.where(ok, v * v * v, 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                acc = ok & (np.log(u) < 0.5 * z * z + d - d * v3 + d * np.log(v3))
            out = np.where(acc, d * v3, out)
            go &= ~acc
        return out

    def list_due(active, pages):
        """The kernel's list_due: a list holding `pages` runs empty a Gamma(pages) of its
        thread's allocations later (at once below one page)."""
        big = active & (pages >= 1.0)
        g = gamma(big, np.where(big, pages, 1.0))
        return np.where(big, clock + g, clock + np.maximum(pages, 0.0))

    def list_pages(j):
        d = due_cpu[lanes, j]
        return np.where(np.isfinite(d), np.maximum(d - clock, 0.0), 0.0)

    def wave_integral(x):
        """The kernel's wave_integral, every lane at once."""
        width = gap1 / n_bins
        with np.errstate(invalid="ignore"):
            per = np.floor(x / gap1)
            r = x - per * gap1
            b = np.minimum(np.where(np.isfinite(r), r / width, 0.0).astype(np.int64), n_bins - 1)
            val = per * gap1 + (wave_cum[lanes, b] + wave[lanes, b] * (r / width - b)) * width
        return np.where(finite_gap, val, x)

    def clock_gain(s_base, s_wave, x, dt):
        """The kernel's clock_gain."""
        waved = (s_wave > 0) & finite_gap
        with np.errstate(invalid="ignore"):
            flat = (s_base + s_wave) * dt
            w = s_base * dt + s_wave * (wave_integral(x + dt) - wave_integral(x))
        return np.where(~(dt > 0), 0.0, np.where(waved, w, flat))

    def gain_to_period_end(go, g, s_base, s_wave, width, r, b):
        """The kernel's _gain_to_period_end, lane by lane in `go`: (seconds, gain left)."""
        t_out = np.zeros(n)
        g = g.copy()
        r = r.copy()
        b = b.copy()
        run = go.copy()
        done_t = np.zeros(n)
        finished = np.zeros(n, bool)
        while run.any():
            bb = np.minimum(b, n_bins - 1)
            end = (b + 1) * width
            rate = s_base + s_wave * wave[lanes, bb]
            left = end - r
            hit = run & (rate * left >= g)
            with np.errstate(invalid="ignore", divide="ignore"):
                done_t = np.where(hit, t_out + np.where(rate > 0, g / np.where(rate > 0, rate, 1.0), 0.0), done_t)
            finished |= hit
            cont = run & ~hit
            g = np.where(cont, g - rate * left, g)
            t_out = np.where(cont, t_out + left, t_out)
            r = np.where(cont, end, r)
            b = np.where(cont, b + 1, b)
            run = cont & (b < n_bins)
        return np.where(finished, done_t, t_out), np.where(finished, 0.0, g)

    def time_to_gain(g, s_base, s_wave, x):
        """The kernel's time_to_gain, every lane at once."""
        waved = (s_wave > 0) & finite_gap & (g > 0)
        speed = s_base + s_wave
        with np.errstate(invalid="ignore", divide="ignore"):
            flat = np.where(speed > 0, g / np.where(speed > 0, speed, 1.0), np.inf)
        out = np.where(~(g > 0), 0.0, flat)
        if not waved.any():
            return out
        width = gap1 / n_bins
        with np.errstate(invalid="ignore"):
            r = x - np.floor(x / gap1) * gap1
            b = np.minimum(np.where(waved, r / width, 0.0).astype(np.int64), n_bins - 1)
        t1, g1 = gain_to_period_end(waved, np.where(waved, g, 0.0), s_base, s_wave, width, r, b)
        more = waved & (g1 > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            whole = np.where(more, np.floor(g1 / np.where(more, speed * gap1, 1.0)), 0.0)
        g2 = np.where(more, g1 - whole * speed * gap1, 0.0)
        t2, _ = gain_to_period_end(more, g2, s_base, s_wave, width, np.zeros(n), np.zeros(n, np.int64))
        return np.where(waved, np.where(more, t1 + whole * gap1 + t2, t1), out)

    def next_run_out(s_base, s_wave, x):
        """The kernel's _next_run_out, every lane's lists at once."""
        j = np.argmin(due_cpu, axis=1)
        dj = due_cpu[lanes, j]
        ok = (s_base + s_wave > 0) & np.isfinite(dj)
        with np.errstate(invalid="ignore"):
            dt = np.where(ok, time_to_gain(np.where(ok, dj - clock, 0.0), s_base, s_wave, x), np.inf)
        return j, dj, dt

    def walk_start(mask, cover, tags, gap, at):
        """The kernel's walk_start: a walk's record, lane by lane."""
        for k, v in ((W_COVER, cover), (W_TAGS, tags), (W_GAP, np.maximum(gap, 1.0)), (W_SP_AT, at),
                     (W_T_SP, np.inf), (W_HIT_J, -1.0), (W_HIT_CLOCK, 0.0), (W_HIT_CLEAN, 0.0), (W_HIT_DUE, 0.0),
                     (W_HIT_TAGS, 0.0), (W_HIT_GAP, 1.0)):
            W[:, k] = np.where(mask, v, W[:, k])

    def walk_passes(mask, tt, c0, c1, s_base, s_wave, x):
        """The kernel's _passes: the clock ran from c0 (at tt, wave time x) to c1."""
        hit = mask & np.isinf(W[:, W_T_SP]) & (c0 < W[:, W_SP_AT]) & (W[:, W_SP_AT] <= c1)
        if hit.any():
            with np.errstate(invalid="ignore"):
                dt = time_to_gain(np.where(hit, W[:, W_SP_AT] - c0, 0.0), s_base, s_wave, x)
            W[:, W_T_SP] = np.where(hit, tt + dt, W[:, W_T_SP])

    def walk_takes(mask, j, clock_at, taken_before, size, due_j):
        """The kernel's _takes: list j (j < 0: a THP) took `size` pages off the buddy head."""
        depth = W[:, W_COVER] - taken_before
        go = mask & (W[:, W_TAGS] > 0) & (depth < size)
        with np.errstate(invalid="ignore"):
            took = np.minimum(np.floor((size - 1.0 - np.maximum(depth, 0.0)) / W[:, W_GAP]) + 1.0, W[:, W_TAGS])
        took = np.where(go, took, 0.0)
        W[:, W_TAGS] -= took
        W[:, W_COVER] += took * W[:, W_GAP]
        lst = go & (j >= 0)
        first = lst & (W[:, W_HIT_J] < 0)
        W[:, W_HIT_J] = np.where(first, j, W[:, W_HIT_J])
        W[:, W_HIT_CLOCK] = np.where(first, clock_at, W[:, W_HIT_CLOCK])
        W[:, W_HIT_CLEAN] = np.where(first, np.maximum(depth, 0.0), W[:, W_HIT_CLEAN])
        W[:, W_HIT_DUE] = np.where(first, due_j, W[:, W_HIT_DUE])
        W[:, W_HIT_GAP] = np.where(first, W[:, W_GAP], W[:, W_HIT_GAP])
        W[:, W_HIT_TAGS] += np.where(lst, took, 0.0)

    def spread_onto_list(mask):
        """The kernel's spread_onto_list: the walk's tagged pages go onto its first list."""
        go = mask & (W[:, W_HIT_J] >= 0) & (W[:, W_HIT_TAGS] > 0)
        per_page = np.maximum(W[:, W_HIT_DUE] - W[:, W_HIT_CLOCK], 1e-9) / f.pcp_batch
        at = W[:, W_HIT_CLOCK] + (W[:, W_HIT_CLEAN] + 1.0) * per_page
        had = go & (spread > 0)
        fresh = go & ~had
        sp_at[:] = np.where(had, np.minimum(sp_at, at), np.where(fresh, at, sp_at))
        sp_cpu[:] = np.where(fresh, W[:, W_HIT_J].astype(np.int64), sp_cpu)
        sp_gap[:] = np.where(fresh, W[:, W_HIT_GAP] * per_page, sp_gap)
        spread[:] = np.where(go, spread + W[:, W_HIT_TAGS], spread)

    def pop_spread(mask):
        """The kernel's pop_spread: the spread list's thread popped its head up to the clock."""
        go = mask & (spread > 0) & (clock >= sp_at)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.floor((clock - sp_at) / np.where(go, sp_gap, 1.0)) + 1.0
        spread[:] = np.where(go, np.maximum(spread - k, 0.0), spread)
        sp_at[:] = np.where(go, sp_at + k * sp_gap, sp_at)

    def spread_rate_now(at_clock, speed):
        inside = (spread > 0) & ~(sp_at - at_clock > sp_gap)
        return np.where(inside, speed / np.maximum(sp_gap, 1.0), 0.0)

    def eat_buddy_head(mask, eaten):
        """The kernel's eat_buddy_head: buddy tags buddy_gap apart, the first buddy_cover down."""
        cover = buddy_cover.copy()
        clean = mask & (~(buddy_pend > 0) | (eaten <= cover))
        buddy_cover[:] = np.where(clean, np.maximum(cover - eaten, 0.0), buddy_cover)
        go = mask & ~clean
        gap = np.maximum(buddy_gap, 1.0)
        took = np.where(go, np.minimum(np.floor((eaten - 1.0 - cover) / gap) + 1.0, buddy_pend), 0.0)
        buddy_pend[:] = buddy_pend - took
        buddy_cover[:] = np.where(go, np.where(buddy_pend > 0, cover + took * gap - eaten, 0.0), buddy_cover)

    def spill_tags(mask, spilled, tagged, mixed):
        """The kernel's spill_tags: kswapd's spill puts `tagged` pages among the top `mixed`."""
        tg = mask & (tagged > 0)
        step_p = mixed / (tagged + 1.0)
        last = np.where(buddy_pend > 0, spilled + buddy_cover + np.maximum(buddy_pend - 1.0, 0.0) * buddy_gap,
                        tagged * step_p)
        total = buddy_pend + tagged
        buddy_gap[:] = np.where(tg, np.maximum((last - step_p) / np.maximum(total - 1.0, 1.0), 1.0), buddy_gap)
        buddy_cover[:] = np.where(tg, step_p, np.where(mask & (buddy_pend > 0), buddy_cover + spilled, buddy_cover))
        buddy_pend[:] = np.where(tg, total, buddy_pend)

    def refill_events(active, span_s, s_on, s_off, whigh):
        # the kernel's refill_events (pcp_clocks), every lane's lists run in lock-step, THP
        # promotions on each lane's clock (thp_due, updated to after the step)
        nonlocal clock
        allowed, tt, refilled, thp_taken = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        t_reach = np.full(n, np.inf)
        b = free.copy()
        due = thp_due.copy()
        due_out = thp_due.copy()
        with np.errstate(invalid="ignore"):
            x0 = np.where(finite_gap, thp_gap - thp_due, 0.0)
        go = active.copy()
        while go.any():
            on = b >= whigh
            waved = on & finite_gap
            s_base = np.where(waved, s_off, np.where(on, s_on, s_off))
            s_wave = np.where(waved, s_on - s_off, 0.0)
            x = x0 + tt
            j, dj, dt = next_run_out(s_base, s_wave, x)
            big = go & (due - tt < dt)
            dt = np.where(big, due - tt, dt)
            with np.errstate(invalid="ignore"):
                part = np.minimum(dt, span_s - tt)
                w_part = wave_integral(x + part) - wave_integral(x)
            allowed = np.where(go & on, allowed + np.where(s_wave > 0, w_part, part), allowed)
            cont = go & ~(tt + dt >= span_s)
            due_out = np.where(go & ~cont, due - span_s, due_out)
            took = cont & big
            ran_out = cont & ~big
            with np.errstate(invalid="ignore"):
                end_c = clock + clock_gain(s_base, s_wave, x, np.where(go & ~cont, span_s - tt, 0.0))
                nxt = clock + clock_gain(s_base, s_wave, x, np.where(cont, dt, 0.0))
            walk_passes(go & ~cont, tt, clock, end_c, s_base, s_wave, x)
            walk_passes(cont, tt, clock, nxt, s_base, s_wave, x)
            clock = np.where(go & ~cont, end_c, np.where(took, nxt, clock))
            tt = np.where(cont, tt + dt, tt)
            clock = np.where(ran_out, dj, clock)
            due_cpu[lanes, j] += np.where(ran_out, gamma(ran_out, f.pcp_batch), 0.0)
            due = np.where(took, due + thp_gap, due)
            promoted = took & on
            walk_takes(promoted, -1, clock, refilled + thp_taken, 512.0, 0.0)
            walk_takes(ran_out, j, clock, refilled + thp_taken, f.pcp_batch, due_cpu[lanes, j])
            b = np.where(promoted, b - 512.0, np.where(ran_out, b - f.pcp_batch, b))
            thp_taken = np.where(promoted, thp_taken + 512.0, thp_taken)
            refilled = np.where(ran_out, refilled + f.pcp_batch, refilled)
            t_reach = np.where(cont & (refilled + thp_taken > buddy_cover) & np.isinf(t_reach), tt, t_reach)
            go = cont
        return allowed, refilled, thp_taken, t_reach, due_out

    def quiet_refills(active, s_base, s_wave, wake_at, limit_s):
        # the kernel's quiet_refills: refills on the lists' clocks and THP promotions on the
        # scanner's, every lane in lock-step, until free memory is below wake_at (or limit_s)
        nonlocal clock
        b, tt, k, refilled = free.copy(), np.zeros(n), np.zeros(n), np.zeros(n)
        span, by_thp, t_reach = np.zeros(n), np.zeros(n, bool), np.full(n, np.inf)
        with np.errstate(invalid="ignore"):
            x0 = np.where(finite_gap, thp_gap - thp_due, 0.0)
        go = active.copy()
        while go.any():
            x = x0 + tt
            j, dj, dt = next_run_out(s_base, s_wave, x)
            with np.errstate(invalid="ignore"):
                a = np.where(k > 0, thp_due + k * thp_gap, thp_due)
            stop = go & (np.minimum(a - tt, dt) >= limit_s - tt)
            with np.errstate(invalid="ignore"):
                moves = stop & (s_base + s_wave > 0) & np.isfinite(limit_s)
                end_c = clock + clock_gain(s_base, s_wave, x, np.where(moves, limit_s - tt, 0.0))
            walk_passes(moves, tt, clock, end_c, s_base, s_wave, x)
            clock = np.where(moves, end_c, clock)
            span = np.where(stop, limit_s, span)
            go &= ~stop
            big = go & (a - tt <= dt)
            ran_out = go & ~big
            with np.errstate(invalid="ignore"):
                nxt = clock + clock_gain(s_base, s_wave, x, np.where(big, a - tt, 0.0))
            walk_passes(big, tt, clock, nxt, s_base, s_wave, x)
            walk_passes(ran_out, tt, clock, dj, s_base, s_wave, x)
            clock = np.where(big, nxt, np.where(ran_out, dj, clock))
            tt = np.where(big, a, np.where(ran_out, tt + dt, tt))
            walk_takes(big, -1, clock, refilled + 512.0 * k, 512.0, 0.0)
            k = np.where(big, k + 1.0, k)
            due_cpu[lanes, j] += np.where(ran_out, gamma(ran_out, f.pcp_batch), 0.0)
            walk_takes(ran_out, j, clock, refilled + 512.0 * (k - big), f.pcp_batch, due_cpu[lanes, j])
            b = np.where(big, b - 512.0, np.where(ran_out, b - f.pcp_batch, b))
            refilled = np.where(ran_out, refilled + f.pcp_batch, refilled)
            t_reach = np.where(go & (refilled + 512.0 * k > buddy_cover) & np.isinf(t_reach), tt, t_reach)
            woke = go & (b < wake_at)
            span = np.where(woke, tt, span)
            by_thp = np.where(woke, big, by_thp)
            go &= ~woke
        return by_thp, span, k, b, t_reach, refilled

    def onto_list(active, pages):
        """The kernel's onto_list: `pages` freed onto kswapd's last list, spilling past high."""
        d = due_cpu[lanes, kcpu]
        kept = np.maximum(d - clock, 0.0) + pages
        out = np.where(active & (pages > 0), spill(kept), 0.0)
        due_cpu[lanes, kcpu] = np.where(active & (pages > 0), np.maximum(d, clock) + pages - out, d)
        return out

    def pop_tags(active, tags, mixed, pages):
        """The kernel's pop_tags: a thread popped `pages` off its list's head, where `tags`
        tagged pages lie among `mixed` (both updated in place)."""
        go = active & (tags > 0) & (pages > 0)
        left = np.maximum(mixed - pages, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            tags[:] = np.where(go, tags * np.where(mixed > 0, left / np.where(mixed > 0, mixed, 1.0), 0.0), tags)
        mixed[:] = np.where(go, left, mixed)

    def old_list_rate(frozen, frozen2, speed):
        r1 = np.where((old_pend > 0) & ~frozen, speed * np.minimum(old_pend / np.maximum(old_mixed, 1e-9), 1.0), 0.0)
        r2 = np.where((old2_pend > 0) & ~frozen2,
                      speed * np.minimum(old2_pend / np.maximum(old2_mixed, 1e-9), 1.0), 0.0)
        return r1 + r2

    def thp_faults(due, span_s):
        """The kernel's thp_hint_faults: how many are due within span_s, and the next after."""
        with np.errstate(invalid="ignore"):
            k = np.where(due <= span_s, np.floor((span_s - due) / thp_gap + 1e-9) + 1.0, 0.0)
            k = np.where(np.isfinite(k), k, 0.0)
            return k, np.where(k > 0, due + k * thp_gap - span_s, due - span_s)

    def thp_in_window(active, due, k):
        """The kernel's thp_in_window: of k THP hint faults from t + due, those in [0, end)."""
        count, j, go = np.zeros(n), np.zeros(n), active & (k > 0)
        while go.any():
            a = t + due + j * thp_gap
            go = go & (a < end)
            count = np.where(go & (a >= 0), count + 1.0, count)
            j = j + 1.0
            go = go & (j < k)
        return count

    def thp_walk(active, small, left_s, wake_at):
        """The kernel's thp_quiet_wake, lane by lane in lock-step."""
        j, t_w = np.zeros(n), np.zeros(n)
        woke, done = np.zeros(n, bool), ~active
        while not done.all():
            a = thp_due + j * thp_gap
            beyond = ~done & ~(a < left_s)
            level = free - small * a - 512.0 * j
            cross = ~done & ~beyond & (level < wake_at)
            ends = ~done & ~beyond & ~cross & (level - 512.0 < wake_at)
            woke, t_w = woke | ends, np.where(ends, a, t_w)
            done = done | beyond | cross | ends
            j = np.where(done, j, j + 1.0)
        return woke, t_w, j

    def mean_alloc(span_s):
        # the kernel's mean_alloc: the refaults the swap pool gives over the span
        with np.errstate(all="ignore"):
            mean = base_alloc + swapped * (1.0 - np.exp(-lam * span_s)) / span_s
        return np.where((lam > 0) & (span_s > 0), mean, base_alloc + swapped * lam)

    def refill_rate(alloc, rr):
        return np.maximum(alloc * np.maximum(num_cpus - 1.0, 0.0) / num_cpus - rr, 0.0) / f.pcp_batch

    def inside(span_s):
        return np.maximum(np.minimum(t + span_s, end) - np.maximum(t, 0.0), 0.0)

    def drain_swap(active, pool, span_s):
        back = pool * (1.0 - np.exp(-lam * span_s))
        tally.refaulted += np.where(active & (span_s > 0), back * inside(span_s) / np.maximum(span_s, 1e-300), 0.0)
        return pool - back

    def integrate_pending(active, span_s):
        ins = np.where(active, inside(span_s), 0.0)
        c = ins > 0
        pp = pending_pages()
        tally.pending_page_s += c * pp * ins
        tally.pending_peak = np.maximum(tally.pending_peak, np.where(c, pp, 0))
        tally.held_page_s += c * held * ins
        tally.held_peak = np.maximum(tally.held_peak, np.where(c, held, 0))

    def tagged_rate(per_cpu_alloc, refills, own_cpu_runs, old_rate, cover_eaten=0.0):
        """The kernel's tagged_alloc_rate."""
        sp = np.where(sp_rate >= 0, sp_rate, spread * spread_k(per_cpu_alloc * num_cpus))
        return np.where(hold, 0.0, sp + np.where(old_pend + old2_pend > 0, old_rate, 0.0)
                        + np.where(own_cpu_runs & (pcp_pend > 0), per_cpu_alloc, 0.0)
                        + np.where((buddy_pend > 0) & (buddy_cover < cover_eaten + f.pcp_batch), refills, 0.0))

    def spin_ns(need):
        # others that need a thread's flush while it runs wait the rest of it
        return need * flush_wait * 1e-9 * flush_wait / 2.0

    def thread_triggered_flush(first, by_alloc, by_write, by_mf, need):
        at = t + first
        hit = by_alloc | by_write | by_mf
        add_flush(by_alloc, at, True, "alloc", alloc_path=by_alloc.astype(float))
        add_flush(by_write, at, True, "write_fault")
        add_flush(by_mf, at, True, "memory_failure")
        tally.thread_wait_ns += (hit & counting(at)) * spin_ns(need)
        return retire(hit, at + flush_wait * 1e-9, at)       # safe once the flush is done

    # every CPU's pcp list part-way through its cycle, a quarter still holding part of what
    # kswapd left (the kernel's start_clocks); one-CPU lanes and lanes with fewer CPUs pad
    # with lists that never run empty
    lists = np.where(one_cpu, 0, L["machine.num_cpus"]).astype(int)
    due_cpu = np.full((n, max(int(lists.max()), 1)), np.inf)
    for j in range(int(lists.max())):
        has = lists > j
        due_cpu[:, j] = np.where(has, rnd.uniform(_S_CLOCK, has) * gamma(has, f.pcp_batch + 1.0), np.inf)
        held_j = has & (rnd.uniform(_S_CLOCK, has) < 0.25)
        due_cpu[:, j] += np.where(held_j, rnd.uniform(_S_CLOCK, held_j) * f.pcp_high, 0.0)
    kcpu = np.zeros(n, dtype=np.int64)           # the CPU kswapd runs on, or ran on last
    old_cpu = np.zeros(n, dtype=np.int64)        # the earlier kswapd CPU whose list holds old_pend
    old2_cpu = np.zeros(n, dtype=np.int64)       # ... and the one before (all before, as one)
    k_mixed, old_mixed, old2_mixed = np.zeros(n), np.zeros(n), np.zeros(n)  # pages among which their tags lie
    clock = np.zeros(n)

    active = t < end
    while active.any():
        alloc = base_alloc + swapped * lam
        quiet = active & ~burst
        if quiet.any():
            # migrc_hold: buddy pages alone below min wake kswapd too
            wake_at = np.where(hold & (held > 0), np.maximum(f.wmark_high, f.wmark_min + held), f.wmark_high)
            drop = np.maximum(free - wake_at, 0.0)
            single = quiet & one_cpu
            multi = quiet & ~one_cpu

            # (one CPU: the thread's refills take free memory down a batch at a time, to the one
            # below where kswapd wakes, whose first page it takes)
            k_ref = np.floor(drop / f.pcp_batch) + 1.0
            pages_q = f.pcp_batch * (k_ref - 1.0) + 1.0

            def quiet_span(alloc, rr):
                until_empty = reserve / np.maximum(rr, 1e-12)
                lasts = (alloc - rr) * until_empty >= pages_q
                span = np.where(lasts, pages_q / np.maximum(alloc - rr, 1e-12),
                                until_empty + (pages_q - (alloc - rr) * until_empty) / np.maximum(alloc, 1e-300))
                span = np.where(alloc > 0, span, end - t + 1e-9)
                return span, np.where(quiet & (alloc > 0), np.where(lasts, rr * span, reserve), 0.0)

            # one CPU: a fluid drain at the phase's mean rate, found with its span
            alloc1 = alloc
            for _ in range(3):
                span1, _ = quiet_span(alloc1, reserve_rate(alloc1 - thp, reserve))
                alloc1 = np.where(quiet, mean_alloc(span1), alloc1)
            rr = reserve_rate(alloc1 - thp, reserve)
            span1, used = quiet_span(alloc1, rr)
            # ... its allocations events: the phase lasts a Gamma of them
            n_allocs = used + pages_q
            gam = single & (alloc1 > 0) & (n_allocs >= 1.0)
            g_draw = gamma(gam, np.where(gam, n_allocs, 1.0), _S_STEP_ALLOCS)
            span1 = np.where(gam, span1 * g_draw / np.where(gam, n_allocs, 1.0), span1)
            rr = 0.5 * (rr + reserve_rate(alloc1 - thp, np.maximum(reserve - used, 0.0)))
            used = np.where(single, used, 0.0)

            # more: kswapd's last list runs again, and every list walks to the waking refill
            fro = multi & ~np.isfinite(due_cpu[lanes, kcpu])
            due_cpu[lanes, kcpu] = np.where(fro, list_due(fro, pcp_count), due_cpu[lanes, kcpu])
            k_mixed = np.where(fro, np.where(pcp_pend > 0, np.maximum(pcp_count - ahead, pcp_pend), 0.0), k_mixed)
            saved, c0, clock0 = due_cpu.copy(), rnd.counters[_S_CLOCK].copy(), clock.copy()
            speed = np.where(multi, np.maximum(alloc - thp, 0.0) / num_cpus, 0.0)
            s_wave = np.where(multi & finite_gap, np.maximum(promote - thp, 0.0) / num_cpus, 0.0)
            sp_at_q = np.where(spread > 0, sp_at, np.inf)
            walk_start(multi, buddy_cover, buddy_pend, buddy_gap, sp_at_q)
            _, span_w, n_thp, after, t_reach, refilled = quiet_refills(multi, speed - s_wave, s_wave, wake_at,
                                                                       end - t + 1e-9)
            again = multi & (lam > 0)            # refaults: walked again at the mean rate found
            alloc = np.where(again, mean_alloc(span_w), alloc)
            due_cpu[again] = saved[again]
            rnd.counters[_S_CLOCK][again] = c0[again]
            clock = np.where(again, clock0, clock)
            speed = np.where(multi, np.maximum(alloc - thp, 0.0) / num_cpus, 0.0)
            s_wave = np.where(multi & finite_gap, np.maximum(promote - thp, 0.0) / num_cpus, 0.0)
            walk_start(again, buddy_cover, buddy_pend, buddy_gap, sp_at_q)
            _, span2, k2, after2, t_reach2, refilled2 = quiet_refills(again, speed - s_wave, s_wave, wake_at,
                                                                      end - t + 1e-9)
            span_w, n_thp = np.where(again, span2, span_w), np.where(again, k2, n_thp)
            after = np.where(again, after2, after)
            t_reach, refilled = np.where(again, t_reach2, t_reach), np.where(again, refilled2, refilled)

            alloc = np.where(single, alloc1, alloc)
            span = np.where(single, span1, span_w)
            n_thp = np.where(multi, n_thp, 0.0)
            taken = np.where(single, f.pcp_batch * k_ref, np.where(multi, free - after, 0.0))
            refills_q = np.where(single, refill_rate(alloc, rr), refilled / f.pcp_batch / np.maximum(span, 1e-12))
            unfrozen = np.zeros(n, bool)
            old_q = np.where(single, old_tag_rate(rr, reserve), old_list_rate(unfrozen, unfrozen, speed))
            sp_rate[:] = np.where(multi, spread_rate_now(clock0, speed), sp_rate)
            first, hit, by_alloc, by_write, by_mf, own_q = trigger_times(quiet, span, True, (alloc - thp) / num_cpus,
                                                                         refills_q,
                                                                         old_q, np.where(multi, t_reach, -1.0),
                                                                         np.where(multi, W[:, W_T_SP], -1.0))
            # migrc_hold: the flush's release cuts the phase (a new one starts if free memory stays above high)
            cuts = quiet & hold & hit
            at = np.minimum(first + flush_wait * 1e-9, span)
            with np.errstate(invalid="ignore", divide="ignore"):
                frac = np.where(cuts & single, at / span, 1.0)
            used, taken = used * frac, taken * frac
            # more: the same walk, from the same draws, up to the cut
            cut_m = cuts & multi
            due_cpu[cut_m] = saved[cut_m]
            rnd.counters[_S_CLOCK][cut_m] = c0[cut_m]
            clock = np.where(cut_m, clock0, clock)
            walk_start(cut_m, buddy_cover, buddy_pend, buddy_gap, sp_at_q)
            _, _, k3, after3, _, _ = quiet_refills(cut_m, speed - s_wave, s_wave, wake_at, np.where(cut_m, at, np.inf))
            n_thp = np.where(cut_m, k3, n_thp)
            taken = np.where(cut_m, free - after3, taken)
            span = np.where(cuts, at, span)
            with np.errstate(invalid="ignore"):
                need = write_rate + mf_rate + tagged_rate((alloc - thp) / num_cpus, refills_q, True, old_q,
                                                          refills_q * f.pcp_batch * np.minimum(first, span))
            integrate_pending(quiet, np.minimum(first + flush_wait * 1e-9, span))
            released = thread_triggered_flush(first, by_alloc, by_write, by_mf, need - own_q)
            free = free - released
            reserve = drain_reserve(single, reserve, used)
            pcp_count = np.where(single, pcp_count + released, pcp_count)   # onto kswapd's last list
            spilled = np.where(single, spill(pcp_count), 0.0)
            pcp_count = pcp_count - spilled
            # the threads of kswapd's last and earlier CPUs popped their lists' heads
            pop_tags(multi, pcp_pend, k_mixed, clock - clock0)
            pop_tags(multi, old_pend, old_mixed, clock - clock0)
            pop_tags(multi, old2_pend, old2_mixed, clock - clock0)
            spread_onto_list(multi & (buddy_pend > 0))
            pop_spread(multi)
            spilled = spilled + onto_list(multi, released)
            # (the small promotions came in the wave: the phase's share of it)
            with np.errstate(invalid="ignore", divide="ignore"):
                x0q = np.where(finite_gap, thp_gap - thp_due, 0.0)
                share = (wave_integral(x0q + span) - wave_integral(x0q)) / np.maximum(span, 1e-300)
            ins_q = inside(np.where(quiet, span, 0.0))
            tally.promoted += quiet * (promote - thp) * np.where(s_wave > 0, ins_q * share, ins_q)
            tally.promoted += 512.0 * thp_in_window(quiet, thp_due, n_thp)
            cold_pages = cold_pages + poisson(quiet, f.cold_list_share * alloc * span)
            back = np.minimum(np.maximum((alloc - base_alloc) * span, 0.0), swapped)
            tally.refaulted += np.where(multi & (span > 0), back * inside(span) / np.maximum(span, 1e-300), 0.0)
            swapped = np.where(single, drain_swap(single, swapped, np.where(single, span, 0.0)),
                               np.where(multi, swapped - back, swapped))
            t = np.where(quiet, t + span, t)
            thp_due = np.where(quiet, thp_faults(thp_due, span)[1], thp_due)
            free = free + spilled - taken
            # the phase's refills ate the buddy head: clean pages over the tagged ones, then those
            eat_buddy(single, taken, 1.0, alloc, np.where(single, span, 0.0))
            eat_buddy_head(multi, taken)
            quiet = quiet & ~(cuts & (free >= f.wmark_high))        # kswapd sleeps on there
            # kswapd wakes; in migrc_hold it first flushes and frees what it holds
            if wakes is not None:       # (lane, free memory counting held folios, held) at each wake
                wakes.extend((int(i), free[i], held[i]) for i in np.flatnonzero(quiet))
            woke_hold = quiet & hold & (held > 0)
            add_flush(woke_hold, t, False, "reclaim")
            released = retire(woke_hold, t + flush_wait * 1e-9, t)
            free = free - released
            single, multi = quiet & one_cpu, quiet & ~one_cpu
            pcp_count = np.where(single, pcp_count + released, pcp_count)
            spilled = np.where(single, spill(pcp_count), 0.0)
            pcp_count = pcp_count - spilled
            free = free + spilled + onto_list(multi, released)
            # pending pages stay on the old kswapd CPU's pcp list, among those kswapd freed after them
            # (the kernel's leave_list: the last list before keeps its tags, and moves down)
            moved = quiet & (pcp_pend > 0)
            same = moved & (old_pend > 0) & (old_cpu == kcpu)
            other = moved & ~same
            back2 = other & (old2_pend > 0) & (old2_cpu == kcpu)      # kswapd's new tags over older ones
            k_mixed = np.where(back2, k_mixed + old2_mixed, k_mixed)
            pcp_pend = np.where(back2, pcp_pend + old2_pend, pcp_pend)
            old2_pend = np.where(back2, 0.0, old2_pend)
            down = other & (old_pend > 0)
            old2_mixed = np.where(down, np.where(old2_pend > 0, old2_mixed, 0.0) + old_mixed, old2_mixed)
            old2_cpu = np.where(down, old_cpu, old2_cpu)
            old2_pend = np.where(down, old2_pend + old_pend, old2_pend)
            old_mixed = np.where(same, old_mixed + k_mixed, np.where(other, k_mixed, old_mixed))
            old_cpu = np.where(other, kcpu, old_cpu)
            old_pend = np.where(same, old_pend + pcp_pend, np.where(other, pcp_pend, old_pend))
            pcp_pend[quiet] = 0.0
            u_pcp = rnd.uniform(_S_PCP, quiet)
            # one CPU: what kswapd left serves the thread later; the waking refill left a batch
            reserve = np.where(single, reserve + pcp_count, reserve)
            pcp_count = np.where(single, f.pcp_batch - 1.0, pcp_count)
            # more: kswapd wakes on any CPU and finds its list as its clock has it, then freezes it
            k_new = np.minimum((u_pcp * num_cpus).astype(np.int64), num_cpus.astype(np.int64) - 1)
            kcpu = np.where(multi, k_new, kcpu)
            pcp_count = np.where(multi, list_pages(kcpu), pcp_count)
            due_cpu[lanes, kcpu] = np.where(multi, np.inf, due_cpu[lanes, kcpu])
            spread[:] = np.where(multi & (kcpu == sp_cpu), 0.0, spread)
            burst = np.where(quiet, free < f.wmark_promo, burst)
            burst &= f.migrating
            # migrc_hold: that flush is kswapd's first work; the others allocate on through it
            lead = woke_hold & burst
            if lead.any():
                span_l = np.where(lead, flush_wait * 1e-9, 0.0)
                alloc_l = mean_alloc(span_l)
                off = np.maximum(alloc_l - promote, 0.0)
                lead1, leadm = lead & one_cpu, lead & ~one_cpu
                served = np.minimum(reserve_rate(off, reserve) * span_l, reserve)
                reserve = drain_reserve(lead1, reserve, served)
                free = np.where(lead1, free - (off * span_l - served), free)
                s_off = off / np.maximum(num_cpus - 1.0, 1.0)
                walk_start(leadm, buddy_cover, 0.0, 1.0, np.inf)
                _, refilled_l, _, _, due_l = refill_events(leadm, span_l, s_off, s_off, np.inf)
                free = np.where(leadm, free - refilled_l, free)
                cold_pages = np.where(lead, cold_pages + np.maximum(f.cold_list_share * alloc_l * span_l
                                                                    - f.cold_promote_share * promote * span_l, 0.0),
                                      cold_pages)
                swapped = np.where(lead, drain_swap(lead, swapped, span_l), swapped)
                thp_due = np.where(lead1, thp_faults(thp_due, span_l)[1], np.where(leadm, due_l, thp_due))
                t = np.where(lead, t + span_l, t)
            active = t < end

        step = active & burst
        if not step.any():
            continue
        is_thp = step & (to_thp <= 0)
        small = step & ~is_thp
        # the batch that reaches a THP stops short of it
        n_small = np.where(small, np.minimum(lru, to_thp), lru)
        to_thp = np.where(small, to_thp - n_small, to_thp)
        to_thp = np.where(is_thp, poisson(is_thp, np.where(is_thp, small_per_thp, 0.0), _S_THP), to_thp)
        e = f.evict_share
        n_cold = np.where(small, np.minimum(cold_pages, n_small), 0.0)
        cold_pages = cold_pages - n_cold
        ro_c, ro_h = f.read_only_cold_p, f.read_only_hot_p
        ro_p = (n_cold * ro_c + (n_small - n_cold) * ro_h) / n_small
        ev = binomial(step, np.where(small, n_small, 0.0), e, _S_EVICT)
        u_ro = rnd.uniform(_S_RO, step)
        dirty = binomial(step, ev, 1.0 - ro_p, _S_DIRTY)
        u_last = rnd.uniform(_S_LAST, step)
        dem = np.where(small, n_small - ev, 0.0)
        left = (ev > 0) & (u_last * ev < ev - dirty)
        d_cold = dem * n_cold / n_small
        d_hot = dem - d_cold
        ro_dem = np.where(u_ro < ro_c ** d_cold * ro_h ** d_hot, dem,
                          np.where(u_ro < 1.0 - (1.0 - ro_c) ** d_cold * (1.0 - ro_h) ** d_hot,
                                   np.clip(np.round(dem * ro_p), 1.0, dem - 1.0), 0.0))
        ro_dem = np.where(dem > 0, ro_dem, 0.0)
        pages = np.where(is_thp & step, 512.0, np.where(small, n_small, 0.0))
        may_defer = defers & small & (free > f.wmark_min)
        k_def = np.where(may_defer, ro_dem + np.where(luf, ev - dirty, 0.0), 0.0)
        cand = k_def > 0
        give_up = cand & (t + dirty * flush_wait * 1e-9 < flush_end)   # a thread's flush is running
        owed_before = pend_len > 0
        left = left & ~(luf & cand)
        n_before = dirty
        after = ((dem - np.where(may_defer, ro_dem, 0.0)) > 0) | left | give_up
        n_before = np.where(policy == 0, dirty + dem, n_before)
        after = np.where(policy == 0, left, after)
        n_before = np.where(is_thp, 0.0, n_before)
        after = np.where(is_thp, True, after)
        n_before = np.where(policy == 5, 0.0, n_before)
        after = np.where(policy == 5, False, after)
        nf = (n_before + after) * step
        survive = cand & ~give_up & ~after
        deferred_pages = np.where(survive, k_def, 0.0)
        work_ns = np.where(is_thp, 512 * f.copy_page_ns + migrate_ns, dem * f.copy_page_ns + n_small * migrate_ns) * step
        span = (work_ns + nf * flush_wait) * 1e-9
        alloc = np.where(step, mean_alloc(span), alloc)

        # promotions are refused once allocations drain free memory below the high watermark
        rr = reserve_rate(alloc - thp, reserve)
        multi = step & ~one_cpu
        # the others' threads allocate on their lists' clocks (kswapd's CPU's faults go elsewhere)
        old_frozen = ~np.isfinite(due_cpu[lanes, old_cpu])
        old2_frozen = ~np.isfinite(due_cpu[lanes, old2_cpu])
        sp_live = multi & (spread > 0) & np.isfinite(due_cpu[lanes, sp_cpu])
        clock0 = clock.copy()
        others = np.maximum(num_cpus - 1.0, 1.0)
        walk_start(multi, buddy_cover, buddy_pend, buddy_gap, np.where(sp_live, sp_at, np.inf))
        allowed_ev, refilled, thp_taken, t_buddy, due_after = refill_events(
            multi, span, np.maximum(alloc - thp, 0.0) / others, np.maximum(alloc - promote, 0.0) / others,
            f.wmark_high)
        thp_due = np.where(multi, due_after, thp_due)
        allowed = np.where(multi, allowed_ev,
                           np.minimum(span, np.maximum(free - f.wmark_high, 0.0) / np.maximum(alloc - rr, 1e-12)))
        t_buddy = np.where(multi, t_buddy, -1.0)
        take = (alloc - thp) * span - (promote - thp) * (span - allowed) + thp_taken
        cold_pages = cold_pages + poisson(step, np.maximum(f.cold_list_share * alloc * span
                                                         - f.cold_promote_share * promote * (span - allowed), 0.0))
        step_alloc = np.where(span > 0, take / np.maximum(span, 1e-300), alloc)
        small_speed = np.maximum(take - thp_taken, 0.0) / np.maximum(span, 1e-300) / others
        # the kernel's refill_rate_now: lists in their refill cycle run empty once a batch
        cycling = (due_cpu - clock[:, None] <= f.pcp_batch[:, None]).sum(1)
        refills = np.where(multi, cycling * small_speed / f.pcp_batch, refill_rate(step_alloc, rr))
        sp_rate[:] = np.where(multi, np.where(sp_live, spread_rate_now(clock, small_speed), 0.0), sp_rate)
        t_spread = np.where(multi, W[:, W_T_SP], -1.0)

        # events that fire for older pending pages while kswapd works
        # kswapd's first flush, once done, retires what is pending; a thread pays it only before
        fw_s = flush_wait * 1e-9
        t_k = np.where(n_before > 0, fw_s, np.where(after, (n_before + 1.0) * fw_s, np.inf))
        # old kswapd CPUs' threads pop their lists only for the small allocations made
        small_rate = np.where(step & (span > 0), np.maximum(take - thp_taken, 0.0) / np.maximum(span, 1e-300), 0.0)
        old_rate = np.where(multi, old_list_rate(old_frozen, old2_frozen, small_speed),
                            old_tag_rate(reserve_rate(small_rate, reserve), reserve))
        first, hit, by_alloc, by_write, by_mf, own_s = trigger_times(step, np.minimum(span, t_k), one_cpu,
                                                                     small_rate / num_cpus, refills, old_rate, t_buddy,
                                                                     t_spread)
        with np.errstate(invalid="ignore"):
            need = write_rate + mf_rate + tagged_rate(small_rate / num_cpus, refills, one_cpu, old_rate,
                                                      refills * f.pcp_batch * np.minimum(first, span))
        integrate_pending(step, np.minimum(np.minimum(first + fw_s, t_k), span))
        pp_at_flush = pending_pages()
        released = thread_triggered_flush(first, by_alloc, by_write, by_mf, need - own_s)
        pp_before = pending_pages()
        # kswapd's own flushes: each costs a shootdown; the first retires what is pending
        c = step & counting(t)
        for k in range(int(nf.max(initial=0))):
            add_flush(step & (nf > k), t, False)
        had = step & (pend_len > 0) & (n_before > 0)
        tally.triggers["piggyback"] += had & c
        released = released + retire(had, t + fw_s, t, keep_tags=True)
        now_retired = step & cand & ~give_up & after
        # a write fault or memory failure during kswapd's flush pays the fresh deferral
        # (or an allocation taking a page tagged with the generation it reuses)
        r_wf = write_rate + mf_rate
        r_all = r_wf + tagged_rate(small_rate / num_cpus, refills, one_cpu, old_rate)
        p_race = 1.0 - np.exp(-r_all * flush_wait * 1e-9)
        u_race = rnd.uniform(_S_RACE, step)
        raced = now_retired & (u_race < p_race)
        is_mf = u_race * r_all < p_race * mf_rate
        is_wf = ~is_mf & (u_race * r_all < p_race * r_wf)
        add_flush(raced & is_mf, t, True, "memory_failure", raced=True)
        add_flush(raced & is_wf, t, True, "write_fault", raced=True)
        add_flush(raced & ~is_mf & ~is_wf, t, True, "alloc", alloc_path=np.ones(n), raced=True)
        # the racer's own CPU does not spin on its flush (the kernel's racer_own_rate)
        pcpu = small_rate / num_cpus
        sp = np.where(sp_rate >= 0, sp_rate, spread * spread_k(small_rate))
        own_w = (sp * np.minimum(sp, pcpu) + np.where(old_pend + old2_pend > 0, old_rate * np.minimum(old_rate, pcpu),
                                                      0.0)
                 + np.where(one_cpu & (pcp_pend > 0), pcpu * pcpu, 0.0))
        racer_own = np.where(hold | (r_all <= 0), 0.0, own_w / np.maximum(r_all, 1e-300))
        tally.thread_wait_ns += (raced & counting(t)) * spin_ns(r_all - racer_own)
        t_last = (n_before + 1.0 + np.where(raced, u_race / np.maximum(p_race, 1e-300), 0.0)) * fw_s
        released = released + retire(raced, t + t_last, t)
        had = step & ~raced & (((pend_len > 0) & after) | now_retired)
        tally.triggers["piggyback"] += had & c & ~give_up
        released = released + retire(had, t + t_last, t, keep_tags=True)
        age = t_last
        tally.pending_page_s += now_retired * k_def * inside(age)
        tally.pending_peak = np.maximum(tally.pending_peak, np.where(
            now_retired & c, k_def + np.where(n_before == 0, pp_before, 0.0), 0.0))
        nr = now_retired & c
        tally.stale_pages += nr * k_def
        tally.stale_page_s += nr * k_def * age
        np.add.at(tally.stale_hist, (lanes[nr], np.searchsorted(STALE_BINS_US, age[nr] * 1e6)), k_def[nr])
        tally.triggers["give_up"] += give_up & c
        tally.kswapd_ns += c * work_ns
        tally.demoted += c * np.where(is_thp, 512.0, dem)
        tally.evicted += c * ev
        # a thread's flush during the step covers the step's own deferral too
        covered = survive & hit & (n_before == 0)
        at = t + first
        ins = np.where(covered, inside(np.where(covered, first + fw_s, 0.0)), 0.0)
        tally.pending_page_s += deferred_pages * ins
        cc = covered & counting(at)
        tally.pending_peak = np.maximum(tally.pending_peak, np.where(cc, pp_at_flush + deferred_pages, 0.0))
        tally.stale_pages += cc * deferred_pages
        tally.stale_page_s += cc * deferred_pages * np.where(cc, first + fw_s, 0.0)
        np.add.at(tally.stale_hist, (lanes[cc], np.searchsorted(STALE_BINS_US, (first + fw_s)[cc] * 1e6)),
                  deferred_pages[cc])
        deferred_pages = np.where(covered, 0.0, deferred_pages)
        survive = survive & ~covered
        add_pending(survive, t, deferred_pages)       # pending from the unmapping at the step's start
        pp = pending_pages()
        # a thread pays it while kswapd copies, unless older deferrals' trigger covered the step
        own = survive & ((n_before > 0) | ~owed_before)
        a = n_before * fw_s
        first2, paid, by_alloc2, by_write2, by_mf2, own2 = trigger_times(
            own, span - a, one_cpu, small_rate / num_cpus, refills, old_rate, None,
            np.where(t_spread >= 0, np.maximum(t_spread - a, 0.0), -1.0))
        released = released + thread_triggered_flush(a + first2, by_alloc2, by_write2, by_mf2, need - own2)
        ins = np.where(survive, inside(np.where(paid, a + first2 + fw_s, span)), 0.0)
        tally.pending_page_s += deferred_pages * ins
        tally.pending_peak = np.maximum(tally.pending_peak, np.where(ins > 0, pp, 0))
        deferred_pages = np.where(paid, 0.0, deferred_pages)
        tagged = np.where(now_retired & ~hold & ~raced, k_def, 0.0)
        # other CPUs' refills through the step ate the buddy head as it was before the step's spills
        eat_buddy(step & one_cpu, 0.0, 1.0, step_alloc, span)
        # more: the tagged pages the step's refills took go onto a list, popped as it reaches them
        spread_onto_list(multi & (buddy_pend > 0))
        pop_spread(multi & np.isfinite(due_cpu[lanes, sp_cpu]))
        eat_buddy_head(multi, refilled + thp_taken)
        # one CPU: the thread's allocations in the step, events, pop kswapd's list
        single = one_cpu & step
        take = np.where(single, poisson(single, take, _S_STEP_ALLOCS), take)
        from_pcp = np.where(single, np.minimum(take, pcp_count), 0.0)
        pcp_count = pcp_count - from_pcp
        take = take - from_pcp
        pcp_pend[:] = np.where(single, np.minimum(pcp_pend, pcp_count), pcp_pend)
        ahead = np.where(step, np.minimum(ahead, np.maximum(pcp_count - pcp_pend, 0.0)), ahead)
        free = free - released          # held pages freed onto kswapd's pcp list
        pcp_count = pcp_count + released

        # freed pages: held (migrc_hold) or onto kswapd's pcp list, spilling to buddy
        held += np.where(hold, deferred_pages, 0.0)
        freed = np.where(hold, pages - deferred_pages, pages) * step
        small_freed = np.where(is_thp, 0.0, freed)
        new_tags = np.where(hold, 0.0, deferred_pages) + tagged     # tagged: carrying the retired generation
        # kswapd's list spills in the order it was filled: older clean pages first, then the mix
        ahead = np.where(step & (pcp_pend <= 0) & (new_tags > 0), pcp_count + freed - new_tags, ahead)
        pcp_pend += new_tags
        pcp_count += small_freed
        spilled = spill(pcp_count)
        from_ahead = np.where(step, np.minimum(spilled, ahead), 0.0)
        mixed = pcp_count - ahead
        with np.errstate(all="ignore"):
            spilled_pend = np.where(mixed > 0, np.minimum((spilled - from_ahead) * pcp_pend / mixed, pcp_pend), 0.0)
        ahead = ahead - from_ahead
        spilled_clean = spilled - spilled_pend
        single = step & one_cpu
        # (a THP's frames go to the buddy head as a clean spill, over the tagged pages there)
        spill_tags(step & ~one_cpu, spilled + np.where(is_thp, freed, 0.0), spilled_pend, spilled - from_ahead)
        buddy_cover = np.where(single, np.where(spilled_pend > 0, 0.0, buddy_cover + spilled_clean * (buddy_pend > 0)),
                               buddy_cover)
        buddy_pend += np.where(single, spilled_pend, 0.0)
        pcp_pend -= spilled_pend
        pcp_count -= spilled
        # with one CPU, the thread's refills eat into the clean pages above the pending ones
        buddy_cover = np.where(step & one_cpu, np.maximum(buddy_cover - refills * f.pcp_batch * span, 0.0), buddy_cover)

        tally.promoted += step * ((promote - thp) * inside(allowed) + np.where(counting(t), thp_taken, 0.0))
        take = take - thp_taken
        single = step & one_cpu
        from_reserve = np.minimum(np.minimum(rr * span, reserve), take) * single
        reserve = drain_reserve(single, reserve, from_reserve)
        take = take - from_reserve
        # buddy lost the refills (whole batches, which the lists hold) and the THP promotions
        pop_tags(multi & ~old_frozen, old_pend, old_mixed, clock - clock0)
        pop_tags(multi & ~old2_frozen, old2_pend, old2_mixed, clock - clock0)
        take = np.where(multi, refilled + thp_taken, take)
        to_buddy = np.where(is_thp, freed, spilled) * step
        free = free + to_buddy + np.where(hold, deferred_pages, 0.0) - take
        swapped = np.where(step, drain_swap(step, swapped, span) + ev * refault_share, swapped)
        t = np.where(step, t + span, t)
        burst = np.where(step, free < f.wmark_promo, burst)
        active = t < end
    return tally
