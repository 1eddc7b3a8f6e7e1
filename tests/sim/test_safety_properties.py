"""Property tests of the safety checker over random interleavings and small configurations."""

from __future__ import annotations

from reference_cases import SAFE, small
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sim.reference import run_model
from sim.reference.interleave import World, run

SETTINGS = dict(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _scenario(w: World, writable):
    """Two migrating CPUs (read-only and writable folios), two allocators of the freed
    frames, a write fault and readers on every CPU."""
    w.location.update({1: 10, 2: 20, 3: 30})
    return {
        "m1": w.migrate(1, 1, 11, writable=writable[0]),
        "m2": w.migrate(2, 2, 21, writable=writable[1]),
        "m3": w.migrate(1, 3, 31, writable=writable[2], after=("freed", 10)),
        "a10": w.alloc(3, 10, after=("freed", 10)),
        "a30": w.alloc(0, 30, after=("freed", 30)),
        "a20": w.alloc(2, 20, after=("freed", 20)),
        "wf": w.write_fault(3, 2, after=("freed", 20)),
        "r1": w.read(0, 1, after=("alloc", 10)),
        "r3": w.read(2, 3, after=("alloc", 30)),
        "r2": w.read(1, 2, after=("written", 2)),
        "r2b": w.read(3, 2, after=("alloc", 20)),
    }


names = ["m1", "m2", "m3", "a10", "a30", "a20", "wf", "r1", "r3", "r2", "r2b"]


@settings(**SETTINGS)
@given(schedule=st.lists(st.sampled_from(names), max_size=60),
       writable=st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_no_interleaving_breaks_the_guarded_state_machine(schedule, writable):
    w = World(num_cpus=4)
    assert run(w, _scenario(w, writable), schedule) == 0, "\n".join(w.trace)


@settings(**SETTINGS)
@given(schedule=st.lists(st.sampled_from(names), max_size=60))
def test_no_flush_is_caught_in_every_interleaving(schedule):
    w = World(num_cpus=4, policy="no_flush")
    assert run(w, _scenario(w, (False, False, False)), schedule) >= 1


config = st.fixed_dictionaries(dict(
    cpus=st.sampled_from([2, 4, 8]),
    ro=st.sampled_from([0.0, 0.5, 1.0]),
    wf=st.sampled_from([0.0, 0.5]),
    evict=st.sampled_from([0.0, 0.3]),
    thp=st.sampled_from([0.0, 0.2]),
    policy=st.sampled_from(SAFE),
    seed=st.integers(0, 2**16),
))


def _params(c):
    return small(machine=dict(num_cpus=c["cpus"]),
                 workload=dict(num_threads=c["cpus"], read_only_fraction=c["ro"], write_fraction=c["wf"],
                               large_folio_fraction=c["thp"], footprint_mib=96.0),
                 memory=dict(fast_capacity_mib=16.0),
                 reclaim=dict(evict_fraction=c["evict"]),
                 fidelity=dict(window_s=0.04, warmup_s=0.01))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=config)
def test_safe_policies_never_read_stale_data(c):
    m = run_model(_params(c), c["policy"], c["seed"])
    assume(m.c.demoted + m.c.evicted > 0)             # else there was nothing to flush
    assert m.tlb.violations == 0, m.tlb.violation_log[:3]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=config)
def test_no_flush_reads_stale_data(c):
    m = run_model(_params(c), "no_flush", c["seed"])
    # a scanner that spends the short window among THPs too big to promote moves nothing
    assume(m.c.demoted + m.c.evicted > 0)
    assert m.tlb.violations > 0
