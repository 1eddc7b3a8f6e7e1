"""The flush process's data layout: policy and trigger codes, random streams, and the
columns of the kernel's input and output matrices, with the tally they become.

Kept apart from the numba kernel (flush_cycle.py) so each can be read on its own;
the kernel compiles these module-level integers in as constants.
"""

from __future__ import annotations

import numpy as np

from .scan_pattern import PROFILE_BINS, promotion_profile
from .steady import Flows

POLICY_CODES = {"no_batch": 0, "batched": 1, "migrc": 2, "migrc_hold": 3, "luf": 4, "no_flush": 5}
TRIGGERS = ("alloc", "write_fault", "memory_failure", "piggyback", "reclaim", "give_up")
STALE_BINS_US = np.logspace(0, 7, 57)  # 1 us .. 10 s, 8 bins per decade
# deferred batches pending at once, each with its unmapping time; beyond, they merge (flush_cycle)
_MAX_PENDING_BATCHES = 1024

# random streams (_S_START took the slot of a give-up draw, which P_FLUSH_END replaced, so
# that every other stream keeps its id, hence its numbers; _S_STEP_ALLOCS, the one-CPU
# thread's allocations in a step or a quiet phase, took the slot of the fluid quiet phase's)
(_S_THP, _S_EVICT, _S_RO, _S_START, _S_PCP, _S_TRIG, _S_TRIG2, _S_TRIG3, _S_TRIG4, _S_DIRTY, _S_LAST,
 _S_RACE, _S_COLD, _S_STEP_ALLOCS, _S_SPREAD, _S_CLOCK) = range(16)
NUM_STREAMS = 16

# kernel inputs: columns of the per-lane parameter matrix
_IN = ("wmark_min", "wmark_high", "wmark_promo", "pcp_batch", "pcp_high", "migrating", "alloc", "promote",
       "write_rate", "mf_rate", "lru", "migrate_ns", "copy_page_ns", "thp_step_p", "evict_share", "ro_cold",
       "ro_hot", "cold_share", "cold_promote_share", "num_cpus", "targets", "p_any", "flush_wait", "window",
       "warmup", "refault", "refault_lam", "refault_share", "thp_alloc") + tuple(
           f"wave{k}" for k in range(PROFILE_BINS))
(I_WMIN, I_WHIGH, I_WPROMO, I_PCP_BATCH, I_PCP_HIGH, I_MIGRATING, I_ALLOC, I_PROMOTE, I_WRITE, I_MF, I_LRU,
 I_MIGRATE_NS, I_COPY_NS, I_THP_P, I_EVICT, I_RO_COLD, I_RO_HOT, I_COLD_SHARE, I_COLD_PROMOTE, I_NUM_CPUS,
 I_TARGETS, I_P_ANY, I_FLUSH_WAIT, I_WINDOW, I_WARMUP, I_REFAULT, I_REFAULT_LAM, I_REFAULT_SHARE,
 I_THP_ALLOC) = range(len(_IN) - PROFILE_BINS)
# the small promotions' rate through the gap between two THP hint faults (scan_pattern)
I_WAVE = I_THP_ALLOC + 1

# kernel outputs: columns of the per-lane tally matrix
_OUT = ("flushes", "targets", "remote_flushes", "kswapd_ns", "kswapd_flush_wait_ns", "thread_wait_ns",
        "alloc_wait_ns", "demoted", "evicted", "promoted", "pending_page_s", "pending_peak", "held_page_s",
        "held_peak", "stale_pages", "stale_page_s", "refaulted") + tuple("trig_" + k for k in TRIGGERS)
(O_FLUSHES, O_TARGETS, O_REMOTE, O_KSWAPD_NS, O_KSWAPD_WAIT, O_THREAD_WAIT, O_ALLOC_WAIT, O_DEMOTED, O_EVICTED,
 O_PROMOTED, O_PEND_S, O_PEND_PEAK, O_HELD_S, O_HELD_PEAK, O_STALE_PAGES, O_STALE_S, O_REFAULTED, O_T_ALLOC,
 O_T_WRITE, O_T_MF, O_T_PIGGY, O_T_RECLAIM, O_T_GIVEUP) = range(len(_OUT))

