"""Names of what a simulation reports: the results contract and the extra counters."""

# The results contract (issue 2): named as the seed's perf/vmstat/proc counters.
CONTRACT_METRICS = (
    "itlb_flush",                    # itlb.itlb_flush, summed over CPUs
    "dtlb_thread_flush",             # tlb_flush.dtlb_thread
    "stlb_any_flush",                # tlb_flush.stlb_any
    "dtlb_load_misses",              # dTLB-load-misses
    "dtlb_store_misses",             # dTLB-store-misses
    "itlb_load_misses",              # iTLB-load-misses
    "tlb_shootdowns",                # "TLB shootdowns" in /proc/interrupts, summed over CPUs
    "nr_tlb_remote_flush",           # /proc/vmstat: flush requests that had remote targets
    "nr_tlb_remote_flush_received",  # /proc/vmstat: remote flushes received
    "pgmigrate_success",             # pages migrated (promotions + demotions)
    "pgdemote_kswapd",               # pages demoted by kswapd
    "numa_pages_migrated",           # pages promoted by NUMA hinting faults
    "runtime_s",                     # the workload's reported runtime
    "throughput_per_s",              # units of work per second (XSBench lookups/s)
)

# Counters beyond the contract: why a policy wins or loses, and what it costs.
EXTRA_METRICS = (
    "numa_hint_faults",
    "write_faults",                  # do_wp_page on a read-only mapping
    "deferred_flush_alloc",          # deferred flushes by trigger ...
    "deferred_flush_write_fault",
    "deferred_flush_memory_failure",
    "deferred_flush_piggyback",      # a normal flush covered the pending CPUs
    "deferred_flush_reclaim",        # migrc_hold: kswapd needed the held memory
    "deferred_give_up",              # on_flushing/migrc_on_flushing: deferral abandoned
    "pending_pages_mean",
    "pending_pages_peak",
    "held_mib_mean",                 # migrc_hold: source folios kept until the flush
    "held_mib_peak",
    "stale_window_us_mean",          # time from unmap to flush of deferred folios
    "stale_window_us_p50",
    "stale_window_us_p99",
    "alloc_flush_ns_per_s",          # flush time paid on the allocation path
    "work_s",                        # runtime split, in CPU-seconds per thread
    "memory_stall_s",
    "tlb_walk_s",
    "interrupt_s",
    "initiator_wait_s",
    "copy_s",
    "tlb_full_flushes",              # full TLB flushes summed over CPUs (remote targets + initiators)
    "neighbour_throughput_per_s",    # units/s of a co-running neighbour process (0 without one)
    "stale_read_violations",         # safety checker (reference engine); 0 for safe policies
)

ALL_METRICS = CONTRACT_METRICS + EXTRA_METRICS
