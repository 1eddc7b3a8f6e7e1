"""The vectorised engine: a batch of points x policies simulated at once.

Each (point, policy) pair is a lane. Lanes of one point share its seed, so the
policies are compared on common random numbers.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .flush_cycle import NUM_STREAMS, POLICY_CODES, STALE_BINS_US, run_cycles
from .params import GROUPS, SimParams
from .rng import LaneRandom
from .steady import steady_flows


def lane_arrays(lanes: list[SimParams]) -> dict[str, np.ndarray]:
    out = {}
    for g in GROUPS:
        for f in dataclasses.fields(GROUPS[g]):
            out[f"{g}.{f.name}"] = np.array([float(getattr(getattr(p, g), f.name)) for p in lanes])
    return out


def _quantile_us(hist: np.ndarray, q: float) -> np.ndarray:
    """Quantile of the stale-window histogram, at the geometric centre of its bin."""
    edges = np.concatenate([[STALE_BINS_US[0] / 1.33], STALE_BINS_US, [STALE_BINS_US[-1] * 1.33]])
    centres = np.sqrt(edges[:-1] * edges[1:])
    total = hist.sum(1, keepdims=True)
    cdf = np.cumsum(hist, 1) / np.where(total > 0, total, 1)
    idx = (cdf < q).sum(1)
    return np.where(total[:, 0] > 0, centres[np.minimum(idx, len(centres) - 1)], 0.0)


def run_lanes(lanes: list[SimParams], seeds: list[int], policies: list[str]) -> list[dict]:
    L = lane_arrays(lanes)
    return account(L, policies, simulate_flushes(L, seeds, policies))


def simulate_flushes(L: dict[str, np.ndarray], seeds: list[int], policies: list[str]):
    """The stochastic part: the flush process over the simulated window."""
    code = np.array([POLICY_CODES[p] for p in policies])
    rnd = LaneRandom(np.array(seeds, dtype=np.uint64), NUM_STREAMS)
    return run_cycles(steady_flows(L), L, code, rnd, L["fidelity.window_s"], L["fidelity.warmup_s"])


def account(L: dict[str, np.ndarray], policies: list[str], tally) -> list[dict]:
    """The deterministic part: price a flush tally and scale it to the whole run.

    Kept apart so calibration can re-price candidate cost parameters against one
    tally; parameters that change the flush process itself need a new tally.
    """
    f = steady_flows(L)
    window = L["fidelity.window_s"]
    per_s = lambda x: x / window  # noqa: E731

    m = L  # machine/workload keys
    flushed_cpus = per_s(tally.flushes + tally.targets)   # the initiator flushes locally too
    broadcast = m["machine.broadcast_flush"].astype(bool)
    received = np.where(broadcast, 0.0, per_s(tally.targets))
    remote = np.where(broadcast, 0.0, per_s(tally.remote_flushes))
    # The NUMA scanner's change_prot_numa ends each pass with one range flush (>33 pages: a full one).
    scan_flush = np.where(f.migrating, 1e3 / m["reclaim.numa_scan_period_ms"], 0.0)
    targets_per = np.maximum(f.mask_cpus - 1, 0) * m["workload.cpu_utilization"]
    received = received + np.where(broadcast, 0.0, scan_flush * targets_per)
    remote = remote + np.where(broadcast | (targets_per <= 0), 0.0, scan_flush)
    flushed_cpus = flushed_cpus + scan_flush * (1 + targets_per)

    refill = f.refill_load + f.refill_store + f.refill_code
    interrupt_ns = np.where(broadcast, 0.0, received * m["machine.irq_receive_ns"])
    refill_ns = flushed_cpus * refill * f.walk_ns
    steal = f.run_threads / m["machine.num_cpus"]  # kswapd takes a workload CPU this often
    kswapd_copy_ns = per_s(tally.kswapd_ns) * steal
    kswapd_wait_ns = per_s(tally.kswapd_flush_wait_ns) * steal
    thread_wait_ns = per_s(tally.thread_wait_ns)
    promoted = per_s(tally.promoted)
    fault_ns = (f.hint_faults_per_s * m["machine.hinting_fault_ns"]
                + promoted * (f.copy_page_ns + m["machine.migrate_folio_ns"])
                + (f.alloc_per_s - f.promote_per_s) * (m["machine.hinting_fault_ns"] + f.copy_page_ns))
    overhead_ns = interrupt_ns + refill_ns + kswapd_copy_ns + kswapd_wait_ns + thread_wait_ns + fault_ns
    capacity_ns = f.run_threads * m["workload.cpu_utilization"] * 1e9
    o = np.minimum(overhead_ns / capacity_ns, 0.99)
    units_per_s = (1 - o) * capacity_ns / f.unit_ns
    units = m["workload.num_tasks"] * m["workload.units_per_task"]
    runtime = units / units_per_s

    def split(ns_per_s):  # per-thread seconds of the run, summing to runtime
        return ns_per_s / capacity_ns * runtime

    unit_total = units * 1e-9 / (f.run_threads * m["workload.cpu_utilization"])
    demoted = per_s(tally.demoted)
    trig = {k: per_s(v) for k, v in tally.triggers.items()}
    alloc_wait = per_s(tally.alloc_wait_ns)
    rows = []
    for i, pol in enumerate(policies):
        R = runtime[i]
        hist = tally.stale_hist[i:i + 1]
        stale_pages = tally.stale_pages[i]
        row = dict(
            policy=pol,
            itlb_flush=m["machine.itlb_flush_events_per_flush"][i] * flushed_cpus[i] * R,
            dtlb_thread_flush=(m["machine.dtlb_thread_events_per_flush"][i] * flushed_cpus[i]
                               + m["machine.background_dtlb_thread_per_cpu_s"][i] * m["machine.num_cpus"][i]) * R,
            stlb_any_flush=(m["machine.stlb_any_events_per_flush"][i] * flushed_cpus[i]
                            + m["machine.background_stlb_any_per_cpu_s"][i] * m["machine.num_cpus"][i]) * R,
            dtlb_load_misses=units[i] * f.load_misses_per_unit[i] + flushed_cpus[i] * f.refill_load[i] * R,
            dtlb_store_misses=units[i] * f.store_misses_per_unit[i] + flushed_cpus[i] * f.refill_store[i] * R,
            itlb_load_misses=units[i] * m["workload.itlb_misses_per_unit"][i] + flushed_cpus[i] * f.refill_code[i] * R,
            tlb_shootdowns=received[i] * R,
            nr_tlb_remote_flush=remote[i] * R,
            nr_tlb_remote_flush_received=received[i] * R,
            pgmigrate_success=(demoted[i] + promoted[i]) * R,
            pgdemote_kswapd=demoted[i] * R,
            numa_pages_migrated=promoted[i] * R,
            runtime_s=R,
            throughput_per_s=units_per_s[i],
            numa_hint_faults=f.hint_faults_per_s[i] * R,
            write_faults=f.write_faults_per_s[i] * R,
            deferred_flush_alloc=trig["alloc"][i] * R,
            deferred_flush_write_fault=trig["write_fault"][i] * R,
            deferred_flush_memory_failure=trig["memory_failure"][i] * R,
            deferred_flush_piggyback=trig["piggyback"][i] * R,
            deferred_flush_reclaim=trig["reclaim"][i] * R,
            deferred_give_up=trig["give_up"][i] * R,
            pending_pages_mean=tally.pending_page_s[i] / window[i],
            pending_pages_peak=tally.pending_peak[i],
            held_mib_mean=tally.held_page_s[i] / window[i] / 256,
            held_mib_peak=tally.held_peak[i] / 256,
            stale_window_us_mean=tally.stale_page_s[i] / stale_pages * 1e6 if stale_pages > 0 else 0.0,
            stale_window_us_p50=float(_quantile_us(hist, 0.5)[0]),
            stale_window_us_p99=float(_quantile_us(hist, 0.99)[0]),
            alloc_flush_ns_per_s=alloc_wait[i],
            work_s=m["workload.compute_ns_per_unit"][i] * unit_total[i],
            memory_stall_s=f.unit_stall_ns[i] * unit_total[i],
            tlb_walk_s=f.unit_walk_ns[i] * unit_total[i] + split(refill_ns)[i],
            interrupt_s=split(interrupt_ns)[i],
            initiator_wait_s=split(kswapd_wait_ns + thread_wait_ns)[i],
            copy_s=split(kswapd_copy_ns + fault_ns)[i],
            stale_read_violations=0.0,
            tlb_full_flushes=flushed_cpus[i] * R,
        )
        rows.append({k: (float(v) if k != "policy" else v) for k, v in row.items()})
    return rows
