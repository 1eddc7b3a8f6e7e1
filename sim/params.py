"""Frozen inputs of the simulator, one dataclass per config group.

Every field carries metadata: its unit, its plausible range and where the
default comes from. `validate()` checks ranges before any work starts, and the
docs table in docs/model.md is generated from the same metadata, so the range a
user is refused with and the range the docs show cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

POLICIES = ("no_batch", "batched", "migrc", "migrc_hold", "luf", "no_flush")
ENGINES = ("vectorized", "reference")


class ParamError(ValueError):
    """A parameter outside its domain; the message names the key and value."""

    def __init__(self, key: str, value: Any, reason: str):
        self.key, self.value, self.reason = key, value, reason
        super().__init__(f"{key}={value!r}: {reason}")


def p(default, unit: str, lo: float | None, hi: float | None, doc: str, source: str,
      integer: bool = False):
    """A parameter field: default, unit, inclusive range [lo, hi], doc and source."""
    return field(default=default, metadata=dict(unit=unit, lo=lo, hi=hi, doc=doc,
                                                source=source, integer=integer))


@dataclass(frozen=True)
class MachineParams:
    num_cpus: int = p(16, "cpus", 1, 4096, "CPUs that run the workload; sets the mm_cpumask fan-out",
                      "seed: 16 vCPUs", integer=True)
    is_guest: bool = p(True, "bool", None, None, "KVM guest (2D page walks, exits on IPIs) or bare metal",
                       "seed: QEMU/KVM")
    itlb_entries: int = p(256, "entries", 1, 65536, "L1 iTLB entries for 4 KiB pages",
                          "costs.md §4, Golden Cove", integer=True)
    dtlb_entries: int = p(96, "entries", 1, 65536, "L1 dTLB load entries for 4 KiB pages",
                          "costs.md §4, Golden Cove", integer=True)
    stlb_entries: int = p(2048, "entries", 1, 1 << 20, "shared second-level TLB entries",
                          "costs.md §4, Golden Cove", integer=True)
    ipi_send_base_ns: float = p(1500.0, "ns", 1.0, 1e6, "initiator latency of a shootdown to its first target",
                                "costs.md §2: guest unicast IPI 1.3-2.5 us; bare metal 0.8 us")
    ipi_send_per_target_ns: float = p(1000.0, "ns", 0.0, 1e6, "initiator latency added by each further target",
                                      "costs.md §2: PV send-IPI 0.95-1.2 us/target; bare metal 0.07 us")
    irq_receive_ns: float = p(2000.0, "ns", 1.0, 1e6,
                              "CPU time a target loses to one shootdown IRQ (entry, flush, ack; exits in a guest)",
                              "costs.md §2: 1.3-2.5 us in a guest; 0.3-1.5 us bare metal [assumption]")
    page_walk_ns: float = p(100.0, "ns", 1.0, 1e5,
                            "native page walk whose leaf PTE comes from the fast node's DRAM (slow-node page tables add the latency gap)",
                            "costs.md §5: 10-500 ns [assumption]")
    walk_2d_factor: float = p(2.0, "x", 1.0, 6.0, "cost of a guest 2D walk over a native walk (ignored on bare metal)",
                              "costs.md §3: x1.2-x6, 24/4 references worst case")
    copy_gbps: float = p(10.7, "GB/s", 0.01, 1000.0, "page-copy bandwidth of migration (folio_copy)",
                         "costs.md §6: 4 KiB copy ~0.38 us, 2 MiB 10.67 GB/s")
    migrate_folio_ns: float = p(720.0, "ns", 0.0, 1e6, "per-folio unmap/remap/bookkeeping cost of migration, besides the copy",
                                "costs.md §6: 1.10 us end-to-end minus 0.38 us copy")
    hinting_fault_ns: float = p(1500.0, "ns", 0.0, 1e6, "CPU time of one NUMA hinting fault, without the copy",
                                "[assumption] 0.5-5 us; guest faults cost more")
    broadcast_flush: bool = p(False, "bool", None, None, "INVLPGB/RAR: no IPIs and no handler, collateral flush remains",
                              "costs.md §1, Rik van Riel's INVLPGB series")
    broadcast_flush_ns: float = p(500.0, "ns", 1.0, 1e6, "initiator cost of one broadcast flush (INVLPGB + TLBSYNC)",
                                  "costs.md: 0.2-2 us [assumption]")
    itlb_flush_events_per_flush: float = p(1.8, "events", 0.5, 8.0,
                                           "itlb.itlb_flush PMU events per full flush of one CPU (2 with KPTI's two PCIDs)",
                                           "fitted to the seed (conf/calibration)")
    dtlb_thread_events_per_flush: float = p(4.5, "events", 0.5, 16.0,
                                            "tlb_flush.dtlb_thread PMU events per full flush of one CPU",
                                            "fitted to the seed (conf/calibration)")
    stlb_any_events_per_flush: float = p(1.8, "events", 0.5, 16.0,
                                         "tlb_flush.stlb_any PMU events per full flush of one CPU",
                                         "fitted to the seed (conf/calibration)")
    background_dtlb_thread_per_cpu_s: float = p(8400.0, "events/cpu/s", 0.0, 1e7,
                                                "tlb_flush.dtlb_thread events from sources not modelled (single-page and kernel flushes)",
                                                "fitted to the seed (conf/calibration)")
    background_stlb_any_per_cpu_s: float = p(7200.0, "events/cpu/s", 0.0, 1e7,
                                             "tlb_flush.stlb_any events from sources not modelled",
                                             "fitted to the seed (conf/calibration)")


@dataclass(frozen=True)
class MemoryParams:
    fast_capacity_mib: float = p(1024.0, "MiB", 1.0, 1 << 30, "capacity of the fast node, which has the CPUs",
                                 "seed: 1 GB")
    slow_capacity_mib: float = p(101376.0, "MiB", 1.0, 1 << 34, "capacity of the CPU-less slow node",
                                 "seed: 99 GB")
    fast_latency_ns: float = p(90.0, "ns", 1.0, 1e5, "load latency of the fast node", "mechanism.md §6: 80-110 ns")
    slow_latency_ns: float = p(120.0, "ns", 1.0, 1e5, "load latency of the slow node",
                               "mechanism.md §6: virtual remote node 1.0-1.5x, CXL 170-400 ns")
    memory_failure_per_s: float = p(0.0, "1/s", 0.0, 1e6, "memory-failure (hwpoison) migrations, which force a deferred flush",
                                    "[assumption] 0 on healthy machines")


@dataclass(frozen=True)
class ReclaimParams:
    demotion_enabled: bool = p(True, "bool", None, None, "/sys/kernel/mm/numa/demotion_enabled", "seed: enabled")
    watermark_scale_factor: float = p(10.0, "1/10000", 1.0, 3000.0,
                                      "vm.watermark_scale_factor: watermark gap as a fraction of the node",
                                      "kernel default 10")
    lru_batch_pages: int = p(32, "pages", 1, 512, "folios kswapd isolates and demotes per migrate_pages call",
                             "SWAP_CLUSTER_MAX = 32", integer=True)
    extra_alloc_mib_per_s: float = p(0.0, "MiB/s", 0.0, 1e6,
                                     "reclaim pressure: other allocations on the fast node (page cache, neighbours) that kswapd must make room for",
                                     "[assumption] 0 for a single batch job")
    evict_fraction: float = p(0.0, "fraction", 0.0, 1.0,
                              "share of reclaimed folios unmapped and freed (swap/file drop) instead of demoted",
                              "[assumption] 0 with demotion and a large slow node")
    numa_scan_size_mib: float = p(256.0, "MiB", 1.0, 1 << 20, "sysctl numa_balancing_scan_size_mb", "kernel default 256")
    numa_scan_period_ms: float = p(1000.0, "ms", 1.0, 1e7,
                                   "effective NUMA scan period (adaptive between scan_period_min 1000 and max 60000)",
                                   "kernel defaults; fitted to the seed")
    hot_threshold_ms: float = p(1000.0, "ms", 1.0, 1e7, "hint-fault latency under which a page counts as hot",
                                "kernel default 1000")
    promote_rate_limit_mib_per_s: float = p(65536.0, "MiB/s", 1.0, 1e9, "numa_balancing_promote_rate_limit_MBps",
                                            "kernel default 65536")
    use_measured_rates: bool = p(False, "bool", None, None,
                                 "take the migration volume from the measured_* rates instead of the scanner model",
                                 "what-if mode (migrc-whatif)")
    measured_promote_pages_per_s: float = p(0.0, "pages/s", 0.0, 1e9, "numa_pages_migrated per second, from /proc/vmstat",
                                            "user's measurement")
    measured_demote_pages_per_s: float = p(0.0, "pages/s", 0.0, 1e9, "pgdemote_kswapd per second, from /proc/vmstat",
                                           "user's measurement")
    measured_other_migrate_pages_per_s: float = p(0.0, "pages/s", 0.0, 1e9,
                                                  "pgmigrate_success minus promotions and demotions, per second",
                                                  "user's measurement")


@dataclass(frozen=True)
class WorkloadParams:
    footprint_mib: float = p(5648.0, "MiB", 1.0, 1 << 34, "data the workload reads and writes",
                             "mechanism.md §5: XSBench large ~5.5 GiB")
    num_threads: int = p(16, "threads", 1, 4096, "threads of the process (XSBench -t)", "seed: -t 16", integer=True)
    num_tasks: float = p(5e7, "tasks", 1.0, 1e18, "tasks to run (XSBench -p particles)", "seed: -p 50000000")
    units_per_task: float = p(34.0, "units", 1e-6, 1e9, "units of work per task (XSBench lookups per particle)",
                              "XSBench history mode: 34")
    compute_ns_per_unit: float = p(300.0, "ns", 0.0, 1e9, "work per unit that does not wait on memory",
                                   "[assumption] XSBench interpolation arithmetic")
    random_pages_per_unit: float = p(70.0, "pages", 0.0, 1e6, "distinct random data pages a unit touches",
                                     "fitted to the seed's dTLB-load-misses per lookup")
    memory_parallelism: float = p(4.0, "misses", 1.0, 64.0, "independent misses a thread overlaps (MLP)",
                                  "fitted to the seed's lookups/s")
    hot_set_fraction: float = p(1.0, "fraction", 0.0, 1.0, "share of the footprint that is hot", "XSBench: uniform")
    hot_access_fraction: float = p(1.0, "fraction", 0.0, 1.0, "share of accesses that go to the hot set",
                                   "XSBench: uniform")
    hot_drift_per_s: float = p(0.0, "1/s", 0.0, 1e3, "share of the hot set replaced by cold pages each second",
                               "XSBench: 0")
    read_only_fraction: float = p(1.0, "fraction", 0.0, 1.0, "share of data folios never written after set-up",
                                  "XSBench: tables are read-only after init")
    write_fraction: float = p(0.0, "fraction", 0.0, 1.0, "share of accesses to the writable folios that are stores",
                              "XSBench: 0")
    large_folio_fraction: float = p(0.0, "fraction", 0.0, 1.0, "share of the footprint in 2 MiB folios (THP)",
                                    "seed: ~0 (70 dTLB misses per lookup)")
    load_hot_pages: float = p(70.0, "pages", 0.0, 1e6, "data pages re-touched soon after a flush (load refill per flush)",
                              "fitted to the seed's dTLB-load-misses change")
    store_hot_pages: float = p(5.6, "pages", 0.0, 1e6, "pages stored to soon after a flush", "fitted to the seed")
    code_hot_pages: float = p(26.0, "pages", 0.0, 1e6, "code pages re-fetched soon after a flush", "fitted to the seed")
    itlb_misses_per_unit: float = p(0.47, "misses", 0.0, 1e6, "iTLB misses per unit not caused by flushes",
                                    "fitted to the seed")
    store_misses_per_unit: float = p(0.11, "misses", 0.0, 1e6, "dTLB store misses per unit not caused by flushes",
                                     "fitted to the seed")
    cpu_utilization: float = p(0.9775, "fraction", 0.01, 1.0,
                               "share of time a CPU of the mm runs it (idle/lazy CPUs get no IPI)",
                               "seed: 1564% cpu over 16 CPUs")


@dataclass(frozen=True)
class NeighbourParams(WorkloadParams):
    """A second process on the same machine, on CPUs of its own.

    Both draw from one free pool and share kswapd. In one memory cgroup they
    share LRU lists, so a batch mixes their folios: its flush reaches both
    processes' CPUs, and one writable neighbour folio flushes the whole batch.
    In separate cgroups each batch holds one process's folios.
    """
    enabled: bool = p(False, "bool", None, None, "a neighbour process runs beside the workload", "mix presets")
    same_memcg: bool = p(False, "bool", None, None,
                         "shares the workload's memory cgroup, hence its LRU lists: kswapd's batches mix both",
                         "LRU lists are per (node, memcg) lruvec")
    num_threads: int = p(8, "threads", 1, 4096, "threads (and CPUs) of the neighbour", "mix presets", integer=True)
    footprint_mib: float = p(2048.0, "MiB", 1.0, 1 << 34, "data the neighbour reads and writes", "mix presets")
    num_tasks: float = p(1.0, "tasks", 1.0, 1e18, "unused: the neighbour runs as long as the workload", "-")


@dataclass(frozen=True)
class FidelityParams:
    window_s: float = p(0.5, "s", 0.01, 1e5, "simulated steady-state time; counters are scaled to the full run",
                        "chosen for <=1% CI on the seed's runtime change")
    warmup_s: float = p(0.1, "s", 0.0, 1e5, "simulated time discarded before counting", "[assumption]")


@dataclass(frozen=True)
class SimParams:
    machine: MachineParams = field(default_factory=MachineParams)
    memory: MemoryParams = field(default_factory=MemoryParams)
    reclaim: ReclaimParams = field(default_factory=ReclaimParams)
    workload: WorkloadParams = field(default_factory=WorkloadParams)
    neighbour: NeighbourParams = field(default_factory=NeighbourParams)
    fidelity: FidelityParams = field(default_factory=FidelityParams)


GROUPS = {"machine": MachineParams, "memory": MemoryParams, "reclaim": ReclaimParams,
          "workload": WorkloadParams, "neighbour": NeighbourParams, "fidelity": FidelityParams}


def _check(key: str, value: Any, meta: dict) -> Any:
    if meta["unit"] == "bool":
        if not isinstance(value, bool):
            raise ParamError(key, value, "must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamError(key, value, "must be a number")
    if math.isnan(value) or math.isinf(value):
        raise ParamError(key, value, "must be a finite number")
    if meta["integer"]:
        if float(value) != int(value):
            raise ParamError(key, value, "must be a whole number")
        value = int(value)
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and value < lo:
        what = "a fraction in [0, 1]" if meta["unit"] == "fraction" else f"at least {lo:g} {meta['unit']}"
        raise ParamError(key, value, f"must be {what}")
    if hi is not None and value > hi:
        what = "a fraction in [0, 1]" if meta["unit"] == "fraction" else f"at most {hi:g} {meta['unit']}"
        raise ParamError(key, value, f"must be {what}")
    return value


def build_group(name: str, values: dict) -> Any:
    """Build one group's params from a plain dict, refusing unknown keys and bad values."""
    cls = GROUPS[name]
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ParamError(f"{name}.{key}", values[key], f"unknown key for {name}")
    kwargs = {k: _check(f"{name}.{k}", v, known[k].metadata) for k, v in values.items()}
    return cls(**kwargs)


