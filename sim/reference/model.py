"""One policy at one point: the reference model's state, set-up and listener hooks."""

from __future__ import annotations

from collections import deque

import numpy as np

from ..engine import lane_arrays
from ..flush_layout import STALE_BINS_US
from ..kernel import PAGES_PER_MIB, THP_PAGES
from ..params import SimParams
from ..steady import steady_flows
from .des import Counters, Driver
from .memory import FreeLists
from .migrc_state import MigrcState
from .reclaim import Reclaim
from .tlb import TlbModel
from .workload import SLOW, Workload

STREAMS = ("init", "scan", "hint_cpu", "kswapd", "evict", "write", "read", "extra", "refault", "mf", "ipi")
SCAN_CHUNKS_PER_S = 1000.0


def streams(seed: int) -> dict:
    """One PCG64(seed) family; each event kind draws from its own jumped copy, so the
    policies of one point see the same numbers for the same kind of event."""
    base = np.random.PCG64(int(seed))
    return {k: np.random.Generator(base.jumped(i + 1)) for i, k in enumerate(STREAMS)}


class Model(Workload, Reclaim):
    def __init__(self, params: SimParams, policy: str, seed: int, **guards):
        self.params, self.policy = params, policy
        L = lane_arrays([params])
        self.L = L
        f = self.flows = steady_flows(L)
        g = lambda k: float(L[k][0])  # noqa: E731
        self.r = streams(seed)
        self.num_cpus = int(g("machine.num_cpus"))
        self.mask = np.arange(int(f.run_threads[0]))
        self.mask_set = frozenset(int(c) for c in self.mask)
        self.fast_pages = int(f.fast_pages[0])
        self.wmark_min, self.wmark_high, self.wmark_promo = (float(x[0]) for x in (f.wmark_min, f.wmark_high,
                                                                                    f.wmark_promo))
        self.migrating = bool(f.migrating[0])
        self.lru_batch = int(g("reclaim.lru_batch_pages"))
        self.evict_fraction = g("reclaim.evict_fraction")
        self.copy_page_ns = float(f.copy_page_ns[0])
        self.migrate_ns = g("machine.migrate_folio_ns")
        self.wf = g("workload.write_fraction")
        self.defer_migration = policy in ("migrc", "migrc_hold", "luf")
        self.hold = policy == "migrc_hold"
        self.window = g("fidelity.window_s")

        # pages and their access rates (steady_flows' per-page rates at zero overhead)
        n = self.n_pages = max(int(round(g("workload.footprint_mib") * PAGES_PER_MIB)), 1)
        n_thp = int(round(n * g("workload.large_folio_fraction") / THP_PAGES))
        n_small = max(n - n_thp * THP_PAGES, 0)
        self.n_pages = n = n_small + n_thp * THP_PAGES
        self.n_folios = nf = n_small + n_thp
        # THPs spread evenly through the address space among the small folios, so that
        # any stretch the scanner or the LRU covers has the workload's large-folio share
        # (the fast engine's assumption); one block of THPs made a run's migrations all
        # THP or all small depending on where the scanner started
        place = np.concatenate([(np.arange(n_small) + 0.5) / max(n_small, 1), (np.arange(n_thp) + 0.5) / max(n_thp, 1)])
        sizes = np.concatenate([np.ones(n_small, np.int64), np.full(n_thp, THP_PAGES, np.int64)])
        self.size = sizes[np.argsort(place, kind="stable")]
        self.folio_start = np.concatenate([[0], np.cumsum(self.size)[:-1]])
        ri = self.r["init"]
        n_hot_folios = int(round(g("workload.hot_set_fraction") * nf))
        self.hot = np.zeros(nf, bool)
        self.hot[ri.permutation(nf)[:n_hot_folios]] = True
        hot_pages = self.size[self.hot].sum()
        cold_pages = n - hot_pages
        a_hot = 1.0 if cold_pages <= 0 else (0.0 if hot_pages <= 0 else g("workload.hot_access_fraction"))
        units_per_s = f.run_threads[0] * g("workload.cpu_utilization") * 1e9 / f.unit_ns[0]
        touches = units_per_s * g("workload.random_pages_per_unit")
        lam_hot = touches * a_hot / max(hot_pages, 1)
        lam_cold = touches * (1 - a_hot) / max(cold_pages, 1)
        self.lam = np.where(self.hot, lam_hot, lam_cold) * self.size
        self.ro_type = ri.random(nf) < g("workload.read_only_fraction")
        self.loc = np.full(nf, SLOW, np.int64)
        self.mapped_w = np.zeros(nf, bool)
        self.ver = np.zeros(nf, np.int64)
        self.thp_frames: dict[int, list] = {}
        self.other_frame: dict[int, int] = {}
        self.next_other = nf
        self.lru_hot, self.lru_cold = deque(), deque()

        # scanner
        scan_pps = g("reclaim.numa_scan_size_mib") * PAGES_PER_MIB / (g("reclaim.numa_scan_period_ms") / 1e3)
        self.cycle_s = n / scan_pps
        self.scan_dt = 1.0 / SCAN_CHUNKS_PER_S
        self.scan_pages_per_s = scan_pps
        self.scan_carry = 0.0    # chunks are whole pages; the fractions carry over, so the rate is exact
        self.scan_period_s = g("reclaim.numa_scan_period_ms") / 1e3
        self.threshold_s = g("reclaim.hot_threshold_ms") / 1e3
        self.rate_limit_pages = g("reclaim.promote_rate_limit_mib_per_s") * PAGES_PER_MIB
        self.rate_sec, self.rate_used = None, 0
        self.extra_pps = g("reclaim.extra_alloc_mib_per_s") * PAGES_PER_MIB if self.migrating else 0.0
        self.mf_rate = g("memory.memory_failure_per_s")

        # machine
        self.state = MigrcState(listener=self, **guards)
        self.tlb = TlbModel(self.num_cpus)
        self.c = Counters(self.num_cpus, STALE_BINS_US)
        cost = dict(util=g("workload.cpu_utilization"), broadcast=bool(g("machine.broadcast_flush")),
                    broadcast_ns=g("machine.broadcast_flush_ns"), base_ns=g("machine.ipi_send_base_ns"),
                    per_target_ns=g("machine.ipi_send_per_target_ns"))
        self.drv = Driver(-g("fidelity.warmup_s"), self.window, self.state, self.tlb, cost, self.r["ipi"], self.c)
        self.mem = FreeLists(self.fast_pages, self.num_cpus, int(f.pcp_batch[0]), int(f.pcp_high[0]))
        self.kswapd_running = False
        self.kswapd_cpu = -1
        self.pending_pages = self.held_pages = 0
        self._last_t = self.drv.now
        self._initial_placement(resid_s=max(self.fast_pages - self.wmark_promo, 1) / max(f.reclaim_per_s[0], 1e-9))
        self._start_processes()

    def now(self):
        return self.drv.now

    def _initial_placement(self, resid_s):
        """Start near steady state: hot folios first, then cold ones, until free memory is at its
        starting level (`_start_free`).

        The scanner's last pass (tau seconds ago at a folio's address distance behind it)
        armed a hint fault that fires at the folio's first touch after it, `d` later. Where
        d < tau the fault has fired and promoted the folio (if d beat the hot threshold);
        within a class the folios promoted most recently are the resident ones, then those
        promoted on earlier passes. LRU order is that age order, oldest at the tail;
        writable data has been written with its age's probability. Faults still to come
        (tau < d < cycle) are armed by `pending_hint_faults`.
        """
        ri = self.r["init"]
        self.scan_pos = int(ri.integers(self.n_pages))
        budget = self.fast_pages - self._start_free(ri) if self.migrating else self.fast_pages
        pcp_pages = self._initial_pcp_pages() if self.migrating else np.zeros(self.num_cpus, np.int64)
        budget -= int(pcp_pages.sum())
        behind = (self.scan_pos - self.folio_start) % self.n_pages     # address distance behind the scanner
        self.scan_age_s = behind / self.n_pages * self.cycle_s
        self.first_touch_s = self.r["scan"].exponential(1.0, self.n_folios) / np.maximum(self.lam, 1e-300)
        fired = (self.first_touch_s < self.scan_age_s) & (self.first_touch_s < self.threshold_s)
        since = np.where(fired, self.scan_age_s - self.first_touch_s, self.scan_age_s + self.cycle_s)
        hot_idx, cold_idx = np.flatnonzero(self.hot), np.flatnonzero(~self.hot)
        order = np.concatenate([hot_idx[np.argsort(since[hot_idx], kind="stable")],
                                cold_idx[np.argsort(since[cold_idx], kind="stable")]])
        fits = np.cumsum(self.size[order]) <= budget
        resident = order[fits]
        frames = ri.permutation(self.fast_pages)
        used = 0
        for v in resident[np.argsort(-since[resident], kind="stable")]:
            sz = int(self.size[v])
            fr = frames[used:used + sz].tolist()
            used += sz
            self.loc[v] = fr[0]
            if sz > 1:
                self.thp_frames[int(v)] = fr
            (self.lru_hot if self.hot[v] else self.lru_cold).append(int(v))
        for lru in (self.lru_hot, self.lru_cold):
            k = len(lru)
            for i, v in enumerate(lru):
                age = resid_s * (1 - i / max(k, 1))
                if not self.ro_type[v] and self.wf > 0:
                    self.mapped_w[v] = ri.random() < 1 - np.exp(-self.lam[v] * self.wf * age)
        for cpu, k in enumerate(pcp_pages):
            self.mem.pcp[cpu].extend(frames[used:used + k].tolist())
            used += int(k)
        self.mem.free_large(frames[used:].tolist())
        self._initial_swap()

    def _start_free(self, ri) -> int:
        """Free pages at the start: a level of a quiet phase, uniform among the promo
        watermark less whole pcp batches down to high (free memory moves by batches), not
        always the cycle's start, which a window shorter than a cycle would then over-weigh."""
        promo, batch = int(self.wmark_promo), self.mem.batch
        steps = int(max(promo - self.wmark_high, 0) // batch)
        return promo - batch * int(ri.integers(steps + 1))

    def _initial_pcp_pages(self):
        """Free pages each CPU's pcp list holds in steady state, outside NR_FREE_PAGES: its
        thread's refill of `batch` pages part used and, on about a quarter of the CPUs, what
        kswapd left there on its last visit (up to `high`), draining. (A quarter keeps the
        lists' total level through a run at the seed's and at 64 CPUs.) Starting with every
        free page in buddy would make kswapd reclaim them all again in the first 0.1 s.
        """
        ri, mem = self.r["init"], self.mem
        refill = np.floor(ri.random(self.num_cpus) * mem.batch)
        left = np.where(ri.random(self.num_cpus) < 0.25, np.floor(ri.random(self.num_cpus) * mem.high), 0)
        return np.minimum(refill + left, mem.high).astype(np.int64)

    def _initial_swap(self):
        """Start with the steady pool of evicted pages waiting to be touched again
        (refault rate / touch rate: as the fast engine starts), taken from the small
        folios not on the fast node; each refaults after its own exponential delay."""
        f = self.flows
        lam = float(f.refault_lam_per_s[0])
        if not (self.migrating and lam > 0):
            return
        pool = int(round(float(f.refault_per_s[0]) / lam))
        cand = np.flatnonzero((self.loc == SLOW) & (self.size == 1))
        for v in self.r["init"].permutation(cand)[:pool]:
            self._to_swap(int(v))

    def _start_processes(self):
        d, ri = self.drv, self.r["init"]
        for lru in (self.lru_hot, self.lru_cold):
            for v in lru:
                self.arm_write(v)
        if self.migrating:
            self.pending_hint_faults()
            d.at(d.now + ri.random() * self.scan_dt, self.on_scan_chunk)
            d.at(d.now + ri.random() * self.scan_period_s, self.on_scan_flush)
            if self.extra_pps > 0:
                d.at(d.now + self.r["extra"].exponential(1.0 / self.extra_pps), self.on_extra_alloc)
        if self.mf_rate > 0:
            d.at(d.now + self.r["mf"].exponential(1.0 / self.mf_rate), self.on_memory_failure)
        d.at(d.now + 0.01, self.on_prune)

    def on_prune(self):
        self.tlb.prune(self.mask_set, self.drv.now)
        self.drv.at(self.drv.now + 0.01, self.on_prune)

    # -- statistics of pending/held pages (time integrals inside the window) --
    def _pending_change(self, dp, held):
        t = self.drv.now
        lo, hi = max(self._last_t, 0.0), min(t, self.window)
        if hi > lo:
            self.c.pending_page_s += self.pending_pages * (hi - lo)
            self.c.held_page_s += self.held_pages * (hi - lo)
            # the level held since the last change counts too: a run whose deferral began
            # before the window and outlasted it saw no change inside, and its peak read 0
            # (high_watermark_gap/migrc_hold: 19 of 24 windows, each holding ~28000 pages)
            self.c.pending_peak = max(self.c.pending_peak, self.pending_pages)
            self.c.held_peak = max(self.c.held_peak, self.held_pages)
        self._last_t = t
        self.pending_pages += dp
        self.held_pages += held
        if self.drv.counting():
            self.c.pending_peak = max(self.c.pending_peak, self.pending_pages)
            self.c.held_peak = max(self.c.held_peak, self.held_pages)

    def finish(self):
        self.drv.now = self.window
        self._pending_change(0, 0)

    # -- MigrcState listener --
    def retired(self, meta, trigger, now):
        for rec in meta:
            if rec.retired:
                continue
            rec.retired = True
            if 0.0 <= now < self.window:
                self.c.stale_pages += rec.pages
                self.c.stale_page_s += rec.pages * (now - rec.unmap_t)
                self.c.stale_hist[np.searchsorted(STALE_BINS_US, (now - rec.unmap_t) * 1e6)] += rec.pages
            held = rec.held or []
            self._pending_change(-rec.pages, held=-len(held))
            for fr in held:
                self.mem.free_page(rec.cpu, fr, 0)
        if trigger == "piggyback" and self.drv.counting():
            self.c.triggers["piggyback"] += 1

    def give_up(self):
        if self.drv.counting():
            self.c.triggers["give_up"] += 1

    def deferred_flush(self, reason):
        if self.drv.counting() and reason in self.c.triggers:
            self.c.triggers[reason] += 1
