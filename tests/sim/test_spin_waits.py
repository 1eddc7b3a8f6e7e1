"""Threads that find a deferred flush running spin until it is done (check_migrc_flush()'s
migrc_on_flushing), and their wait counts as initiator wait; a fault on the CPU whose own
thread runs that flush does not count again: that thread is the one waiting."""

import numpy as np

from sim.reference.des import Counters, Driver
from sim.reference.migrc_state import MigrcState, Task, Ubc
from sim.reference.model import STALE_BINS_US
from sim.reference.tlb import TlbModel

BASE_NS, PER_TARGET_NS = 1000.0, 100.0


def _driver(num_cpus=4):
    state = MigrcState()
    cost = dict(util=1.0, broadcast=False, broadcast_ns=0.0, base_ns=BASE_NS, per_target_ns=PER_TARGET_NS)
    c = Counters(num_cpus, STALE_BINS_US)
    return Driver(0.0, 1.0, state, TlbModel(num_cpus), cost, np.random.default_rng(0), c), state, c


def _deferred(state, cpus):
    pending = Ubc()
    pending.add(cpus)
    return state.add_pending(Task(0, "kswapd", "reclaim"), pending)


def test_a_spinner_waits_the_rest_of_the_flush_and_the_flushers_own_cpu_adds_nothing():
    drv, state, c = _driver()
    gen = _deferred(state, range(4))
    now = lambda: drv.now  # noqa: E731
    flusher, same, other = Task(0), Task(0), Task(1)
    drv.at(0.0, drv.spawn, state.check_migrc_flush(flusher, gen, now), flusher)
    # 100 ns into the flush (3 targets: 1200 ns) a fault on its own CPU and one on CPU 1
    # take pages tagged with the generation in flight
    drv.at(100e-9, drv.spawn, state.check_migrc_flush(same, gen, now), same)
    drv.at(100e-9, drv.spawn, state.check_migrc_flush(other, gen, now), other)
    drv.run()
    flush_ns = BASE_NS + 2 * PER_TARGET_NS
    assert c.flushes == 1 and not state.migrc_on_flushing and state.gen_done == gen
    assert np.isclose(c.thread_wait_ns, flush_ns + (flush_ns - 100.0))
