"""How the NUMA scanner's sweep through THPs shapes the small folios' promotions in time.

THPs lie evenly in the address space among the small folios, `small_pages` of them
between two THPs. The scanner walks it at a steady pace, so it passes a THP's 512
pages (arming one hint fault, the THP's) and then the small folios up to the next
THP (arming one each) in turn: the small folios' hint faults are armed in a square
wave, none for 512 / scan_pages_per_s seconds and then steadily. Each fires at the
folio's first touch after it is armed, Exp(lam) later, and promotes it if that beat
the hot threshold; a THP, touched 512 times as often, faults at once and starts the
wave's quiet part. So small promotions come fastest just after a THP's hint fault
(the small folios before it still firing), slowest near the middle of the THP's
stretch, and rise again through the small folios after it. In the reference model at
thp_half they come 1.40 times as fast in the first ms after a THP's hint fault as on
average, 0.64 times 7-8 ms after it, and 1.32 times 14-15 ms after it (15.6 ms gaps).
Taken as a constant rate, a burst woken by a THP promotion refused a steady share of
promotions where the reference refuses a peak, and the quiet phase after it drained
free memory too fast: the bursts fell out of the reference's step with the THPs.

`promotion_profile` gives the small promotions' rate, relative to their mean, in
PROFILE_BINS equal bins of the time from one THP hint fault to the next.
"""

from __future__ import annotations

import numpy as np

PROFILE_BINS = 16
_POINTS_PER_BIN = 8


def _square_wave_response(phi_s, period_s, off_s, lam):
    """Share of the armed folios' faults at phase `phi_s` (from the start of the THP's
    stretch, which lasts `off_s` of each `period_s`), for first-touch delays Exp(lam):
    the armed rate (1 in the small folios' stretch) filtered by the delay."""
    x = np.exp(-lam * period_s)
    first = 1.0 - np.exp(-lam * np.maximum(phi_s - off_s, 0.0))
    second = np.exp(-lam * phi_s) - np.exp(-lam * np.minimum(phi_s + period_s - off_s, period_s))
    return (first + second) / np.maximum(1.0 - x, 1e-300)


def _truncated_response(phi_s, period_s, off_s, lam, threshold_s):
    """As `_square_wave_response`, for the folios whose delay beat `threshold_s` (those
    promoted): the exponential less its tail past the threshold, renormalised."""
    tail = np.exp(-lam * threshold_s)
    shifted = np.mod(phi_s - threshold_s, period_s)
    full = _square_wave_response(phi_s, period_s, off_s, lam)
    late = _square_wave_response(shifted, period_s, off_s, lam)
    return (full - tail * late) / np.maximum(1.0 - tail, 1e-300)


def promotion_profile(small_pages, scan_pages_per_s, gap_s, lams, weights, threshold_s):
    """Per lane, the small promotions' rate in PROFILE_BINS bins of [0, gap_s) after a THP
    hint fault, relative to its mean over the gap (all ones where there is no wave).

    small_pages: small folios between two THPs in the address space; gap_s: time between
    THP promotions; lams: per-page first-touch rates of the classes whose folios are
    promoted (one array per class), weights: their shares of the small promotions."""
    small_pages = np.asarray(small_pages, dtype=float)
    n = small_pages.shape[0]
    out = np.ones((n, PROFILE_BINS))
    period = (small_pages + 512.0) / np.maximum(scan_pages_per_s, 1e-300)
    off = 512.0 / np.maximum(scan_pages_per_s, 1e-300)
    ok = (small_pages > 0) & np.isfinite(gap_s) & (gap_s > 0) & (scan_pages_per_s > 0)
    if not ok.any():
        return out
    k = PROFILE_BINS * _POINTS_PER_BIN
    phi = (np.arange(k) + 0.5) / k * np.where(ok, gap_s, 1.0)[:, None]
    rate = np.zeros((n, k))
    for lam, wgt in zip(lams, weights):
        lam = np.maximum(np.asarray(lam, dtype=float), 1e-12)[:, None]
        r = _truncated_response(phi, period[:, None], off[:, None], lam, np.asarray(threshold_s, dtype=float)[:, None])
        rate += np.asarray(wgt, dtype=float)[:, None] * r
    bins = rate.reshape(n, PROFILE_BINS, _POINTS_PER_BIN).mean(axis=2)
    mean = bins.mean(axis=1, keepdims=True)
    prof = np.where(mean > 0, bins / np.maximum(mean, 1e-300), 1.0)
    out[ok] = prof[ok]
    return out
