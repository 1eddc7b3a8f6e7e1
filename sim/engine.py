"""The vectorised engine: a batch of points x policies simulated at once.

Each (point, policy) pair is a lane. Lanes of one point share its seed, so the
policies are compared on common random numbers.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .flush_cycle import run_cycles
from .flush_layout import NUM_STREAMS, POLICY_CODES, STALE_BINS_US
from .params import GROUPS, SimParams
from .rng import LaneRandom
from .mix import combined, coverage, process_flows, shares


def lane_arrays(lanes: list[SimParams]) -> dict[str, np.ndarray]:
    out = {}
    for g in GROUPS:
        for f in dataclasses.fields(GROUPS[g]):
            out[f"{g}.{f.name}"] = np.array([float(getattr(getattr(p, g), f.name)) for p in lanes])
    return out


def _quantile_us(hist: np.ndarray, q: float) -> np.ndarray:
    """Quantile of the stale-window histogram, interpolated log-linearly within its bin
    (8 bins a decade: a bin's centre alone would step by a third)."""
    edges = np.concatenate([[STALE_BINS_US[0] / 1.33], STALE_BINS_US, [STALE_BINS_US[-1] * 1.33]])
    total = hist.sum(1, keepdims=True)
    cum = np.cumsum(hist, 1)
    target = q * total
    idx = np.minimum((cum < target).sum(1), hist.shape[1] - 1)
    rows = np.arange(len(hist))
    below = np.where(idx > 0, cum[rows, np.maximum(idx - 1, 0)], 0.0)
    inside = hist[rows, idx]
    frac = np.clip(np.where(inside > 0, (target[:, 0] - below) / np.where(inside > 0, inside, 1.0), 0.5), 0.0, 1.0)
    lo, hi = edges[idx], edges[idx + 1]
    return np.where(total[:, 0] > 0, lo * (hi / lo) ** frac, 0.0)


def run_lanes(lanes: list[SimParams], seeds: list[int], policies: list[str]) -> list[dict]:
    L = lane_arrays(lanes)
    return account(L, policies, simulate_flushes(L, seeds, policies))


def simulate_flushes(L: dict[str, np.ndarray], seeds: list[int], policies: list[str]):
    """The stochastic part: the flush process over the simulated window."""
    code = np.array([POLICY_CODES[p] for p in policies])
    rnd = LaneRandom(np.array(seeds, dtype=np.uint64), NUM_STREAMS)
    f, L_run = combined(L, process_flows(L))
    return run_cycles(f, L_run, code, rnd, L["fidelity.window_s"], L["fidelity.warmup_s"])


THREAD_TRIGGERS = ("alloc", "write_fault", "memory_failure")


def _received(L, flows, cover, tally, per_s) -> dict[str, np.ndarray]:
    """IPIs per second reaching each process's CPUs, by who initiated the flush.

    A flush covering process i reaches its running CPUs, less the initiator's
    own when the initiator is one of them.
    """
    thread = sum(tally.triggers[k] for k in THREAD_TRIGGERS)
    by_type = {"kswapd": per_s(tally.flushes - thread), "thread": per_s(thread)}
    out = {p: 0.0 for p in flows}
    for kind, rate in by_type.items():
        covered = sum(cover[p][kind] * flows[p].run_threads for p in flows)
        for p in flows:
            mine = cover[p][kind] * flows[p].run_threads
            initiator_here = np.where(covered > 0, mine / np.maximum(covered, 1e-12), 0.0)
            out[p] = out[p] + rate * cover[p][kind] * L[f"{p}.cpu_utilization"] * (
                flows[p].run_threads - initiator_here)
    return out


def _price(L, proc: str, f, sh: dict, tally, per_s, received_mig, full_share, refault_scale) -> dict[str, np.ndarray]:
    """What the flushes, faults and kswapd cost one process, per second, and its throughput."""
    m = L
    broadcast = m["machine.broadcast_flush"].astype(bool)
    util = m[f"{proc}.cpu_utilization"]
    steal = f.run_threads / m["machine.num_cpus"]  # kswapd runs on one of this process's CPUs this often
    # The NUMA scanner's change_prot_numa ends each pass with one range flush (>33 pages: a full one),
    # to this process's own CPUs.
    scan_flush = np.where(f.migrating, 1e3 / m["reclaim.numa_scan_period_ms"], 0.0)
    scan_targets = np.maximum(f.run_threads - 1, 0) * util
    initiators = per_s(tally.flushes - sum(tally.triggers[k] for k in THREAD_TRIGGERS)) * steal \
        + per_s(sum(tally.triggers[k] for k in THREAD_TRIGGERS)) * sh["alloc"]
    received = np.where(broadcast, 0.0, received_mig + scan_flush * scan_targets)
    scan_remote = np.where(broadcast | (scan_targets <= 0), 0.0, scan_flush)
    # every covered CPU flushes: the IPI targets (also under broadcast flush) and the initiator;
    # only full flushes cost a refill of the hot translations
    flushed_cpus = (received_mig + initiators) * full_share + scan_flush * (1 + scan_targets)
    refill = f.refill_load + f.refill_store + f.refill_code
    interrupt_ns = received * m["machine.irq_receive_ns"]
    refill_ns = flushed_cpus * refill * f.walk_ns
    kswapd_copy_ns = per_s(tally.kswapd_ns) * steal
    kswapd_wait_ns = per_s(tally.kswapd_flush_wait_ns) * steal
    thread_wait_ns = per_s(tally.thread_wait_ns) * sh["alloc"]
    promoted = per_s(tally.promoted) * sh["promote"]
    # other allocations at their rate, refaults as many as the flush process made
    other_allocs = f.alloc_per_s - f.promote_per_s - f.refault_per_s * (1.0 - refault_scale)
    fault_ns = (f.hint_faults_per_s * m["machine.hinting_fault_ns"]
                + promoted * (f.copy_page_ns + m["machine.migrate_folio_ns"])
                + other_allocs * (m["machine.hinting_fault_ns"] + f.copy_page_ns))
    capacity_ns = f.run_threads * util * 1e9
    overhead_ns = interrupt_ns + refill_ns + kswapd_copy_ns + kswapd_wait_ns + thread_wait_ns + fault_ns
    o = np.minimum(overhead_ns / np.maximum(capacity_ns, 1e-9), 0.99)
    units_per_s = (1 - o) * capacity_ns / f.unit_ns
    return dict(received=received, scan_remote=scan_remote, flushed_cpus=flushed_cpus, interrupt_ns=interrupt_ns,
                refill_ns=refill_ns, wait_ns=kswapd_wait_ns + thread_wait_ns, copy_ns=kswapd_copy_ns + fault_ns,
                promoted=promoted, capacity_ns=capacity_ns, units_per_s=units_per_s)


def account(L: dict[str, np.ndarray], policies: list[str], tally) -> list[dict]:
    """The deterministic part: price a flush tally and scale it to the whole run.

    Kept apart so calibration can re-price candidate cost parameters against one
    tally; parameters that change the flush process itself need a new tally.
    """
    flows = process_flows(L)
    sh = shares(L, flows)
    window = L["fidelity.window_s"]
    per_s = lambda x: x / window  # noqa: E731
    defers = np.isin(np.array(policies), ("migrc", "migrc_hold", "luf"))
    recv = _received(L, flows, coverage(L, flows, defers), tally, per_s)
    # Before batching (no_batch), each small folio's flush was a one-page range, done
    # with INVLPG on the targets: an IPI but no collateral damage. THPs flush in full.
    thp_p = combined(L, flows)[0].thp_step_p
    full_share = np.where(np.array(policies) == "no_batch",
                          thp_p / np.maximum(thp_p + (1 - thp_p) * L["reclaim.lru_batch_pages"], 1e-12), 1.0)
    steady_refault = sum(g.refault_per_s for g in flows.values())
    refault_scale = np.where(steady_refault > 0, per_s(tally.refaulted) / np.maximum(steady_refault, 1e-12), 1.0)
    priced = {p: _price(L, p, flows[p], sh[p], tally, per_s, recv[p], full_share, refault_scale) for p in flows}
    f, w = flows["workload"], priced["workload"]
    m = L
    units = m["workload.num_tasks"] * m["workload.units_per_task"]
    runtime = units / w["units_per_s"]
    units_per_s = w["units_per_s"]
    broadcast = m["machine.broadcast_flush"].astype(bool)

    # System-wide counters (perf -a, /proc): every process's share, over the workload's run.
    def total(key):
        return sum(q[key] for q in priced.values())

    received = total("received")
    remote = np.where(broadcast, 0.0, per_s(tally.remote_flushes)) + total("scan_remote")
    flushed_cpus = total("flushed_cpus")

    def misses(per_unit, refill):
        return sum(priced[p]["units_per_s"] * per_unit(p) + priced[p]["flushed_cpus"] * refill(p) for p in flows)

    load_misses = misses(lambda p: flows[p].load_misses_per_unit, lambda p: flows[p].refill_load)
    store_misses = misses(lambda p: flows[p].store_misses_per_unit, lambda p: flows[p].refill_store)
    code_misses = misses(lambda p: m[f"{p}.itlb_misses_per_unit"], lambda p: flows[p].refill_code)
    promoted = per_s(tally.promoted)
    capacity_ns = w["capacity_ns"]

    def split(ns_per_s):  # per-thread seconds of the run, summing to runtime
        return ns_per_s / capacity_ns * runtime

    unit_total = units * 1e-9 / (f.run_threads * m["workload.cpu_utilization"])
    neighbour_tp = priced["neighbour"]["units_per_s"] if "neighbour" in priced else np.zeros_like(runtime)
    demoted = per_s(tally.demoted)
    trig = {k: per_s(v) for k, v in tally.triggers.items()}
    alloc_wait = per_s(tally.alloc_wait_ns)
    hint_faults = sum(g.hint_faults_per_s for g in flows.values())
    # every promoted page of writable data takes one write fault: scale by the promotions made
    steady_promoted = sum(g.promote_per_s for g in flows.values())
    write_faults = sum(g.write_faults_per_s for g in flows.values()) * np.where(
        steady_promoted > 0, promoted / np.maximum(steady_promoted, 1e-12), 1.0)
    refill_ns, interrupt_ns = w["refill_ns"], w["interrupt_ns"]
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
            dtlb_load_misses=load_misses[i] * R,
            dtlb_store_misses=store_misses[i] * R,
            itlb_load_misses=code_misses[i] * R,
            tlb_shootdowns=received[i] * R,
            nr_tlb_remote_flush=remote[i] * R,
            nr_tlb_remote_flush_received=received[i] * R,
            pgmigrate_success=(demoted[i] + promoted[i]) * R,
            pgdemote_kswapd=demoted[i] * R,
            numa_pages_migrated=promoted[i] * R,
            runtime_s=R,
            throughput_per_s=units_per_s[i],
            numa_hint_faults=hint_faults[i] * R,
            write_faults=write_faults[i] * R,
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
            initiator_wait_s=split(w["wait_ns"])[i],
            copy_s=split(w["copy_ns"])[i],
            stale_read_violations=0.0,
            tlb_full_flushes=flushed_cpus[i] * R,
            neighbour_throughput_per_s=neighbour_tp[i],
        )
        rows.append({k: (float(v) if k != "policy" else v) for k, v in row.items()})
    return rows
