"""Co-running processes: one kswapd and one free pool, separate CPUs and mm_cpumasks.

kswapd's LRU batches draw folios from every process in proportion to what each
has to give back, so a batch of `lru_batch_pages` folios holds a folio of
process i with probability 1 - (1 - w_i)^batch, and its flush reaches that
process's running CPUs. A batch defers only if every folio in it is read-only,
whichever process it belongs to. The flush process is simulated once for the
mixture; each process then pays for the flushes that reached its own CPUs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .steady import Flows, steady_flows

PROCS = ("workload", "neighbour")


def process_flows(L: dict[str, np.ndarray]) -> dict[str, Flows]:
    """Steady flows of each process; a disabled neighbour moves no pages."""
    flows = {"workload": steady_flows(L, "workload")}
    on = L["neighbour.enabled"].astype(bool)
    if on.any():
        fn = steady_flows(L, "neighbour")
        zero = lambda x: np.where(on, x, 0.0)  # noqa: E731
        flows["neighbour"] = dataclasses.replace(
            fn, promote_per_s=zero(fn.promote_per_s), hint_faults_per_s=zero(fn.hint_faults_per_s),
            alloc_per_s=zero(fn.alloc_per_s), reclaim_per_s=zero(fn.reclaim_per_s),
            refault_per_s=zero(fn.refault_per_s),
            write_faults_per_s=zero(fn.write_faults_per_s), run_threads=zero(fn.run_threads),
            mask_cpus=zero(fn.mask_cpus), migrating=fn.migrating & on)
    return flows


def shares(L: dict[str, np.ndarray], flows: dict[str, Flows]) -> dict[str, dict[str, np.ndarray]]:
    """Per process: `presence` in a kswapd batch, its share of flush targets (`targets`),
    of allocations (`alloc`), promotions (`promote`) and reclaimed folios (`reclaim`)."""
    lru = L["reclaim.lru_batch_pages"]
    mixed = L["neighbour.same_memcg"].astype(bool)
    total = sum(f.reclaim_per_s for f in flows.values())
    out = {}
    for proc, f in flows.items():
        w = np.where(total > 0, f.reclaim_per_s / np.maximum(total, 1e-12), 0.0)
        # one lruvec: a batch holds a folio of i unless all `lru` draws miss it;
        # separate lruvecs: a batch is all i's, as often as i's share of folios
        out[proc] = {"reclaim": w, "presence": np.where(mixed, 1.0 - (1.0 - w) ** lru, w)}
    for proc, f in flows.items():
        for key, attr in (("alloc", "alloc_per_s"), ("promote", "promote_per_s")):
            tot = sum(getattr(g, attr) for g in flows.values())
            out[proc][key] = np.where(tot > 0, getattr(f, attr) / np.maximum(tot, 1e-12),
                                      1.0 if proc == "workload" else 0.0)
    return out


def coverage(L: dict[str, np.ndarray], flows: dict[str, Flows], defers: np.ndarray) -> dict[str, dict]:
    """P(a flush's cpumask covers process i's CPUs), for kswapd's batch flushes and for
    deferred flushes paid by a thread.

    In one cgroup a batch covers every process with a folio in it. In separate
    cgroups a batch belongs to one process: under a deferring policy kswapd
    flushes its batches that are not all read-only, and the deferred flushes
    cover the read-only ones.
    """
    sh = shares(L, flows)
    mixed = L["neighbour.same_memcg"].astype(bool)
    lru = L["reclaim.lru_batch_pages"]
    q = {p: flows[p].read_only_p ** lru for p in flows}
    imm = {p: sh[p]["reclaim"] * np.where(defers, 1 - q[p], 1.0) for p in flows}
    dfr = {p: sh[p]["reclaim"] * q[p] for p in flows}
    norm = lambda d, p: np.where(sum(d.values()) > 0, d[p] / np.maximum(sum(d.values()), 1e-12),  # noqa: E731
                                 sh[p]["reclaim"])
    single = len(flows) == 1
    return {p: {"kswapd": 1.0 if single else np.where(mixed, sh[p]["presence"], norm(imm, p)),
                "thread": 1.0 if single else np.where(mixed, sh[p]["presence"], norm(dfr, p))} for p in flows}


def combined(L: dict[str, np.ndarray], flows: dict[str, Flows]) -> tuple[Flows, dict[str, np.ndarray]]:
    """The flows kswapd and the free pool see, and lane arrays whose utilisation is the mix's."""
    fw = flows["workload"]
    if len(flows) == 1:
        return fw, L
    sh = shares(L, flows)
    fsum = lambda attr: sum(getattr(f, attr) for f in flows.values())  # noqa: E731
    reclaim = fsum("reclaim_per_s")
    # P(a batch is all read-only) must be right: mixed batches draw each folio from the
    # mixture; single-process batches are all-read-only with each process's own odds.
    lru = L["reclaim.lru_batch_pages"]
    mixed = L["neighbour.same_memcg"].astype(bool)
    read_only_p = np.where(mixed, sum(sh[p]["reclaim"] * flows[p].read_only_p for p in flows),
                           sum(sh[p]["reclaim"] * flows[p].read_only_p ** lru for p in flows) ** (1.0 / lru))
    # The LRU lists, in one cgroup shared: each list's read-only odds weighted by what joins
    # it. Single-process batches (separate cgroups) keep to the effective odds above.
    cold_in = {p: flows[p].reclaim_per_s * flows[p].cold_list_share for p in flows}
    hot_in = {p: flows[p].reclaim_per_s - cold_in[p] for p in flows}
    wavg = lambda w, attr: (sum(w[p] * getattr(flows[p], attr) for p in flows)  # noqa: E731
                            / np.maximum(sum(w.values()), 1e-12))
    cold_share = np.where(mixed, sum(cold_in.values()) / np.maximum(reclaim, 1e-12), 0.0)
    ro_cold = np.where(mixed & (sum(cold_in.values()) > 0), wavg(cold_in, "read_only_cold_p"), read_only_p)
    ro_hot = np.where(mixed & (sum(hot_in.values()) > 0), wavg(hot_in, "read_only_hot_p"), read_only_p)
    prom = {p: flows[p].promote_per_s for p in flows}
    cold_prom = np.where(mixed, wavg(prom, "cold_promote_share"), 0.0)
    # P(a kswapd step is a THP): THP and LRU-batch steps of each process, weighted by its folios
    thp = sum(sh[p]["reclaim"] * L[f"{p}.large_folio_fraction"] for p in flows) / 512.0
    small = sum(sh[p]["reclaim"] * (1 - L[f"{p}.large_folio_fraction"]) for p in flows) / L["reclaim.lru_batch_pages"]
    mask = sum(sh[p]["presence"] * flows[p].run_threads for p in flows)
    exposed = sum(sh[p]["presence"] * flows[p].run_threads * L[f"{p}.cpu_utilization"] for p in flows)
    util = np.where(mask > 0, exposed / np.maximum(mask, 1e-12), L["workload.cpu_utilization"])
    on = L["neighbour.enabled"].astype(bool)
    f = dataclasses.replace(
        fw,
        promote_per_s=fsum("promote_per_s"), hint_faults_per_s=fsum("hint_faults_per_s"),
        alloc_per_s=fsum("alloc_per_s"), reclaim_per_s=reclaim, refault_per_s=fsum("refault_per_s"),
        refault_lam_per_s=np.where(fsum("refault_per_s") > 0, sum(f.refault_per_s * f.refault_lam_per_s
                                                                  for f in flows.values())
                                   / np.maximum(fsum("refault_per_s"), 1e-12), fw.refault_lam_per_s),
        read_only_p=np.where(on & (reclaim > 0), read_only_p, fw.read_only_p),
        cold_list_share=np.where(on & (reclaim > 0), cold_share, fw.cold_list_share),
        cold_promote_share=np.where(on & (reclaim > 0), cold_prom, fw.cold_promote_share),
        read_only_cold_p=np.where(on & (reclaim > 0), ro_cold, fw.read_only_cold_p),
        read_only_hot_p=np.where(on & (reclaim > 0), ro_hot, fw.read_only_hot_p),
        write_faults_per_s=fsum("write_faults_per_s"),
        thp_step_p=np.where(on & (thp + small > 0), thp / np.maximum(thp + small, 1e-12), fw.thp_step_p),
        mask_cpus=np.where(on & (reclaim > 0), mask, fw.mask_cpus),
        migrating=fw.migrating | flows["neighbour"].migrating)
    return f, {**L, "workload.cpu_utilization": np.where(on, util, L["workload.cpu_utilization"])}