# pending-flush state of one lane, as a small vector the helpers update in place
# P_FLUSH_END: when the last deferred flush a thread paid is done (s); P_AHEAD: clean pages on
# kswapd's pcp list older than its oldest tagged one (they spill first); P_SPREAD: tagged pages
# that refills took off the buddy head while nothing was pending, on the refilling CPUs' lists
# P_KCPU: the CPU kswapd runs on (or ran on last); P_K_MIXED: pages at the head of its list
# among which its tagged pages (P_PCP) lie, once kswapd has left it; P_OLD_CPU, P_OLD_MIXED: the
# same for the earlier kswapd CPU's list holding P_OLD; P_OLD2, P_OLD2_CPU, P_OLD2_MIXED: for
# the lists of the kswapd CPUs before it (taken as one)
# With more than one CPU, P_SPREAD's tagged pages lie on list P_SP_CPU, which pops the first of
# them when the lists' clock reaches P_SP_AT and the next ones every P_SP_GAP; P_SP_RATE: the
# rate their pops come at now (negative with one CPU, where they are a pool: spread_pop_rate);
# P_BUDDY_GAP: pages between P_BUDDY's tagged pages on the buddy list, the first P_COVER down
(P_PCP, P_OLD, P_BUDDY, P_COVER, P_HELD, P_FREE, P_LEN, P_FLUSH_END, P_AHEAD, P_SPREAD, P_KCPU, P_K_MIXED, P_OLD_CPU,
 P_OLD_MIXED, P_SP_CPU, P_SP_AT, P_SP_GAP, P_SP_RATE, P_BUDDY_GAP, P_OLD2, P_OLD2_CPU, P_OLD2_MIXED) = range(22)
P_SIZE = P_OLD2_MIXED + 1

# a walk of the lists' clocks records where the tagged pages on the buddy head went (walk_start)
(W_COVER, W_TAGS, W_GAP, W_SP_AT, W_T_SP, W_HIT_J, W_HIT_CLOCK, W_HIT_CLEAN, W_HIT_DUE, W_HIT_TAGS,
 W_HIT_GAP) = range(11)
WALK_SIZE = W_HIT_GAP + 1

# kinds of thread-triggered flush
_K_NONE, _K_ALLOC, _K_WRITE, _K_MF = range(4)


class FlushTally:
    """Accumulators per lane, for events in [0, window)."""

    def __init__(self, n: int):
        z = lambda: np.zeros(n)  # noqa: E731
        self.flushes, self.targets, self.remote_flushes = z(), z(), z()
        self.kswapd_ns, self.kswapd_flush_wait_ns, self.thread_wait_ns, self.alloc_wait_ns = z(), z(), z(), z()
        self.demoted, self.evicted, self.promoted, self.refaulted = z(), z(), z(), z()
        self.triggers = {k: z() for k in TRIGGERS}
        self.pending_page_s, self.pending_peak, self.held_page_s, self.held_peak = z(), z(), z(), z()
        self.stale_pages, self.stale_page_s = z(), z()
        self.stale_hist = np.zeros((n, len(STALE_BINS_US) + 1))

    @classmethod
    def from_arrays(cls, out: np.ndarray, hist: np.ndarray) -> "FlushTally":
        tally = cls(0)
        for j, name in enumerate(_OUT):
            if name.startswith("trig_"):
                tally.triggers[name[5:]] = out[:, j]
            else:
                setattr(tally, name, out[:, j])
        tally.stale_hist = hist
        return tally


