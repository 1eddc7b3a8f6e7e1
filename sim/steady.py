"""Steady-state flows of a tiered-memory process, vectorised over lanes.

Given the workload's access rates and the NUMA-balancing scanner, this works out
where pages live, how fast they are promoted and demoted, how likely a demoted
folio is to be mapped read-only, and what one unit of work costs when no flush
gets in the way. The flush process itself is simulated in `flush_cycle`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernel import PAGE_BYTES, PAGES_PER_MIB, THP_PAGES, pcp_sizes_pages, watermarks_pages


@dataclass
class Flows:
    """Per-lane arrays; rates are per second, sizes in pages, times in ns unless named."""
    fast_pages: np.ndarray
    wmark_min: np.ndarray
    wmark_low: np.ndarray
    wmark_high: np.ndarray
    wmark_promo: np.ndarray
    pcp_batch: np.ndarray
    pcp_high: np.ndarray
    mask_cpus: np.ndarray          # CPUs in mm_cpumask
    run_threads: np.ndarray        # threads running at once
    promote_per_s: np.ndarray      # numa_pages_migrated rate
    hint_faults_per_s: np.ndarray
    alloc_per_s: np.ndarray        # allocations from the fast node's free pool
    refault_per_s: np.ndarray      # of which evicted workload pages touched again
    refault_lam_per_s: np.ndarray  # touch rate of an evicted workload page
    reclaim_per_s: np.ndarray      # kswapd's outflow: demotions + evictions
    evict_share: np.ndarray
    read_only_p: np.ndarray        # P(a reclaimed small folio has only clean read-only PTEs)
    cold_list_share: np.ndarray    # share of allocations joining the inactive LRU list (reclaimed first)
    cold_promote_share: np.ndarray  # share of promotions that do (the cold set's)
    read_only_cold_p: np.ndarray   # read_only_p of a folio reclaimed from the inactive list
    read_only_hot_p: np.ndarray    # ... and from the active list
    write_faults_per_s: np.ndarray
    thp_step_p: np.ndarray         # P(a kswapd step reclaims a THP rather than an LRU batch)
    unit_ns: np.ndarray            # one unit of work with no flush overheads
    unit_walk_ns: np.ndarray       # of which page walks
    unit_stall_ns: np.ndarray      # of which data stalls
    load_misses_per_unit: np.ndarray
    store_misses_per_unit: np.ndarray
    walk_ns: np.ndarray            # one page walk (2D in a guest)
    refill_load: np.ndarray        # translations refilled per CPU flush
    refill_store: np.ndarray
    refill_code: np.ndarray
    copy_page_ns: np.ndarray
    migrating: np.ndarray          # bool: the tiering daemons move pages at all
    scan_pages_per_s: np.ndarray   # the NUMA scanner's pace through the address space
    threshold_s: np.ndarray        # hint-fault latency under which a folio is promoted
    lam_hot_per_s: np.ndarray      # first-touch rate of a hot-set page
    lam_cold_per_s: np.ndarray     # ... and of a cold-set page


def _miss_ratio(translations, entries):
    return np.where(translations > 0, np.clip(1.0 - entries / np.maximum(translations, 1e-9), 0.0, 1.0), 0.0)


def fast_shares(L: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Shares of the fast node's data capacity: the workload's and a neighbour's.

    [assumption] Processes hold the fast node in proportion to their footprints
    (one global LRU, comparable access intensity); without a neighbour, all of it.
    """
    on = L["neighbour.enabled"].astype(bool)
    w, n = L["workload.footprint_mib"], L["neighbour.footprint_mib"]
    share_w = np.where(on, w / (w + n), 1.0)
    return share_w, np.where(on, 1.0 - share_w, 0.0)


