"""Per-CPU TLB state and the safety checker.

A CPU "may hold" a translation V -> F from the moment V was mapped until the
CPU's next full TLB flush of the mm. Since any CPU of the mm may cache any of
its translations at any time, the model is conservative: when V is unmapped
from frame F at time tu, every CPU of the mm's cpumask may hold the stale
V -> F until it is flushed at some time >= tu (an IPI handled, a local flush,
or a lazy/idle CPU that will flush on its next switch to the mm).

The invariant migrc relies on: no CPU reads V through a stale V -> F after F
was reallocated (its content changes) or V was written (the new copy changes).
Both are *hazards*; at a hazard, each CPU that may still hold the stale entry
reads V at some later time, and that read is a violation unless the CPU was
flushed first.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass


@dataclass
class StaleEntry:
    page: int
    frame: int
    unmap_t: float
    cpus: tuple


class TlbModel:
    def __init__(self, num_cpus: int):
        self.flush_times = [[] for _ in range(num_cpus)]   # sorted flush instants per CPU
        self.by_frame: dict[int, list[StaleEntry]] = {}
        self.by_page: dict[int, list[StaleEntry]] = {}
        self.hazarded: dict[int, list[tuple[StaleEntry, float]]] = {}  # page -> (entry, hazard time)
        self.violations = 0
        self.violation_log: list[tuple] = []

    # -- flushes --
    def flushed(self, cpu: int, t: float):
        ft = self.flush_times[cpu]
        if not ft or t >= ft[-1]:
            ft.append(t)
        else:
            ft.insert(bisect_left(ft, t), t)

    def covered(self, cpu: int, t_from: float, t_to: float) -> bool:
        """Was `cpu` flushed at some instant in [t_from, t_to]?"""
        ft = self.flush_times[cpu]
        i = bisect_left(ft, t_from)
        return i < len(ft) and ft[i] <= t_to

    # -- unmaps and hazards --
    def unmap(self, page: int, frames, cpus, t: float):
        for frame in frames:
            e = StaleEntry(page, frame, t, tuple(cpus))
            self.by_frame.setdefault(frame, []).append(e)
            self.by_page.setdefault(page, []).append(e)

    def _exposed(self, entries, t):
        """(entry, cpu) pairs still possibly cached at time t."""
        out = []
        for e in entries:
            for c in e.cpus:
                if not self.covered(c, e.unmap_t, t):
                    out.append((e, c))
        return out

    def hazard_frame(self, frame: int, t: float):
        """Frame reallocated: its old mappings now point at someone else's data."""
        return self._hazard(self.by_frame.pop(frame, None), t)

    def hazard_page(self, page: int, t: float):
        """V written through its new mapping: every old copy is out of date."""
        return self._hazard(self.by_page.pop(page, None), t)

    def _hazard(self, entries, t: float):
        """From t on, a read through any still-cached entry of these is a stale read."""
        if not entries:
            return []
        exposed = self._exposed(entries, t)
        for e, _ in exposed:
            self.hazarded.setdefault(e.page, []).append((e, t))
        return exposed

    def read(self, cpu: int, page: int, t: float) -> bool:
        """CPU reads V at t: a violation if it may still hold a hazarded stale entry."""
        for e, th in self.hazarded.get(page, ()):
            if cpu in e.cpus and th <= t and not self.covered(cpu, e.unmap_t, t):
                self.violations += 1
                self.violation_log.append((cpu, page, e.frame, e.unmap_t, th, t))
                return True
        return False

    def prune(self, mask_cpus, t: float):
        """Forget entries every CPU has been flushed of (keeps dictionaries small)."""
        horizon = float("inf")
        for c in mask_cpus:
            ft = self.flush_times[c]
            i = bisect_right(ft, t)      # flushes scheduled after t do not count yet
            horizon = min(horizon, ft[i - 1] if i else float("-inf"))
        for d in (self.by_frame, self.by_page):
            for k in list(d):
                keep = [e for e in d[k] if e.unmap_t > horizon]
                if keep:
                    d[k] = keep
                else:
                    del d[k]
        for k in list(self.hazarded):
            keep = [(e, th) for e, th in self.hazarded[k] if e.unmap_t > horizon]
            if keep:
                self.hazarded[k] = keep
            else:
                del self.hazarded[k]
