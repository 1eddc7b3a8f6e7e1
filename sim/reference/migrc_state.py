"""migrc v9's deferred-flush state machine, written as generators.

Every operation that the seed patch runs under `migrc_lock` is one atomic
Python step here; the places where the kernel drops the lock, spins or waits
for a TLB flush are `yield`s, so the same code can be driven by the
discrete-event simulation (`des.py`, where a flush takes time) and by the
scripted interleaving engine (`interleave.py`, where a schedule decides which
CPU runs next).

Yielded tokens:
  PREEMPT          a lock boundary: another CPU may run here
  SPIN             `goto retry` while another CPU's deferred flush is running
  Flush(cpu, cpus) "perform a full TLB flush of `cpus`, initiated on `cpu`";
                   the driver applies it to the TLB model and resumes later
  Delay(ns)        busy work (copying) that takes time but touches no state
"""

from __future__ import annotations

from dataclasses import dataclass, field

PREEMPT = ("preempt",)
SPIN = ("spin",)
GEN_MASK = 0xFFFF


@dataclass(frozen=True)
class Flush:
    cpu: int
    cpus: frozenset
    single_page: bool = False


@dataclass(frozen=True)
class Delay:
    ns: float


@dataclass
class Ubc:
    """A tlbflush_unmap_batch: the CPUs to flush, and what is waiting on them.

    `meta` carries (unmap_time, pages, held_frames) records of deferred folios
    for the statistics (pending pages, stale windows, memory held); it plays no
    part in safety, which the TLB model checks on its own.
    """
    cpus: set = field(default_factory=set)
    required: bool = False
    writable: bool = False
    meta: list = field(default_factory=list)

    def add(self, cpus, writable=False):
        self.cpus |= set(cpus)
        self.required = True
        self.writable |= writable

    def fold_from(self, src: "Ubc"):
        """fold_ubc(dst=self, src): move src's pending CPUs (and records) here."""
        if not src.required:
            return
        self.cpus |= src.cpus
        self.required = True
        self.writable |= src.writable
        self.meta.extend(src.meta)
        src.clear()

    def clear(self):
        self.cpus = set()
        self.required = False
        self.writable = False
        self.meta = []


@dataclass
class Task:
    """The per-task state the patch adds: tlb_ubc, tlb_ubc_ro, can_migrc."""
    cpu: int
    kind: str = "thread"          # "thread" or "kswapd": who pays the flush wait
    reason: str = "alloc"         # why it may run a deferred flush
    ubc: Ubc = field(default_factory=Ubc)
    ubc_ro: Ubc = field(default_factory=Ubc)
    can_migrc: bool = True


def mgen_next(a: int, c_int_promotion: bool = False) -> int:
    """The next generation, skipping 0. The seed writes `a + 1 ?: a + 2` on an
    unsigned short: C promotes `a + 1` to int, so for a = 0xFFFF it is 65536,
    non-zero, and the return converts it to 0. `c_int_promotion` reproduces
    that literal behaviour; the default is the intended one."""
    if c_int_promotion:
        return (a + 1) & GEN_MASK
    b = (a + 1) & GEN_MASK
    return b if b else (a + 2) & GEN_MASK


def mgen_before(a: int, b: int) -> bool:
    """a is older than b: signed 16-bit difference."""
    d = (a - b) & GEN_MASK
    return d >= 0x8000


def mgen_latest(a: int, b: int) -> int:
    if not a or not b:
        return a | b
    return b if mgen_before(a, b) else a


