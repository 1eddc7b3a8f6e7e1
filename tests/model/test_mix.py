"""Co-running processes: shared kswapd batches, separate CPUs."""

import pytest

import sim
from sim.params import ParamError, build_params

QUICK = {"window_s": 0.3, "warmup_s": 0.05}


def _run(neighbour=None, **workload):
    groups = {"workload": {"num_threads": 8, **workload}, "fidelity": QUICK}
    if neighbour is not None:
        groups["neighbour"] = {"enabled": True, "num_threads": 8, **neighbour}
    before, after = sim.simulate(build_params(groups), ["batched", "migrc"], seed=3)
    return before, after


def _targets_per_flush(row):
    return row["tlb_shootdowns"] / row["nr_tlb_remote_flush"]


def test_a_disabled_neighbour_changes_nothing():
    alone = _run()
    off = sim.simulate(build_params({"workload": {"num_threads": 8}, "fidelity": QUICK,
                                     "neighbour": {"enabled": False, "num_threads": 8}}), ["batched", "migrc"], 3)
    assert alone[0] == off[0] and alone[1] == off[1]


def test_in_one_cgroup_a_migrating_neighbour_widens_the_fan_out():
    """Mixed LRU batches: a batch flush reaches both processes' CPUs."""
    alone, _ = _run()
    apart, _ = _run({"footprint_mib": 4096.0, "same_memcg": False})
    together, _ = _run({"footprint_mib": 4096.0, "same_memcg": True})
    assert _targets_per_flush(together) > 1.8 * _targets_per_flush(alone)
    assert _targets_per_flush(apart) < _targets_per_flush(together)


def test_in_its_own_cgroup_a_barely_migrating_neighbour_is_not_interrupted():
    alone, _ = _run()
    compute, _ = _run({"footprint_mib": 256.0, "random_pages_per_unit": 1e-4, "same_memcg": False})
    assert _targets_per_flush(compute) < 1.2 * _targets_per_flush(alone)


def _cut(pair):
    return 1 - pair[1]["tlb_shootdowns"] / pair[0]["tlb_shootdowns"]


WRITER = {"footprint_mib": 4096.0, "read_only_fraction": 0.2, "write_fraction": 0.3}


def test_a_write_heavy_neighbour_in_one_cgroup_takes_away_migrcs_gain():
    """Its writable folios share kswapd's batches, so the batches flush at once."""
    tables = _run({"footprint_mib": 4096.0, "same_memcg": True})
    writer = _run({**WRITER, "same_memcg": True})
    assert _cut(tables) > 0.8
    assert _cut(writer) < 0.5 * _cut(tables)


def test_in_separate_cgroups_the_writers_write_faults_still_flush_the_pending_work():
    """Its own batches stay all read-only and are deferred, but v9's do_wp_page calls
    migrc_flush() for any process, so the writer's write faults pay them at once.
    Together, the writer's folios make every batch flush at once: no deferral outlives
    its batch (a write fault, or an allocation of a page tagged with the generation the
    deferral reuses, may still pay one during kswapd's flush, as in the reference): never
    more than one batch's read-only folios are pending, and only until its flush."""
    together = _run({**WRITER, "same_memcg": True})[1]
    apart = _run({**WRITER, "same_memcg": False})[1]
    batch = sim.SimParams().reclaim.lru_batch_pages
    assert 0 < together["pending_pages_peak"] <= batch < apart["pending_pages_peak"]
    assert together["stale_window_us_p99"] < 0.5 * apart["stale_window_us_p99"]
    assert apart["pending_pages_mean"] > 0
    assert apart["deferred_flush_write_fault"] > 10 * apart["deferred_flush_alloc"]


def test_a_mix_must_fit_the_cpus():
    with pytest.raises(ParamError, match="neighbour.num_threads"):
        build_params({"workload": {"num_threads": 16}, "neighbour": {"enabled": True, "num_threads": 8}})