def build_params(groups: dict[str, dict]) -> SimParams:
    """SimParams from {"machine": {...}, ...}; every group is optional, unknown groups refused."""
    for g in groups:
        if g not in GROUPS:
            raise ParamError(g, groups[g], f"unknown group; expected one of {sorted(GROUPS)}")
    parts = {g: build_group(g, groups.get(g, {})) for g in GROUPS}
    params = SimParams(**parts)
    check_consistency(params)
    return params


def check_consistency(params: SimParams) -> None:
    """Cross-field rules that single ranges cannot express."""
    w, m, n = params.workload, params.memory, params.neighbour
    total = m.fast_capacity_mib + m.slow_capacity_mib
    if w.footprint_mib + (n.footprint_mib if n.enabled else 0) > total:
        key, val = ("neighbour.footprint_mib", n.footprint_mib) if n.enabled else ("workload.footprint_mib",
                                                                                  w.footprint_mib)
        raise ParamError(key, val, f"the footprints do not fit in fast+slow memory ({total:g} MiB)")
    if n.enabled and w.num_threads + n.num_threads > params.machine.num_cpus:
        raise ParamError("neighbour.num_threads", n.num_threads,
                         f"with workload.num_threads={w.num_threads} the mix needs more than machine.num_cpus="
                         f"{params.machine.num_cpus} CPUs (each process runs on CPUs of its own)")


def param_table() -> list[dict]:
    """Rows of (key, default, unit, range, doc, source) for documentation."""
    rows = []
    for g, cls in GROUPS.items():
        for f in dataclasses.fields(cls):
            md = f.metadata
            rows.append(dict(key=f"{g}.{f.name}", default=f.default, unit=md["unit"], lo=md["lo"], hi=md["hi"],
                             doc=md["doc"], source=md["source"]))
    return rows


def as_flat_dict(params: SimParams) -> dict[str, Any]:
    """{"machine.num_cpus": 16, ...}: the override keys, which are also the dataset's column names."""
    out = {}
    for g in GROUPS:
        for k, v in dataclasses.asdict(getattr(params, g)).items():
            out[f"{g}.{k}"] = v
    return out
