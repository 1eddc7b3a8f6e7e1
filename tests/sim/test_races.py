"""The two races the seed's comments describe, as scripted interleavings.

With the matching guard switched off the safety checker must report a stale
read; with the guard on (the patch as written) it must report none.
"""

from __future__ import annotations

import pytest

from sim.reference.interleave import World, run
from sim.reference.migrc_state import mgen_before, mgen_latest, mgen_next


def race_on_flushing(guard: bool):
    """CPU0 is in try_to_unmap_flush() for a writable folio when CPU1 unmaps a
    read-only one and adds its CPUs to migrc_ubc; CPU0's rmap_flush_end() then
    clears them although its flush ran before CPU1's unmap."""
    w = World(num_cpus=4, guard_on_flushing=guard)
    w.location.update({1: 10, 2: 20})
    threads = {"c0": w.migrate(0, 2, 21, writable=True), "c1": w.migrate(1, 1, 11)}
    # c0: unmap | add_pending | rmap_flush_start | flush (CPUs 0-3) ...
    # c1: unmap + add pending CPUs | add_pending  ... then c0: rmap_flush_end
    run(w, threads, ["c0", "c0", "c0", "c0", "c1", "c1", "c0"])
    # frame 10 (page 1's old frame) is reallocated on CPU2, then CPU3 reads page 1
    run(w, {"alloc": w.alloc(2, 10, after=("freed", 10)),
            "read": w.read(3, 1, after=("alloc", 10))}, [])
    return w


def race_migrc_on_flushing(guard: bool):
    """Two allocators in check_migrc_flush(): CPU2 has taken the pending CPUs
    and is about to flush when CPU3 sees flush_required == false and returns."""
    w = World(num_cpus=4, guard_migrc_on_flushing=guard)
    w.location.update({1: 10, 3: 30})
    run(w, {"m1": w.migrate(1, 1, 11), "m3": w.migrate(1, 3, 31, after=("freed", 10))}, [])
    assert w.tags == {10: 1, 30: 1}
    threads = {"a2": w.alloc(2, 10), "a3": w.alloc(3, 30),
               "r0": w.read(0, 3, after=("alloc", 30))}
    # a2: gen check | fold, migrc_on_flushing = true, unlock ; a3: gen check | sees no flush required
    run(w, threads, ["a2", "a2", "a3", "a3", "a3", "r0", "r0"])
    return w


@pytest.mark.parametrize("race", [race_on_flushing, race_migrc_on_flushing])
def test_race_is_caught_without_its_guard(race):
    w = race(guard=False)
    assert w.tlb.violations >= 1, "\n".join(w.trace)


@pytest.mark.parametrize("race", [race_on_flushing, race_migrc_on_flushing])
def test_guard_prevents_the_race(race):
    w = race(guard=True)
    assert w.tlb.violations == 0, "\n".join(w.trace)
    # and the work did complete: the frame was reallocated and the page read
    assert any("reallocated" in line for line in w.trace)
    assert any("read page" in line for line in w.trace)


def test_give_up_is_what_the_on_flushing_guard_does():
    w = race_on_flushing(guard=True)
    assert not w.state.ubc.required
    assert any("freed frame 10 gen 0" in line for line in w.trace)   # untagged: CPU1 flushed it itself


def test_generation_arithmetic():
    assert mgen_next(1) == 2 and mgen_next(0xFFFF) == 1 and mgen_next(0xFFFE) == 0xFFFF
    assert mgen_before(0xFFFF, 1) and not mgen_before(1, 0xFFFF)   # wrapping, signed 16-bit
    assert mgen_latest(0, 5) == 5 and mgen_latest(0xFFFF, 2) == 2
    # the seed's literal `a + 1 ?: a + 2` on an unsigned short returns 0 after 0xFFFF
    assert mgen_next(0xFFFF, c_int_promotion=True) == 0


def test_literal_generation_wrap_loses_the_deferred_flush():
    """After 0xFFFF the literal mgen_next() yields generation 0; migrc then frees
    folios untagged while their CPUs are still pending, and reallocation reads stale."""
    for literal, expect in ((True, 1), (False, 0)):
        w = World(num_cpus=4, c_int_promotion=literal)
        w.state.gen = w.state.gen_next = 0xFFFF
        w.state.gen_done = 0xFFFE
        w.location.update({1: 10, 2: 20})
        run(w, {"m": w.migrate(1, 1, 11)}, [])
        run(w, {"a": w.alloc(2, 10)}, [])          # deferred flush of gen 0xFFFF
        run(w, {"m": w.migrate(1, 2, 21)}, [])     # next deferral gets gen_next
        run(w, {"a": w.alloc(2, 20), "r": w.read(3, 2, after=("alloc", 20))}, [])
        assert w.tlb.violations == expect, (literal, "\n".join(w.trace))
