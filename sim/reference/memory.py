"""The fast node's free page frames: per-CPU pcp lists and an order-0 buddy list.

Each list is a Python list whose *end* is the head. A free on CPU c pushes
onto pcp[c]'s head; when pcp[c] holds more than `high` pages, `batch` pages
leave from its tail for the buddy list's head. An allocation on CPU c pops
pcp[c]'s head, refilling an empty pcp with `batch` pages from the buddy head
(the first page taken is the first one handed out). Large folios bypass pcp:
their frames come from, and go back to, the buddy head.

Simplification: the buddy allocator is one LIFO list of order-0 frames; no
merging into higher orders, no migratetypes, no contiguity for large folios.

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

    @property
    def free(self) -> int:
        return len(self.buddy) + sum(len(p) for p in self.pcp)

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
            self.buddy.extend(reversed(out))     # the tail-most page ends up deepest
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
                # fall back to another CPU's list: the node is nearly exhausted
                donors = [p for p in self.pcp if p]
                if not donors:
                    return None, 0
                lst = max(donors, key=len)
            else:
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
            return None, 0
        frames = self.buddy[-n:]
        del self.buddy[-n:]
        mgen = 0
        for fr in frames:
            mgen = mgen_latest(mgen, self._take_tag(fr))
        return frames, mgen
