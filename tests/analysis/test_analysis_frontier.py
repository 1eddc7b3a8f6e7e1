"""The break-even finder: same boundary as a dense grid, at most a quarter of the points."""

from __future__ import annotations

import pytest

from migrc_sweep.analysis import dense_frontier, find_frontier, simulator_evaluator


def test_finds_the_dense_grid_boundary_of_migrc_over_pressure_with_a_quarter_of_the_points():
    """Where does migrc stop saving 1 % of runtime? Reclaim pressure brings fresh, writable pages into
    kswapd's batches, so fewer batches can be deferred: migrc's saving falls from ~5 % (guest) or
    ~3 % (bare metal) along reclaim.extra_alloc_mib_per_s, past 1 % between 100 and 200 MiB/s (guest)
    and 63 and 100 MiB/s (bare metal). 64 grid values x guest/bare metal."""
    calls = []
    # a 1 s window and two seeds keep the payoff smooth where it is flat near the threshold
    evaluate = simulator_evaluator(policy="migrc", base={"fidelity.window_s": 1.0,
                                                         "machine.num_cpus": 8, "workload.num_threads": 8},
                                   seeds=(0, 1))

    def counted(points):
        calls.append(len(points))
        return evaluate(points)

    step = 4
    grid = list(range(0, 64 * step, step))
    across = {"machine.is_guest": [True, False]}
    threshold = -1.0   # runtime change [%]: below it migrc saves more than 1 %
    dense = dense_frontier(evaluate, "reclaim.extra_alloc_mib_per_s", grid, across, threshold=threshold)
    found = find_frontier(counted, "reclaim.extra_alloc_mib_per_s", grid, across, threshold=threshold)

    assert len(dense.boundary) == 2, dense.boundary  # one crossing per line
    assert len(found.boundary) == 2
    for guest in (True, False):
        d = dense.boundary[dense.boundary["machine.is_guest"] == guest].iloc[0]
        f = found.boundary[found.boundary["machine.is_guest"] == guest].iloc[0]
        assert abs(f["lower"] - d["lower"]) <= step and abs(f["upper"] - d["upper"]) <= step
        assert f["upper"] - f["lower"] == step  # refined down to adjacent grid values
        assert f["payoff_at_lower"] < threshold < f["payoff_at_upper"]  # saves >1 % below, less above
    guest_row = found.boundary[found.boundary["machine.is_guest"]].iloc[0]
    bare_row = found.boundary[~found.boundary["machine.is_guest"].astype(bool)].iloc[0]
    assert guest_row["estimate"] > bare_row["estimate"]  # a guest's costlier flushes keep migrc worth it longer

    assert dense.points_used == dense.dense_points == 128
    assert found.points_used <= dense.dense_points / 4
    assert found.points_saved == 128 - found.points_used
    assert sum(calls) == found.points_used  # no point evaluated twice
    assert len(calls) == found.rounds  # one evaluate() call per round: a Ray evaluator runs each in parallel
    assert "saved" in found.summary()


def test_several_crossings_and_no_crossing_on_a_known_function():
    """A payoff with crossings at 20.5 and 70.5 on line a=1 and none on a=2: brackets are exact."""
    def evaluate(points):
        return [(-1.0 if 20 < p["x"] < 71 else 1.0) if p["a"] == 1 else 5.0 for p in points]

    found = find_frontier(evaluate, "x", range(0, 100), {"a": [1, 2]}, coarse=5)
    rows = found.boundary
    assert list(zip(rows["lower"], rows["upper"])) == [(20, 21), (70, 71)]
    assert set(rows["a"]) == {1}
    assert list(rows["below_threshold_at"]) == ["upper", "lower"]
    assert found.points_used < 200 / 4


def test_threshold_other_than_zero():
    found = find_frontier(lambda pts: [p["x"] * 0.5 for p in pts], "x", range(0, 41), threshold=3.0)
    row = found.boundary.iloc[0]
    assert (row["lower"], row["upper"]) == (5, 6) and row["estimate"] == pytest.approx(6.0)


def test_rejects_a_bad_evaluator():
    with pytest.raises(ValueError, match="payoffs for"):
        find_frontier(lambda pts: [0.0], "x", range(10))