def steady_flows(L: dict[str, np.ndarray], proc: str = "workload", cap_share: np.ndarray | None = None) -> Flows:
    """L maps "group.key" to a per-lane array (see `engine.lane_arrays`).

    `proc` names the process ("workload" or "neighbour"); `cap_share` is its
    share of the fast node's data capacity (default: `fast_shares`).
    """
    if cap_share is None:
        cap_share = fast_shares(L)[0 if proc == "workload" else 1]
    fast_pages = L["memory.fast_capacity_mib"] * PAGES_PER_MIB
    total_pages = fast_pages + L["memory.slow_capacity_mib"] * PAGES_PER_MIB
    wmin, wlow, whigh, wpromo = watermarks_pages(fast_pages, total_pages, L["reclaim.watermark_scale_factor"])
    num_cpus = L["machine.num_cpus"]
    batch, high = pcp_sizes_pages(fast_pages, wlow, num_cpus)
    run_threads = np.minimum(L[f"{proc}.num_threads"], num_cpus)

    n = L[f"{proc}.footprint_mib"] * PAGES_PER_MIB
    f_large = L[f"{proc}.large_folio_fraction"]
    hot_frac = L[f"{proc}.hot_set_fraction"]
    n_hot, n_cold = n * hot_frac, n * (1.0 - hot_frac)
    a_hot = np.where(n_cold <= 0, 1.0, np.where(n_hot <= 0, 0.0, L[f"{proc}.hot_access_fraction"]))

    # Data capacity of the fast node: free memory hovers between high and promo.
    cap = np.maximum(fast_pages - (whigh + wpromo) / 2.0, 0.0) * cap_share
    migrating = L["reclaim.demotion_enabled"].astype(bool) & (
        (n > cap) | (L["reclaim.extra_alloc_mib_per_s"] > 0))

    # Page tables stay where the data was first touched: set-up filled the fast node,
    # the rest of the footprint (and its page tables) fell back to the slow node, and
    # NUMA balancing migrates data, not page tables. A walk's leaf PTE is then fetched
    # from the slow node that often, at the slow node's extra latency.
    pt_slow = np.where(n > 0, np.clip(1.0 - cap / np.maximum(n, 1e-9), 0.0, 1.0), 0.0)
    leaf_extra_ns = pt_slow * np.maximum(L["memory.slow_latency_ns"] - L["memory.fast_latency_ns"], 0.0)
    walk_ns = (L["machine.page_walk_ns"] + leaf_extra_ns) * np.where(
        L["machine.is_guest"].astype(bool), L["machine.walk_2d_factor"], 1.0)
    rp = L[f"{proc}.random_pages_per_unit"]
    mlp = L[f"{proc}.memory_parallelism"]
    fast_ns, slow_ns = L["memory.fast_latency_ns"], L["memory.slow_latency_ns"]

    # The scanner walks scan_size of address space per period; in tiering mode it
    # only makes slow-node PTEs PROT_NONE. A page is revisited every `cycle_s`.
    scan_pages_per_s = L["reclaim.numa_scan_size_mib"] * PAGES_PER_MIB / (L["reclaim.numa_scan_period_ms"] / 1e3)
    cycle_s = n / scan_pages_per_s
    threshold_s = L["reclaim.hot_threshold_ms"] / 1e3

    # Residency: the hot set is kept on the fast node, except what drift has made
    # hot since the scanner last passed; cold pages fill what is left.
    drift = L[f"{proc}.hot_drift_per_s"]
    lag = drift * cycle_s / 2.0
    fits_hot = n_hot <= cap
    s_hot = np.where(fits_hot, 1.0 / (1.0 + lag), cap / np.maximum(n_hot, 1e-9))
    s_cold = np.where(n_cold > 0, np.clip((cap - s_hot * n_hot) / np.maximum(n_cold, 1e-9), 0.0, 1.0), 1.0)
    s_hot = np.where(n <= cap, 1.0, s_hot)
    s_cold = np.where(n <= cap, 1.0, s_cold)

    # Per-page access rate, at the throughput the workload would reach with no overhead.
    miss_hot = _miss_ratio(n_hot * (1 - f_large) + n_hot * f_large / THP_PAGES, L["machine.stlb_entries"])
    left = np.maximum(L["machine.stlb_entries"] - (n_hot * (1 - f_large) + n_hot * f_large / THP_PAGES), 0)
    miss_cold = _miss_ratio(n_cold * (1 - f_large) + n_cold * f_large / THP_PAGES, left)
    miss = a_hot * miss_hot + (1 - a_hot) * miss_cold
    lat = a_hot * (s_hot * fast_ns + (1 - s_hot) * slow_ns) + (1 - a_hot) * (s_cold * fast_ns + (1 - s_cold) * slow_ns)
    unit_walk_ns = rp * miss * walk_ns / mlp
    unit_stall_ns = rp * lat / mlp
    unit_ns = L[f"{proc}.compute_ns_per_unit"] + unit_walk_ns + unit_stall_ns
    units_per_s = run_threads * L[f"{proc}.cpu_utilization"] * 1e9 / unit_ns
    touches = units_per_s * rp
    lam_hot = np.where(n_hot > 0, touches * a_hot / np.maximum(n_hot, 1e-9), 0.0)
    lam_cold = np.where(n_cold > 0, touches * (1 - a_hot) / np.maximum(n_cold, 1e-9), 0.0)

    def promotions(n_c, s_c, lam, churned, swapped_c):
        """Promotions and hint faults of one class.

        The class kswapd churns leaves the fast node oldest-promoted first, so
        its fast pages are the ones the scanner passed most recently: at the
        scanner's head, one cycle after its last visit, a page is still fast
        only if its residency (s_c * cycle / h) outlasts the cycle. That makes
        the slow share there 1 - max(0, s_c - h) instead of 1 - s_c. A class
        the LRU protects (a hot set that fits) is slow only where drift put it.
        Evicted pages waiting in swap (`swapped_c` of the class) are on neither
        node: the scanner passes their non-present PTEs without a hint fault.

        A THP is one folio, touched THP_PAGES times as often as a small page:
        its one hint fault promotes all of its pages.
        """
        def touched_within(span_s):   # per page: P(its folio is touched within span_s)
            return ((1 - f_large) * (1.0 - np.exp(-lam * span_s))
                    + f_large * (1.0 - np.exp(-lam * THP_PAGES * span_s)))

        hot_p = touched_within(threshold_s)
        slow_at_head = np.where(churned, 1.0 - np.maximum(s_c - hot_p, 0.0), 1.0 - s_c)
        slow_at_head = np.maximum(slow_at_head - swapped_c, 0.0)
        scanned_slow = scan_pages_per_s * (n_c / n) * slow_at_head
        faults = scanned_slow * ((1 - f_large) * (1.0 - np.exp(-lam * cycle_s))
                                 + f_large / THP_PAGES * (1.0 - np.exp(-lam * THP_PAGES * cycle_s)))
        return scanned_slow * hot_p, faults

    limit = L["reclaim.promote_rate_limit_mib_per_s"] * PAGES_PER_MIB
    evict = np.minimum(L["reclaim.evict_fraction"], 0.99)
    # Each promoted page stands in for one reclaimed, evict/(1 - evict) of them evicted to
    # swap, where a page waits 1/lam until it is touched again: the swapped share of a
    # class follows from its promotions, and takes them down a little (found together;
    # a second pass leaves an error of order that share squared, under 1e-5 at 90% evicted).
    swap_per_promoted = np.where(L["reclaim.demotion_enabled"].astype(bool), evict / (1.0 - evict), 0.0)

    def swapped_share(prom_c, n_c, lam):
        return np.where(n_c * lam > 0, prom_c * swap_per_promoted / np.maximum(n_c * lam, 1e-12), 0.0)

    swapped_hot, swapped_cold = np.zeros_like(n), np.zeros_like(n)
    for last in (False, True):
        prom_hot, faults_hot = promotions(n_hot, s_hot, lam_hot, ~fits_hot, swapped_hot)
        prom_cold, faults_cold = promotions(n_cold, s_cold, lam_cold, fits_hot, swapped_cold)
        prom = prom_hot + prom_cold
        scale = np.where(prom > limit, limit / np.maximum(prom, 1e-9), 1.0)
        prom_hot, prom_cold, prom = prom_hot * scale, prom_cold * scale, prom * scale
        if not last:
            swapped_hot = swapped_share(prom_hot, n_hot, lam_hot)
            swapped_cold = swapped_share(prom_cold, n_cold, lam_cold)
    prom = np.where(migrating, prom, 0.0)
    faults = np.where(migrating, faults_hot + faults_cold, 0.0)

    # Reclaim pressure and measured rates describe the machine; they belong to the workload, not a neighbour.
    is_workload = 1.0 if proc == "workload" else 0.0
    extra = np.where(migrating, L["reclaim.extra_alloc_mib_per_s"] * PAGES_PER_MIB * is_workload, 0.0)

    # What-if mode: the user's /proc/vmstat rates replace the scanner model. Pages
    # demoted or otherwise migrated beyond what promotion brings in must have been
    # allocated on the fast node, so they count as reclaim pressure.
    measured = L["reclaim.use_measured_rates"].astype(bool) & (proc == "workload")
    m_prom = L["reclaim.measured_promote_pages_per_s"]
    m_out = L["reclaim.measured_demote_pages_per_s"] + L["reclaim.measured_other_migrate_pages_per_s"]
    migrating = np.where(measured, (m_prom + m_out) > 0, migrating)
    share_hot = np.where(prom > 0, prom_hot / np.maximum(prom, 1e-12), a_hot)
    prom_hot = np.where(measured, m_prom * share_hot, prom_hot)
    prom_cold = np.where(measured, m_prom * (1 - share_hot), prom_cold)
    prom = np.where(measured, m_prom, prom)
    faults = np.where(measured, m_prom, faults)
    extra = np.where(measured, np.maximum(m_out - m_prom, 0.0), extra)
    # Evicted workload pages come back as new allocations when next touched; other
    # allocations (`extra`) are a rate of their own, their refaults included.
    refault = prom * evict / (1.0 - evict)
    reclaim = prom + extra + refault
    refault_lam = np.where(prom > 0, (prom_hot * lam_hot + prom_cold * lam_cold) / np.maximum(prom, 1e-12), 0.0)
    alloc = reclaim

    # A demoted folio keeps the read-only mapping its promotion gave it unless it
    # was written while on the fast node; fresh allocations are written at once.
    ro = L[f"{proc}.read_only_fraction"]
    wf = L[f"{proc}.write_fraction"]
    resid_s = cap / np.maximum(reclaim, 1e-9)
    ro_hot = ro + (1 - ro) * np.exp(-lam_hot * wf * resid_s)
    ro_cold = ro + (1 - ro) * np.exp(-lam_cold * wf * resid_s)
    # Modelled pressure is fresh, written memory; measured surplus demotions are
    # existing data, read-only in the footprint's proportion.
    extra_ro = np.where(measured, ro, 0.0)
    read_only_p = np.where(reclaim > 0, (prom_hot * ro_hot + prom_cold * ro_cold + extra * extra_ro + refault * ro)
                           / np.maximum(reclaim, 1e-9), 0.0)
    # kswapd's two LRU lists: the cold set's folios and fresh allocations join the
    # inactive list, which reclaim empties first; the hot set's join the active one.
    # Refaults split like the promotions they stand in for; measured surplus
    # demotions are existing data, spread over both lists like the rest.
    cold_prom = np.where(prom > 0, prom_cold / np.maximum(prom, 1e-12), 0.0)
    refault_cold = refault * cold_prom
    extra_cold = np.where(measured, 0.0, extra)
    cold_in = prom_cold + extra_cold + refault_cold
    hot_in = reclaim - cold_in
    read_only_cold_p = np.where(cold_in > 0, (prom_cold * ro_cold + refault_cold * ro)
                                / np.maximum(cold_in, 1e-12), read_only_p)
    read_only_hot_p = np.where(hot_in > 0, (prom_hot * ro_hot + (extra - extra_cold) * extra_ro
                                            + (refault - refault_cold) * ro) / np.maximum(hot_in, 1e-12), read_only_p)
    write_faults = np.where(wf > 0, prom * (1 - ro), 0.0)

    # kswapd steps: an LRU batch of small folios, or one THP (flushed on its own).
    thp_steps = f_large / THP_PAGES
    small_steps = (1 - f_large) / L["reclaim.lru_batch_pages"]
    thp_step_p = np.where(thp_steps + small_steps > 0, thp_steps / np.maximum(thp_steps + small_steps, 1e-12), 0.0)

    # Translations a CPU must walk for again after a full flush: its hot sets, as
    # far as its TLBs could hold them.
    dtlb_cap = L["machine.dtlb_entries"] + L["machine.stlb_entries"]
    refill_load = np.minimum(L[f"{proc}.load_hot_pages"], dtlb_cap)
    refill_store = np.minimum(L[f"{proc}.store_hot_pages"], dtlb_cap)
    refill_code = np.minimum(L[f"{proc}.code_hot_pages"], L["machine.itlb_entries"] + L["machine.stlb_entries"])

    writable_touch = (1 - ro) * wf
    store_misses = L[f"{proc}.store_misses_per_unit"] + rp * writable_touch * miss
    copy_page_ns = PAGE_BYTES / L["machine.copy_gbps"]

    return Flows(fast_pages=fast_pages, wmark_min=wmin, wmark_low=wlow, wmark_high=whigh, wmark_promo=wpromo,
                 pcp_batch=batch, pcp_high=high, mask_cpus=run_threads.astype(float), run_threads=run_threads.astype(float),
                 promote_per_s=prom, hint_faults_per_s=faults, alloc_per_s=alloc, reclaim_per_s=reclaim,
                 refault_per_s=refault, refault_lam_per_s=refault_lam,
                 evict_share=np.where(reclaim > 0, evict, 0.0),   # kswapd evicts this share of all it reclaims
                 read_only_p=read_only_p,
                 cold_list_share=np.where(reclaim > 0, cold_in / np.maximum(reclaim, 1e-12), 0.0),
                 cold_promote_share=cold_prom, read_only_cold_p=read_only_cold_p, read_only_hot_p=read_only_hot_p,
                 write_faults_per_s=write_faults, thp_step_p=thp_step_p,
                 unit_ns=unit_ns, unit_walk_ns=unit_walk_ns, unit_stall_ns=unit_stall_ns,
                 load_misses_per_unit=rp * miss, store_misses_per_unit=store_misses,
                 walk_ns=walk_ns, refill_load=refill_load, refill_store=refill_store, refill_code=refill_code,
                 copy_page_ns=copy_page_ns, migrating=migrating, scan_pages_per_s=scan_pages_per_s,
                 threshold_s=threshold_s, lam_hot_per_s=lam_hot, lam_cold_per_s=lam_cold)
