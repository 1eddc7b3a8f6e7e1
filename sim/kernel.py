"""Values the kernel derives from the machine, computed as mm/page_alloc.c does.

Watermarks and per-CPU list sizes are not free parameters: they follow from the
node sizes, vm.watermark_scale_factor and the CPU count, so a user who changes
the fast node's capacity gets the kernel's own kswapd burst size and pcp sizes.
"""

from __future__ import annotations

import numpy as np

PAGE_BYTES = 4096
PAGES_PER_MIB = 256
THP_PAGES = 512          # HPAGE_PMD_NR on x86-64
MAX_BATCHED_MIGRATION = 512  # NR_MAX_BATCHED_MIGRATION


def _rounddown_pow2(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 1, 2.0 ** np.floor(np.log2(np.maximum(x, 1))), 0)


def watermarks_pages(fast_pages, total_pages, watermark_scale_factor):
    """(min, low, high, promo) watermarks of the fast node, in pages.

    min_free_kbytes = int_sqrt(16 * lowmem_kbytes), clamped to [128, 262144], is
    shared among nodes by size; each further mark adds
    max(min/4, managed * watermark_scale_factor / 10000). WMARK_PROMO (v6.1+) is
    where kswapd stops when it reclaims for promotion in tiering mode.
    """
    total_kb = total_pages * (PAGE_BYTES // 1024)
    min_free_kb = np.clip(np.floor(np.sqrt(16.0 * total_kb)), 128, 262144)
    wmin = np.floor(min_free_kb / 4 * fast_pages / total_pages)
    gap = np.maximum(np.floor(wmin / 4), np.floor(fast_pages * watermark_scale_factor / 10000))
    return wmin, wmin + gap, wmin + 2 * gap, wmin + 3 * gap


def pcp_sizes_pages(fast_pages, low_wmark, num_cpus):
    """(batch, high) of the per-CPU free lists: zone_batchsize() and zone_highsize()."""
    batch = np.minimum(np.floor(fast_pages / 1024), 1024 * 1024 / PAGE_BYTES)
    batch = np.maximum(np.floor(batch / 4), 1)
    batch = np.maximum(_rounddown_pow2(batch + np.floor(batch / 2)) - 1, 1)
    high = np.maximum(np.floor(low_wmark / num_cpus), 4 * batch)
    return batch, high