def _flush_costs(f: Flows, L):
    """Expected remote targets, P(any remote target), and initiator wait (ns) per flush."""
    others = np.maximum(f.mask_cpus - 1, 0)
    util = L["workload.cpu_utilization"]
    targets = others * util
    p_any = 1.0 - (1.0 - util) ** others
    wait = L["machine.ipi_send_base_ns"] * p_any + L["machine.ipi_send_per_target_ns"] * np.maximum(targets - p_any, 0)
    broadcast = L["machine.broadcast_flush"].astype(bool)
    wait = np.where(broadcast, L["machine.broadcast_flush_ns"], wait)
    return targets, p_any, wait


def thp_alloc_per_s(f: Flows, L):
    """THP pages promoted per second: what kswapd's THP steps demote (thp_step_p's page
    share of reclaim) comes in as THP promotions, 512-page allocations straight from buddy."""
    lru = L["reclaim.lru_batch_pages"]
    thp_share = 512.0 * f.thp_step_p / np.maximum(512.0 * f.thp_step_p + lru * (1.0 - f.thp_step_p), 1e-12)
    return np.where(f.migrating, np.minimum(thp_share * f.reclaim_per_s, f.promote_per_s), 0.0)


def promotion_wave(f: Flows, L, thp_alloc) -> np.ndarray:
    """The small promotions' rate in the gap between two THP hint faults, relative to its
    mean (scan_pattern): flat where there are no THPs, or none but THPs, and with a
    neighbour, whose small folios the workload's THPs do not space out."""
    fl = L["workload.large_folio_fraction"]
    n = len(f.wmark_min)
    small_pages = np.where((fl > 0) & (fl < 1), (1.0 - fl) / np.maximum(fl, 1e-12) * 512.0, 0.0)
    small_pages = np.where(L["neighbour.enabled"].astype(bool), 0.0, small_pages)
    gap = np.where(thp_alloc > 0, 512.0 / np.maximum(thp_alloc, 1e-300), np.inf)
    cold = f.cold_promote_share
    return promotion_profile(np.broadcast_to(small_pages, (n,)), f.scan_pages_per_s, gap,
                             [f.lam_hot_per_s, f.lam_cold_per_s], [1.0 - cold, cold], f.threshold_s)


def kernel_inputs(f: Flows, L, window_s, warmup_s) -> np.ndarray:
    """The per-lane parameter matrix the kernel reads, columns as in `_IN`."""
    targets, p_any, flush_wait = _flush_costs(f, L)
    thp = thp_alloc_per_s(f, L)
    cols = dict(wmark_min=f.wmark_min, wmark_high=f.wmark_high, wmark_promo=f.wmark_promo, pcp_batch=f.pcp_batch,
                pcp_high=f.pcp_high, migrating=f.migrating.astype(float),
                alloc=np.where(f.migrating, f.alloc_per_s, 0.0), promote=np.where(f.migrating, f.promote_per_s, 0.0),
                write_rate=f.write_faults_per_s, mf_rate=L["memory.memory_failure_per_s"],
                lru=L["reclaim.lru_batch_pages"], migrate_ns=L["machine.migrate_folio_ns"],
                copy_page_ns=f.copy_page_ns, thp_step_p=f.thp_step_p, evict_share=f.evict_share,
                ro_cold=f.read_only_cold_p, ro_hot=f.read_only_hot_p, cold_share=f.cold_list_share,
                cold_promote_share=f.cold_promote_share, num_cpus=L["machine.num_cpus"], targets=targets, p_any=p_any,
                flush_wait=flush_wait, window=window_s, warmup=warmup_s,
                refault=np.where(f.migrating, f.refault_per_s, 0.0), refault_lam=f.refault_lam_per_s,
                refault_share=np.where(f.reclaim_per_s > 0, (f.promote_per_s + f.refault_per_s)
                                       / np.maximum(f.reclaim_per_s, 1e-12), 0.0), thp_alloc=thp)
    for k, col in enumerate(promotion_wave(f, L, thp).T):
        cols[f"wave{k}"] = col
    n = len(f.wmark_min)
    return np.ascontiguousarray(np.stack([np.broadcast_to(np.asarray(cols[k], dtype=float), (n,)) for k in _IN], 1))
