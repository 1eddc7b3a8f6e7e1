"""A tiny deterministic interleaving engine for the migrc state machine.

Each CPU runs a generator (the same state-machine code the DES runs); a
schedule names which CPU takes the next step, where a step runs the CPU until
its next yield (a lock boundary, a spin, or a TLB flush, which is applied to
the TLB model at once). Time is the step number, so an unmap at step k is
covered by a flush at step >= k only.

`World` offers the handful of kernel paths the races need, each a generator:
migrate one read-only folio, allocate a frame, take a write fault, read a page.
"""

from __future__ import annotations

from .migrc_state import PREEMPT, SPIN, Delay, Flush, MigrcState, Task, Ubc, mgen_latest, try_to_unmap_flush
from .tlb import TlbModel


class World:
    def __init__(self, num_cpus=4, policy="migrc", **guards):
        self.num_cpus = num_cpus
        self.cpus = frozenset(range(num_cpus))
        self.policy = policy
        self.state = MigrcState(**guards)
        self.tlb = TlbModel(num_cpus)
        self.t = 0
        self.tags: dict[int, int] = {}       # free frame -> migrc generation
        self.location: dict[int, int] = {}   # page -> frame
        self.trace: list[str] = []
        self.done: set = set()             # completed events, for threads that wait on them

    def now(self):
        return self.t

    # -- kernel paths --
    def migrate(self, cpu: int, page: int, new_frame: int, writable=False, after=None):
        """migrate_pages_batch() of one small folio mapped on every CPU of the mm."""
        yield from self.wait_for(after)
        task = Task(cpu, kind="kswapd", reason="kswapd")
        old = self.location[page]
        pending = Ubc()
        self.tlb.unmap(page, [old], self.cpus, self.t)
        defer = self.policy == "migrc" and not writable
        if self.policy != "no_flush":
            (pending if defer else task.ubc).add(self.cpus, writable)
        self.location[page] = new_frame
        yield PREEMPT
        mgen = self.state.add_pending(task, pending) if defer else 0
        yield PREEMPT
        yield from try_to_unmap_flush(self.state, task, self.now, skip=self.policy == "no_flush")
        self.tags[old] = mgen             # folio_put_mgen(): freed carrying its generation
        self.done.add(("freed", old))
        self.trace.append(f"t{self.t} cpu{cpu} freed frame {old} gen {mgen}")

    def alloc(self, cpu: int, frame: int, after=None):
        """The frame leaves pcp/buddy; the allocator checks its generation, then writes it."""
        yield from self.wait_for(after)
        task = Task(cpu, reason="alloc")
        mgen = mgen_latest(0, self.tags.pop(frame, 0))
        yield from self.state.check_migrc_flush(task, mgen, self.now)
        self.tlb.hazard_frame(frame, self.t)
        self.done.add(("alloc", frame))
        self.trace.append(f"t{self.t} cpu{cpu} reallocated frame {frame}")

    def wait_for(self, event):
        while event is not None and event not in self.done:
            yield SPIN

    def write_fault(self, cpu: int, page: int, after=None):
        yield from self.wait_for(after)
        task = Task(cpu, reason="write_fault")
        yield from self.state.migrc_flush(task, self.now)
        self.tlb.hazard_page(page, self.t)
        self.done.add(("written", page))

    def read(self, cpu: int, page: int, after=None):
        yield from self.wait_for(after)
        bad = self.tlb.read(cpu, page, self.t)
        self.trace.append(f"t{self.t} cpu{cpu} read page {page}{' STALE' if bad else ''}")

    def flush_now(self, flush: Flush):
        for c in flush.cpus:
            self.tlb.flushed(c, self.t)
        self.trace.append(f"t{self.t} cpu{flush.cpu} flushed {sorted(flush.cpus)}")


def run(world: World, threads: dict, schedule, finish=True, max_steps=10_000):
    """Step `threads` (name -> generator) in `schedule` order, then (if `finish`)
    run whatever is left round-robin. Returns the world's violation count.

    A name whose thread has finished is skipped. A spinning thread that is
    scheduled simply re-checks, as the kernel's retry loop would.
    """
    live = dict(threads)

    def step(name):
        gen = live.get(name)
        if gen is None:
            return
        world.t += 1
        try:
            while True:
                tok = next(gen)
                if isinstance(tok, Flush):
                    world.flush_now(tok)
                    continue           # the flush itself is not a scheduling point
                if isinstance(tok, Delay):
                    continue
                break                  # PREEMPT or SPIN
        except StopIteration:
            del live[name]

    for name in schedule:
        step(name)
    steps = 0
    while finish and live and steps < max_steps:
        for name in list(live):
            step(name)
        steps += 1
    return world.tlb.violations


__all__ = ["World", "run", "PREEMPT", "SPIN"]
