"""The fast node's free page frames: per-CPU pcp lists and an order-0 buddy list.

Each list is a Python list whose *end* is the head. A free on CPU c pushes
onto pcp[c]'s head; when pcp[c] holds more than `high` pages, `batch` pages
leave from its tail for the buddy list's head. An allocation on CPU c pops
pcp[c]'s head, refilling an empty pcp with `batch` pages from the buddy head
(the first page taken is the first one handed out). Large folios bypass pcp:
their frames come from, and go back to, the buddy head.

Simplification: the buddy allocator is one LIFO list of order-0 frames; no
merging into higher orders, no migratetypes, no contiguity for large folios.

Free-page accounting is the kernel's NR_FREE_PAGES: buddy pages only. Pages a
pcp list holds are not counted (rmqueue_bulk() subtracts them when it refills
a pcp, __free_one_page() adds them back when free_pcppages_bulk() spills), so
`free` (what the watermarks see) is the buddy list's length and `free_frames`
is every free frame. An allocation only ever takes from its own CPU's pcp
(rmqueue_pcplist()); if the buddy list cannot refill it, every pcp is drained
into buddy first, as __alloc_pages_direct_reclaim() does with drain_all_pages()
before it retries.

Every free frame carries its migrc generation tag (0 = none). An allocation
returns the latest generation of every frame that left the allocator's lists
on its way (the refill from buddy and the page taken from pcp), which the
caller hands to check_migrc_flush().
"""

from __future__ import annotations

import numpy as np

from .migrc_state import mgen_latest


class FreeLists:
    def __init__(self, num_frames: int, num_cpus: int, batch: int, high: int):
        self.pcp = [[] for _ in range(num_cpus)]
        self.buddy: list[int] = []
        self.tag = np.zeros(num_frames, dtype=np.int64)
        self.batch, self.high = int(batch), int(high)
        self.pending_free = 0          # free frames that carry a non-zero tag
        self.refills = 0
        self.spills = 0
        self.drains = 0

    @property
    def free(self) -> int:
        """NR_FREE_PAGES: the watermarks' view, pcp pages excluded."""
        return len(self.buddy)

    @property
    def free_frames(self) -> int:
        return len(self.buddy) + sum(len(p) for p in self.pcp)

    def drain_all(self):
        """drain_all_pages(): every pcp list goes to buddy, tail first (free_pcppages_bulk)."""
        for lst in self.pcp:
            if lst:
                self.buddy.extend(lst)
                lst.clear()
        self.drains += 1

    def _set_tag(self, frame: int, gen: int):
        old = int(self.tag[frame])
        self.pending_free += (gen != 0) - (old != 0)
        self.tag[frame] = gen

    def free_page(self, cpu: int, frame: int, gen: int = 0):
        self._set_tag(frame, gen)
        lst = self.pcp[cpu]
        lst.append(frame)
        if len(lst) > self.high:
            out = lst[:self.batch]
            del lst[:self.batch]
            self.buddy.extend(out)     # free_pcppages_bulk() frees tail first: the tail-most page ends up deepest
            self.spills += 1

    def free_large(self, frames, gen: int = 0):
        for fr in frames:
            self._set_tag(fr, gen)
        self.buddy.extend(frames)

    def _take_tag(self, frame: int) -> int:
        g = int(self.tag[frame])
        if g:
            self._set_tag(frame, 0)
        return g

    def alloc_page(self, cpu: int):
        """(frame, mgen) or (None, 0) when the node has no free frame at all."""
        lst = self.pcp[cpu]
        mgen = 0
        if not lst:
            if not self.buddy:
                self.drain_all()                   # the node is nearly exhausted
                if not self.buddy:
                    return None, 0
            take = self.buddy[-self.batch:][::-1]          # buddy head first
            del self.buddy[-self.batch:]
            for fr in take:
                mgen = mgen_latest(mgen, int(self.tag[fr]))   # tags leave buddy with the refill
            lst.extend(reversed(take))
            self.refills += 1
        frame = lst.pop()
        return frame, mgen_latest(mgen, self._take_tag(frame))

    def alloc_large(self, n: int):
        if len(self.buddy) < n:
            self.drain_all()
        if len(self.buddy) < n:
            return None, 0
        frames = self.buddy[-n:]
        del self.buddy[-n:]
        mgen = 0
        for fr in frames:
            mgen = mgen_latest(mgen, self._take_tag(fr))
        return frames, mgen
