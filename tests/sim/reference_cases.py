"""Small tiered machines for the reference-model tests (imported by name: see tests/cli_process.py)."""

from __future__ import annotations

from sim import build_params

SAFE = ("no_batch", "batched", "migrc", "migrc_hold", "luf")


def small(machine=None, memory=None, reclaim=None, workload=None, fidelity=None):
    """A small tiered machine: 32 MiB fast node, 160 MiB footprint, 8 CPUs, a 0.1 s window."""
    groups = dict(
        machine=dict(num_cpus=8),
        memory=dict(fast_capacity_mib=32.0, slow_capacity_mib=1024.0),
        reclaim=dict(numa_scan_size_mib=64.0, numa_scan_period_ms=250.0),
        workload=dict(footprint_mib=160.0, num_threads=8),
        fidelity=dict(window_s=0.1, warmup_s=0.03),
    )
    for g, over in (("machine", machine), ("memory", memory), ("reclaim", reclaim), ("workload", workload),
                    ("fidelity", fidelity)):
        groups[g].update(over or {})
    return build_params(groups)
