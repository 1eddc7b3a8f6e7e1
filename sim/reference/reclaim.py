"""kswapd on the fast node: LRU batches demoted (or evicted) under each policy.

kswapd wakes when free memory falls below the high watermark and reclaims
until it is back at the promo watermark. Each step takes the LRU tail (cold
list first): either one THP, demoted and flushed on its own and never
deferred, or up to `lru_batch_pages` small folios in one shrink_folio_list():
its loop unmaps the evicted folios into the task's batch (a dirty one is
flushed before its pageout), then demote_folio_list() runs one
migrate_pages_batch() whose try_to_unmap_flush() also flushes what the loop
left. So a deferred read-only batch survives the step only when nothing else
in it needed a flush."""

from __future__ import annotations

from .migrc_state import Delay, Task, Ubc, try_to_unmap_flush
from .workload import SLOW, SWAPPED


class Record:
    """A deferred batch: for pending-page and stale-window statistics, and migrc_hold's held frames."""
    __slots__ = ("unmap_t", "pages", "held", "cpu", "retired")

    def __init__(self, unmap_t, pages, cpu, hold):
        self.unmap_t, self.pages, self.cpu = unmap_t, pages, cpu
        self.held = [] if hold else None
        self.retired = False


class Reclaim:
    """Mixin of `model.Model`: kswapd."""

    def free_for_watermarks(self) -> float:
        """migrc_hold (RFC v2+) counts the folios it holds as free in watermark checks."""
        return self.mem.free + (self.held_pages if self.hold else 0)

    def wake_kswapd_if_low(self):
        """wakeup_kswapd() when free memory is low (see `low`): after an allocation, or a promotion
        refused for want of free memory."""
        low = self.free_for_watermarks() < self.wmark_high or (self.hold and self.held_pages > 0
                                                                and self.mem.free < self.wmark_min)
        if not self.kswapd_running and low and self.migrating:
            self.kswapd_running = True
            cpu = self.kswapd_cpu = int(self.r["kswapd"].integers(self.num_cpus))
            task = Task(cpu, "kswapd", "reclaim")
            # wakeup_kswapd() only wakes the thread: it runs once the waker is done, so the
            # waking allocation checks its pages' generation before kswapd's first batch is
            # deferred. (Run at once, that batch reused a live generation, and a waking THP
            # promotion flushed it at its unmapping: 27 of 31 alloc flushes in thp_half's
            # bursts, none of which the kernel's order makes.)
            self.drv.at(self.drv.now, self.drv.spawn, self.kswapd(task), task)

    def kswapd(self, task: Task):
        if self.hold and self.held_pages > 0:
            # v5-v8: the memory migrc holds is given back before reclaiming more
            yield from self.state.migrc_flush(task, self.now)
        while self.free_for_watermarks() < self.wmark_promo:
            if not (self.lru_cold or self.lru_hot):
                break
            yield from self.reclaim_step(task)
        self.kswapd_running = False

    def _isolate(self):
        """The LRU's tail: one THP, or up to `lru_batch` small folios, cold ones first and
        then hot ones (the kernel refills a short inactive list from the active one, so
        a batch is short only when a THP or the end of memory cuts it)."""
        lru = self.lru_cold if self.lru_cold else self.lru_hot
        v = lru[0]
        if v < self.n_folios and self.size[v] > 1:
            lru.popleft()
            return [v], True
        batch = []
        while len(batch) < self.lru_batch:
            lru = self.lru_cold if self.lru_cold else self.lru_hot
            if not lru:
                break
            v = lru[0]
            if v < self.n_folios and self.size[v] > 1:
                break
            batch.append(lru.popleft())
        return batch, False

    def _frames(self, v):
        if v >= self.n_folios:
            return [self.other_frame.pop(v)]
        return self.thp_frames.pop(v) if self.size[v] > 1 else [int(self.loc[v])]

    def _unmap(self, v, now):
        """try_to_migrate()/try_to_unmap(): the PTEs go; every CPU of the mm may keep a stale entry."""
        frames = self._frames(v)
        if v < self.n_folios:
            self.tlb.unmap(v, frames, self.mask, now)
            ro = not self.mapped_w[v]
        else:
            ro = False
        return frames, ro

    def _defer(self, task, pending, pages, now):
        """migrc_add_pending_ubc() for a read-only sub-batch; returns (mgen, record)."""
        if not pending.required:
            return 0, None
        rec = Record(now, pages, task.cpu, self.hold)
        pending.meta = [rec]
        mgen = self.state.add_pending(task, pending)
        if mgen:
            self._pending_change(+pages, held=0)
            return mgen, rec
        return 0, None

    def _free(self, task, frames, mgen, rec):
        if rec is not None and self.hold and not rec.retired:
            rec.held.extend(frames)
            self._pending_change(0, held=len(frames))
            return
        for fr in frames:
            self.mem.free_page(task.cpu, fr, mgen)       # folio_put_mgen()

    def reclaim_step(self, task: Task):
        now = self.drv.now
        batch, is_thp = self._isolate()
        mask = self.mask_set
        skip = self.policy == "no_flush"
        counting = self.drv.counting()
        if is_thp:
            v = batch[0]
            frames, _ = self._unmap(v, now)
            task.ubc.add(mask)
            yield from try_to_unmap_flush(self.state, task, self.now, skip=skip)
            work = len(frames) * self.copy_page_ns + self.migrate_ns
            yield Delay(work)
            self.mem.free_large(frames)
            self._to_slow(v)
            if counting:
                self.c.demoted += len(frames)
                self.c.kswapd_ns += work
            return
        evict = self.r["evict"].random(len(batch)) < self.evict_fraction
        dem = [v for v, e in zip(batch, evict) if not e]
        ev = [v for v, e in zip(batch, evict) if e]
        may_defer = self.mem.free > self.wmark_min          # v3+: migrc pauses under high pressure
        work = len(dem) * self.copy_page_ns + len(batch) * self.migrate_ns

        # shrink_folio_list()'s loop unmaps the evicted folios into the task's batch; a dirty
        # one (mapped writable) is flushed before its pageout (try_to_unmap_flush_dirty()).
        # LUF defers the read-only ones instead.
        pending, ev_normal, ev_deferred = Ubc(), [], []
        for v in ev:
            frames, ro = self._unmap(v, now)
            if self.policy == "luf" and may_defer and ro:
                pending.add(mask)
                ev_deferred.append(frames[0])
            else:
                task.ubc.add(mask, writable=not ro)
                ev_normal.append(frames[0])
                if not ro:
                    yield from try_to_unmap_flush(self.state, task, self.now, skip=skip)
            self._to_swap(v)
        # then demote_folio_list(): migrate_pages_batch() defers its read-only folios and flushes
        # the rest, with whatever the loop left unflushed
        normal, deferred, mgen, rec = yield from self._unmap_and_flush(
            task, dem, mask, now, self.defer_migration and may_defer, self._to_slow, skip,
            per_folio_flush=self.policy == "no_batch", pending=pending, pending_frames=ev_deferred)

        yield Delay(work)
        self._free(task, normal + ev_normal, 0, None)
        self._free(task, deferred, mgen, rec)
        if counting:
            self.c.demoted += len(dem)
            self.c.evicted += len(ev)
            self.c.kswapd_ns += work

    def _unmap_and_flush(self, task, folios, mask, now, defer_read_only, move, skip, per_folio_flush=False,
                         pending=None, pending_frames=()):
        """Unmap folios into one batch, read-only ones into the pending batch when deferral is
        allowed; hand the pending batch (with any deferred before) to migrc (migrc_add_pending_ubc),
        then flush the rest. Returns (frames to free now, frames freed carrying mgen, mgen, the
        deferral's record)."""
        pending = Ubc() if pending is None else pending
        normal, deferred = [], list(pending_frames)
        for v in folios:
            frames, ro = self._unmap(v, now)
            if per_folio_flush:
                task.ubc.add(mask)                            # one one-page flush per folio
                yield from try_to_unmap_flush(self.state, task, self.now, single_page=True)
                normal.append(frames[0])
            elif defer_read_only and ro:
                pending.add(mask)
                deferred.append(frames[0])
            else:
                task.ubc.add(mask, writable=not ro)
                normal.append(frames[0])
            move(v)
        mgen, rec = self._defer(task, pending, len(deferred), now)
        if not mgen:
            normal, deferred = normal + deferred, []
        yield from try_to_unmap_flush(self.state, task, self.now, skip=skip)
        return normal, deferred, mgen, rec

    def _to_slow(self, v):
        if v >= self.n_folios:
            return                                  # other allocations leave the model when demoted
        self.ver[v] += 1
        self.loc[v] = SLOW
        self.arm_write(v)

    def _to_swap(self, v):
        if v >= self.n_folios:
            return
        self.ver[v] += 1
        self.loc[v] = SWAPPED
        self.drv.at(self.drv.now + self.r["refault"].exponential(1.0 / self.lam[v]), self.on_refault, v,
                    int(self.ver[v]))
