"""The small promotions' wave between THP hint faults (sim/scan_pattern.py), and the pcp
clocks running at its pace (sim/pcp_clocks.py): its shape in the limits, against the
reference model's own hint faults, and the clock's time and gain as inverses."""

from multiprocessing import Pool

import numpy as np

from sim.flush_layout import NUM_STREAMS, WALK_SIZE
from sim.pcp_clocks import clock_gain, refill_events, start_clocks, time_to_gain, walk_start, wave_integral
from sim.rng import LaneRandom
from sim.scan_pattern import PROFILE_BINS, promotion_profile

GAP_S = 512.0 / 32768.0          # thp_half: a THP hint fault every 15.6 ms
SCAN = 65536.0                    # the scanner's pages/s at the default scan size and period


def _profile(lam, small_pages=512.0, gap_s=GAP_S, threshold_s=1.0):
    one = np.ones(1)
    return promotion_profile(small_pages * one, SCAN * one, gap_s * one, [lam * one], [one], threshold_s * one)[0]


def test_the_wave_has_mean_one_and_is_flat_without_small_folios_between_thps():
    for lam in (1.0, 114.0, 1e4):
        assert abs(_profile(lam).mean() - 1.0) < 1e-12
    assert np.all(_profile(114.0, small_pages=0.0) == 1.0)
    assert np.all(_profile(114.0, gap_s=np.inf) == 1.0)


def test_slow_touches_smooth_the_wave_out_and_fast_ones_leave_the_scanners_square_wave():
    # first touches long after the scanner passed: promotions at a steady rate
    assert np.ptp(_profile(0.5)) < 0.01
    # touched at once: none while the scanner crosses the THP's 512 pages (the gap's first
    # half at thp_half), twice the mean while it crosses the small folios after it
    fast = _profile(1e6)
    assert np.all(fast[: PROFILE_BINS // 2] < 0.05) and np.all(np.abs(fast[PROFILE_BINS // 2 + 1:] - 2.0) < 0.05)


def _ref_small_faults(seed):
    """The reference's small-folio promotions (hot-enough hint faults), in ms after the last
    THP hint fault."""
    from sim.reference.model import Model
    import test_equivalence as te

    times = []
    orig = Model.on_hint_fault

    def on_hint_fault(m, v, ver, hot_enough):
        if ver == m.ver[v] and m.loc[v] == -1 and hot_enough and m.drv.now > -0.05:
            times.append((m.drv.now, int(m.size[v])))
        return orig(m, v, ver, hot_enough)

    Model.on_hint_fault = on_hint_fault
    try:
        Model(te.CONFIGS["thp_half"][0], "batched", seed).drv.run()
    finally:
        Model.on_hint_fault = orig
    a = np.array(times)
    thp = a[a[:, 1] > 1, 0]
    small = a[a[:, 1] == 1, 0]
    last = np.searchsorted(thp, small) - 1
    return (small[last >= 0] - thp[last[last >= 0]]) * 1e3


def test_the_reference_promotes_small_folios_in_the_wave_the_profile_predicts():
    """At thp_half (first touches at 114/s a page, THPs every 15.6 ms) the profile says 1.34
    times the mean rate in the first ms after a THP's hint fault, 0.62 in the 8th and 1.38 in
    the 16th; the reference's scanner and first touches give the same, within their noise."""
    import test_equivalence as te
    from sim.engine import lane_arrays
    from sim.steady import steady_flows

    lam = float(steady_flows(lane_arrays([te.CONFIGS["thp_half"][0]])).lam_hot_per_s[0])
    with Pool(2) as pool:
        since_ms = np.concatenate(pool.map(_ref_small_faults, range(4)))
    gap_ms = GAP_S * 1e3
    h, _ = np.histogram(since_ms, bins=PROFILE_BINS, range=(0.0, gap_ms))
    measured = h / h.mean()
    predicted = _profile(lam)
    # ~3000 faults a bin over 4 windows: 2% noise; the reference's THP gaps are 15 or 16 ms,
    # not 15.6, which blurs the last bins
    assert np.max(np.abs(measured[:-2] - predicted[:-2])) < 0.1, (measured.round(2), predicted.round(2))
    assert measured[:3].mean() > 1.1 and measured[6:9].mean() < 0.8


def test_time_to_gain_inverts_clock_gain_across_gaps():
    rng = np.random.default_rng(5)
    wave = _profile(114.0)
    for _ in range(200):
        x = rng.uniform(-GAP_S, 5 * GAP_S)
        dt = rng.uniform(0.0, 4 * GAP_S)
        s_base, s_wave = rng.uniform(0.0, 500.0), rng.uniform(1.0, 2000.0)
        g = clock_gain(s_base, s_wave, wave, GAP_S, x, dt)
        assert abs(time_to_gain(g, s_base, s_wave, wave, GAP_S, x) - dt) < 1e-9
    # a whole gap gains the mean rate's worth, wherever it starts
    assert abs(clock_gain(100.0, 900.0, wave, GAP_S, 0.3 * GAP_S, GAP_S) - 1000.0 * GAP_S) < 1e-9
    assert abs(wave_integral(wave, GAP_S, 3 * GAP_S) - 3 * GAP_S) < 1e-15
    # flat: the plain rate
    assert time_to_gain(50.0, 200.0, 800.0, np.ones(PROFILE_BINS), np.inf, 0.0) == 50.0 / 1000.0


def test_lists_run_empty_more_often_where_the_wave_is_high():
    """Refills through many gaps, free memory far above high: they follow the wave."""
    wave = _profile(114.0)
    rnd = LaneRandom(np.array([2]), NUM_STREAMS)
    key, ctr = rnd.keys[0], rnd.counters
    due = np.empty(16)
    start_clocks(key, ctr, 0, due, 63.0, 0.0)
    w = np.empty(WALK_SIZE)
    step_s = GAP_S / PROFILE_BINS
    counts = np.zeros(PROFILE_BINS)
    clock, thp_due = 0.0, GAP_S          # the step starts at a THP hint fault
    for k in range(PROFILE_BINS * 400):
        walk_start(w, 0.0, 0.0, 1.0, np.inf)
        _, refilled, _, _, thp_due, clock = refill_events(key, ctr, 0, step_s, 1e9, 0.0, 2048.0, 0.0, thp_due,
                                                          GAP_S, wave, 63.0, 0.0, due, clock, w)
        counts[k % PROFILE_BINS] += refilled
    rel = counts / counts.mean()
    assert np.corrcoef(rel, wave)[0, 1] > 0.9
    assert abs(counts.sum() / (PROFILE_BINS * 400 * step_s) / (16 * 2048.0) - 1.0) < 0.02
