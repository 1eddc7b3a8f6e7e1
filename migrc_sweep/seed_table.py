"""The seed's measured table: migrc v9 cover letter, XSBench in a 16-vCPU KVM guest.

This is the calibration target and the yardstick of the side-by-side report. It
is data, quoted from ../shared/seed/ (perf stat -a, /proc/interrupts, time),
keyed by our metric names.
"""

from __future__ import annotations

SOURCE = "migrc v9 cover letter (20240417071847.29584-1-byungchul@sk.com), v6.9-rc4, XSBench -t 16 -p 50000000"

PER_CPU_SHOOTDOWNS_BEFORE = (1364803, 1303670, 1333921, 1349607, 1356934, 1354216, 1332972, 1342842,
                             1350265, 1316443, 1355928, 1360793, 1298239, 1326358, 1343006, 1340971)
PER_CPU_SHOOTDOWNS_AFTER = (117257, 119219, 117178, 115737, 117967, 118948, 117508, 116079,
                            116962, 117266, 117320, 117215, 105808, 103934, 115672, 117610)

# metric -> (BEFORE = batched, AFTER = migrc)
MEASURED = {
    "itlb_flush": (40417078, 3316495),
    "dtlb_thread_flush": (234852566, 138912511),
    "stlb_any_flush": (153192357, 115199341),
    "dtlb_load_misses": (119001107892, 117610390021),
    "dtlb_store_misses": (307921167, 198042233),
    "itlb_load_misses": (1355272118, 840066984),
    "tlb_shootdowns": (sum(PER_CPU_SHOOTDOWNS_BEFORE), sum(PER_CPU_SHOOTDOWNS_AFTER)),
    "runtime_s": (968.783, 913.210),
    "throughput_per_s": (1754778, 1861565),
}

LOOKUPS = 1_700_000_000
CPU_UTILIZATION = (15.64, 15.65)  # `time`: 1564% and 1565% cpu over 16 vCPUs


def change_pct(metric: str) -> float:
    before, after = MEASURED[metric]
    return 100.0 * (after / before - 1.0)
