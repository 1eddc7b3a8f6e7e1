"""The break-even finder: same boundary as a dense grid, at most a quarter of the points."""

from __future__ import annotations

import pytest

from analysis_datasets import WINDOW_S
from migrc_sweep.analysis import dense_frontier, find_frontier, simulator_evaluator


def test_finds_the_dense_grid_boundary_of_migrc_hold_over_cpus_with_a_quarter_of_the_points():
    """migrc_hold vs batched really changes sign along machine.num_cpus in the simulator: holding source
    folios costs copies that only enough CPUs (more IPI targets saved) pay back. 64 grid values x
    guest/bare metal; the seed's guest crosses in the low 20s, bare metal later."""
    calls = []
    evaluate = simulator_evaluator(policy="migrc_hold", base={"fidelity.window_s": WINDOW_S})

    def counted(points):
        calls.append(len(points))
        return evaluate(points)

    grid = list(range(8, 72))
    across = {"machine.is_guest": [True, False]}
    dense = dense_frontier(evaluate, "machine.num_cpus", grid, across)
    found = find_frontier(counted, "machine.num_cpus", grid, across)

    assert len(dense.boundary) == 2, dense.boundary  # one crossing per line: a real sign change
    assert len(found.boundary) == 2
    step = 1
    for guest in (True, False):
        d = dense.boundary[dense.boundary["machine.is_guest"] == guest].iloc[0]
        f = found.boundary[found.boundary["machine.is_guest"] == guest].iloc[0]
        assert abs(f["lower"] - d["lower"]) <= step and abs(f["upper"] - d["upper"]) <= step
        assert f["upper"] - f["lower"] == step  # refined down to adjacent grid values
        assert f["payoff_at_lower"] > 0 > f["payoff_at_upper"]  # loses with few CPUs, pays with many
    guest_row = found.boundary[found.boundary["machine.is_guest"]].iloc[0]
    bare_row = found.boundary[~found.boundary["machine.is_guest"].astype(bool)].iloc[0]
    assert guest_row["estimate"] < bare_row["estimate"]  # a guest's costlier IPIs make holding pay sooner

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
