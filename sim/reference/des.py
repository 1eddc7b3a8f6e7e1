"""The discrete-event driver: an event heap, generator "threads", and TLB flushes that take time.

Events are (time_s, seq, fn, args); seq breaks ties in the order events were
scheduled. A thread is a generator of the migrc state machine's tokens: a
Flush is executed at once (IPIs land on the targets one after another) and
the thread resumes when the initiator's wait is over; a Delay resumes it
later; a SPIN parks it until no deferred flush is running.
"""

from __future__ import annotations

import heapq

import numpy as np

from .migrc_state import SPIN, Delay, Flush


class Counters:
    """Everything counted inside the window [0, window_s)."""

    def __init__(self, num_cpus: int, stale_bins: np.ndarray):
        self.flushes = 0
        self.flushed_cpus = 0            # CPUs whose TLB a flush emptied (initiator + IPI targets)
        self.remote_flushes = 0          # nr_tlb_remote_flush
        self.targets = 0                 # IPIs sent, summed over flushes
        self.received = np.zeros(num_cpus)   # TLB shootdown IRQs per CPU
        self.kswapd_ns = 0.0
        self.kswapd_flush_wait_ns = 0.0
        self.thread_wait_ns = 0.0
        self.alloc_wait_ns = 0.0
        self.demoted = self.evicted = self.promoted = 0
        self.hint_faults = self.write_faults = self.other_allocs = 0
        self.triggers = dict(alloc=0, write_fault=0, memory_failure=0, piggyback=0, reclaim=0, give_up=0)
        self.pending_page_s = 0.0
        self.pending_peak = 0
        self.held_page_s = 0.0
        self.held_peak = 0
        self.stale_pages = 0
        self.stale_page_s = 0.0
        self.stale_bins = stale_bins
        self.stale_hist = np.zeros(len(stale_bins) + 1)


class Driver:
    def __init__(self, t0: float, end: float, state, tlb, cost, rng_ipi, counters: Counters):
        self.now = t0
        self.end = end
        self.heap: list = []
        self.seq = 0
        self.state = state
        self.tlb = tlb
        self.cost = cost                 # dict of ns costs, util, broadcast flag
        self.rng_ipi = rng_ipi
        self.c = counters
        self.spinners: list = []

    def counting(self, t=None) -> bool:
        t = self.now if t is None else t
        return 0.0 <= t < self.end

    # -- scheduling --
    def at(self, t: float, fn, *args):
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, fn, args))

    def spawn(self, gen, task):
        self._step(gen, task)

    def run(self):
        heap = self.heap
        while heap:
            t, _, fn, args = heapq.heappop(heap)
            if t >= self.end:
                break
            self.now = t
            fn(*args)

    def _step(self, gen, task, waited_since=None):
        if waited_since is not None and self.counting():
            self.c.thread_wait_ns += (self.now - waited_since) * 1e9
        try:
            while True:
                tok = next(gen)
                if isinstance(tok, Flush):
                    wait_ns = self.flush(tok, task.kind, task.reason)
                    if wait_ns > 0:
                        self.at(self.now + wait_ns * 1e-9, self._step, gen, task)
                        break
                elif isinstance(tok, Delay):
                    self.at(self.now + tok.ns * 1e-9, self._step, gen, task)
                    break
                elif tok is SPIN:
                    # A fault on the CPU whose thread runs the flush stands for that thread's
                    # next one, which in the kernel comes only once the flush is done: the
                    # thread's time is already counted as the flush's wait, so its spin is
                    # not counted again. (Counted, 88 of evict_high/LUF's 106 spinners a
                    # window were such faults, and its initiator wait was 20% over.)
                    since = None if task.cpu == self.state.flusher_cpu else self.now
                    self.spinners.append((gen, task, since))
                    break
        except StopIteration:
            pass
        if self.spinners and not self.state.migrc_on_flushing:
            woken, self.spinners = self.spinners, []
            for g, tk, since in woken:
                self.at(self.now, self._step, g, tk, since)

    # -- a TLB flush of the mm: local flush + IPIs to the running CPUs of `cpus` --
    def flush(self, fl: Flush, kind: str, reason: str) -> float:
        t, cost, c = self.now, self.cost, self.c
        k = fl.cpu
        remote = sorted(fl.cpus - {k})
        running = self.rng_ipi.random(len(remote)) < cost["util"]
        targets = [cpu for cpu, r in zip(remote, running) if r]
        for cpu, r in zip(remote, running):
            if not r:
                self.tlb.flushed(cpu, t)     # idle/lazy: flushes when it next switches to the mm
        local = k in fl.cpus
        if local:
            self.tlb.flushed(k, t)
        m = len(targets)
        if cost["broadcast"]:
            wait = cost["broadcast_ns"]
            for cpu in targets:
                self.tlb.flushed(cpu, t + wait * 1e-9)
        else:
            wait = cost["base_ns"] + cost["per_target_ns"] * (m - 1) if m else 0.0
            for i, cpu in enumerate(targets):
                self.tlb.flushed(cpu, t + (cost["base_ns"] + cost["per_target_ns"] * i) * 1e-9)
        # The scanner's flushes are a periodic process independent of the policy, about one
        # per window: accounting.py counts them at their rate instead of by chance.
        if self.counting() and kind != "scan":
            c.flushes += 1
            if not fl.single_page:            # INVLPG leaves the hot translations in place
                c.flushed_cpus += local + m
            if not cost["broadcast"]:
                for cpu in targets:
                    c.received[cpu] += 1
                c.remote_flushes += m > 0
                c.targets += m
            if kind == "kswapd":
                c.kswapd_flush_wait_ns += wait
            elif kind == "thread":
                c.thread_wait_ns += wait
                if reason == "alloc":
                    c.alloc_wait_ns += wait
        return wait if kind != "scan" else 0.0