class MigrcState:
    """The global state of mm/migrate.c in the seed, plus the statistics hooks.

    Guards can be switched off to reproduce the races the patch comments on.
    `listener` gets callbacks: retired(meta, trigger, now), give_up(), deferred_flush(reason).
    """

    def __init__(self, guard_on_flushing=True, guard_migrc_on_flushing=True, c_int_promotion=False,
                 listener=None):
        self.ubc = Ubc()                # migrc_ubc
        self.on_flushing = 0
        self.migrc_on_flushing = False
        self.flusher_cpu = -1           # the CPU whose thread runs the deferred flush
        self.gen = 0                    # migrc_gen
        self.gen_next = 1               # migrc_gen_next
        self.gen_done = 0               # migrc_gen_done
        self.guard_on_flushing = guard_on_flushing
        self.guard_migrc_on_flushing = guard_migrc_on_flushing
        self.c_int_promotion = c_int_promotion
        self.listener = listener

    def _notify(self, name, *args):
        if self.listener is not None:
            getattr(self.listener, name)(*args)

    # -- migrate_pages_batch(): after unmapping, before try_to_unmap_flush() --
    def add_pending(self, task: Task, pending: Ubc) -> int:
        """migrc_add_pending_ubc(): hand the read-only batch to migrc, or give up."""
        if not pending.required:
            return 0
        busy = ((self.guard_on_flushing and self.on_flushing)
                or (self.guard_migrc_on_flushing and self.migrc_on_flushing))
        if busy:
            pending.meta = []             # these folios are flushed now, not deferred
            task.ubc.fold_from(pending)   # the caller's try_to_unmap_flush() handles it
            self._notify("give_up")
            return 0
        self.ubc.fold_from(pending)
        self.gen = self.gen_next
        return self.gen

    # -- try_to_unmap_flush() hooks --
    def rmap_flush_start(self):
        self.on_flushing += 1

    def rmap_flush_end(self, batch: Ubc, now: float):
        """A normal flush of `batch` is done: it retires migrc_ubc if it covered its CPUs."""
        if self.ubc.required and self.ubc.cpus <= batch.cpus:
            meta = self.ubc.meta
            self.ubc.clear()
            self._notify("retired", meta, "piggyback", now)
        self.on_flushing -= 1

    # -- the deferred flush --
    def check_migrc_flush(self, task: Task, mgen: int, now_fn):
        """Generator: on return, the flush generation `mgen` needs has been done."""
        if not mgen:
            return
        while True:
            if not mgen_before(self.gen_done, mgen):
                return
            yield PREEMPT                                    # spin_lock
            if mgen_next(self.gen_done, self.c_int_promotion) != mgen:
                return
            if self.guard_migrc_on_flushing and self.migrc_on_flushing:
                yield SPIN                                   # others are working for us
                continue
            if not self.ubc.required:
                return
            task.ubc.fold_from(self.ubc)
            self.gen_next = mgen_next(self.gen, self.c_int_promotion)
            self.migrc_on_flushing = True
            self.flusher_cpu = task.cpu
            self._notify("deferred_flush", task.reason)
            yield PREEMPT                                    # spin_unlock
            yield from try_to_unmap_flush(self, task, now_fn)
            yield PREEMPT                                    # spin_lock
            self.migrc_on_flushing = False
            self.gen_done = mgen
            return

    def migrc_flush(self, task: Task, now_fn):
        """do_wp_page() and friends: flush whatever is pending, up to the latest generation."""
        mgen = self.gen
        yield PREEMPT
        yield from self.check_migrc_flush(task, mgen, now_fn)


def try_to_unmap_flush(state: MigrcState | None, task: Task, now_fn, skip=False, single_page=False):
    """mm/rmap.c try_to_unmap_flush() with the seed's rmap_flush_start/end hooks.

    `skip` models the unsafe no_flush ablation: the batch is dropped unflushed.
    `single_page`: a one-page range flush (INVLPG on the targets, as before
    batching), which invalidates the page but leaves the rest of the TLB alone.
    """
    ubc = task.ubc
    if not ubc.required:
        return
    if skip:
        ubc.clear()
        return
    if state is not None:
        state.rmap_flush_start()
        yield PREEMPT
    yield Flush(task.cpu, frozenset(ubc.cpus), single_page)
    if state is not None:
        yield PREEMPT
        meta = ubc.meta
        ubc.meta = []
        if meta:
            state._notify("retired", meta, task.reason, now_fn())
        state.rmap_flush_end(ubc, now_fn())
    ubc.clear()
