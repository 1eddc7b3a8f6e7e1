"""The workload's side of the reference model: pages, the NUMA scanner,
hinting-fault promotions, write faults, refaults and other allocations.

Pages are folios in address order (small ones first, then 2 MiB THPs). Each
has a location (a fast-node frame, the slow node, or swapped out), a type
(read-only data or writable data), its current mapping (read-only or
writable) and an access rate from `steady.steady_flows`' per-page rates.
"""

from __future__ import annotations

import numpy as np

from .migrc_state import Flush, Task

SLOW, SWAPPED = -1, -2


class Workload:
    """Mixin of `model.Model`: everything a workload thread does."""

    # -- helpers --
    def fault_cpu(self, stream="hint_cpu") -> int:
        """The CPU of the first thread to touch a page: a running one. While kswapd reclaims
        on a CPU of the mm, the thread it preempted there takes no faults."""
        cpu = int(self.r[stream].choice(self.mask))
        if self.kswapd_running and cpu == self.kswapd_cpu and len(self.mask) > 1:
            cpu = int(self.mask[(np.flatnonzero(self.mask == cpu)[0] + 1) % len(self.mask)])
        return cpu

    def lam_cpu(self, v: int) -> float:
        return self.lam[v] / len(self.mask) if v < self.n_folios else 0.0

    def arm_write(self, v: int):
        """Writable data mapped read-only is written at rate lam * write_fraction: a do_wp_page()."""
        if v < self.n_folios and not self.ro_type[v] and not self.mapped_w[v] and self.wf > 0:
            self.drv.at(self.drv.now + self.r["write"].exponential(1.0 / (self.lam[v] * self.wf)),
                        self.on_write, v, int(self.ver[v]))

    def exposed_reads(self, exposed):
        """The safety checker's reads: each CPU that may still hold a stale entry reads it later."""
        for e, cpu in exposed:
            rate = self.lam_cpu(e.page)
            if rate > 0:
                self.drv.at(self.drv.now + self.r["read"].exponential(1.0 / rate), self.on_read, cpu, e.page)

    def on_read(self, cpu: int, v: int):
        self.tlb.read(cpu, v, self.drv.now)

    def allocate(self, task: Task, size: int):
        """Generator: frames for a new folio; runs the deferred flush its frames ask for.
        Returns the frames, or None when the node is out of memory."""
        if size == 1:
            frame, mgen = self.mem.alloc_page(task.cpu)
            frames = None if frame is None else [frame]
        else:
            frames, mgen = self.mem.alloc_large(size)
        if frames is None:
            return None
        self.wake_kswapd_if_low()
        yield from self.state.check_migrc_flush(task, mgen, self.now)
        for fr in frames:
            self.exposed_reads(self.tlb.hazard_frame(fr, self.drv.now))
        return frames

    def place(self, v: int, frames, writable: bool):
        self.ver[v] += 1
        if self.size[v] == 1:
            self.loc[v] = frames[0]
        else:
            self.loc[v] = frames[0]
            self.thp_frames[v] = frames
        self.mapped_w[v] = writable
        (self.lru_hot if self.hot[v] else self.lru_cold).append(v)
        self.arm_write(v)

    # -- the NUMA scanner (tiering mode: only slow-node PTEs become PROT_NONE) --
    def on_scan_chunk(self):
        # the folios that start in [lo, hi), address space wrapping at n_pages; a chunk
        # inside one THP starts no folio (the THP was taken where it starts)
        lo = self.scan_pos
        self.scan_carry += self.scan_pages_per_s * self.scan_dt
        chunk = int(self.scan_carry)
        self.scan_carry -= chunk
        hi = lo + chunk
        if hi <= self.n_pages:
            a, b = np.searchsorted(self.folio_start, [lo, hi])
            idx = np.arange(a, b)
        else:
            a, b = np.searchsorted(self.folio_start, [lo, hi - self.n_pages])
            idx = np.concatenate([np.arange(a, self.n_folios), np.arange(0, b)])
        self.scan_pos = hi % self.n_pages
        idx = idx[self.loc[idx] == SLOW]
        if len(idx):
            delay = self.r["scan"].exponential(1.0, len(idx)) / np.maximum(self.lam[idx], 1e-300)
            for v, d in zip(idx[delay < self.cycle_s], delay[delay < self.cycle_s]):
                self.drv.at(self.drv.now + d, self.on_hint_fault, int(v), int(self.ver[v]), d < self.threshold_s)
        self.drv.at(self.drv.now + self.scan_dt, self.on_scan_chunk)

    def pending_hint_faults(self):
        """Warm start: the hint faults the scanner's last pass left armed (see
        `Model._initial_placement`): slow folios whose first touch since the pass
        is still to come, within a cycle."""
        d, tau = self.first_touch_s, self.scan_age_s
        armed = np.flatnonzero((self.loc == SLOW) & (d > tau) & (d < self.cycle_s))
        for v in armed:
            self.drv.at(self.drv.now + (d[v] - tau[v]), self.on_hint_fault, int(v), int(self.ver[v]),
                        bool(d[v] < self.threshold_s))

    def on_scan_flush(self):
        """change_prot_numa() ends its pass with one range flush of the mm (a full one)."""
        cpu = int(self.r["hint_cpu"].choice(self.mask))
        self.drv.flush(Flush(cpu, self.mask_set), "scan", "scan")
        self.drv.at(self.drv.now + self.scan_period_s, self.on_scan_flush)

    def on_hint_fault(self, v: int, ver: int, hot_enough: bool):
        if ver != self.ver[v] or self.loc[v] != SLOW:
            return
        if self.drv.counting():
            self.c.hint_faults += 1
        if not hot_enough:
            return                                   # PTE restored, page stays on the slow node
        if self.free_for_watermarks() < self.wmark_high:
            # numamigrate_isolate_folio(): a node short of free memory refuses the promotion
            # and wakes its kswapd. Without the wake, free memory that fell below high with
            # no allocation (migrc_hold's held folios released onto a pcp list by a memory
            # failure's flush) left kswapd asleep and every later promotion refused: 2 of 8
            # memory_failures/migrc_hold runs migrated nothing after 0.3 s.
            self.wake_kswapd_if_low()
            return
        sec = int(np.floor(self.drv.now))
        if sec != self.rate_sec:
            self.rate_sec, self.rate_used = sec, 0
        if self.rate_used + self.size[v] > self.rate_limit_pages:
            return
        self.rate_used += self.size[v]
        cpu = self.fault_cpu()
        self.drv.spawn(self.promote(v, cpu), Task(cpu, "thread", "alloc"))

    def promote(self, v: int, cpu: int):
        frames = yield from self.allocate(Task(cpu, "thread", "alloc"), int(self.size[v]))
        if frames is None:
            return
        # migrated from a PROT_NONE PTE (not accessible): no flush; mapped read-only afterwards
        self.place(v, frames, writable=False)
        if self.drv.counting():
            self.c.promoted += int(self.size[v])

    # -- writes, refaults, other allocations, memory failures --
    def on_write(self, v: int, ver: int):
        if ver != self.ver[v] or self.mapped_w[v]:
            return
        cpu = self.fault_cpu()
        self.drv.spawn(self.write_fault(v, cpu), Task(cpu, "thread", "write_fault"))

    def write_fault(self, v: int, cpu: int):
        yield from self.state.migrc_flush(Task(cpu, "thread", "write_fault"), self.now)
        if self.mapped_w[v]:
            return
        self.mapped_w[v] = True
        if self.drv.counting():
            self.c.write_faults += 1
        self.exposed_reads(self.tlb.hazard_page(v, self.drv.now))

    def on_refault(self, v: int, ver: int):
        if ver != self.ver[v] or self.loc[v] != SWAPPED:
            return
        cpu = self.fault_cpu()
        self.drv.spawn(self.refault(v, cpu, ver), Task(cpu, "thread", "alloc"))

    def refault(self, v: int, cpu: int, ver: int):
        frames = yield from self.allocate(Task(cpu, "thread", "alloc"), int(self.size[v]))
        if frames is None:
            self.drv.at(self.drv.now + 1e-3, self.on_refault, v, ver)
            return
        self.place(v, frames, writable=not self.ro_type[v])   # a fresh writable page is written at once
        if self.drv.counting():
            self.c.other_allocs += 1

    def on_extra_alloc(self):
        # the workload's own allocations (steady.py counts the pressure as the workload's):
        # made by its running threads, so never on the CPU kswapd has taken
        cpu = self.fault_cpu("extra")
        self.drv.spawn(self.extra_alloc(cpu), Task(cpu, "thread", "alloc"))
        self.drv.at(self.drv.now + self.r["extra"].exponential(1.0 / self.extra_pps), self.on_extra_alloc)

    def extra_alloc(self, cpu: int):
        frames = yield from self.allocate(Task(cpu, "thread", "alloc"), 1)
        if frames is None:
            return
        oid = self.next_other
        self.next_other += 1
        self.other_frame[oid] = frames[0]
        self.lru_cold.append(oid)
        if self.drv.counting():
            self.c.other_allocs += 1

    def on_memory_failure(self):
        cpu = int(self.r["mf"].choice(self.mask))
        self.drv.spawn(self.state.migrc_flush(Task(cpu, "thread", "memory_failure"), self.now),
                       Task(cpu, "thread", "memory_failure"))
        self.drv.at(self.drv.now + self.r["mf"].exponential(1.0 / self.mf_rate), self.on_memory_failure)
