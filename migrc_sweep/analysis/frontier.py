"""Where does the payoff cross the break-even? Adaptive refinement instead of a dense grid.

Along one axis, on a grid of candidate values, the finder evaluates a coarse
subset, keeps every pair of neighbours whose payoff falls on different sides of
the threshold, and bisects each such bracket down to adjacent grid values. Lines
across other axes are refined together: each round is one `evaluate` call with
every point the round needs, so a Ray-backed evaluator runs a round in parallel.

`evaluate(points) -> payoffs` takes a list of {override key: value} dicts and
returns one number per point (e.g. runtime change in %, < 0 = the variant is
faster). Which side "pays" does not matter: a bracket is any sign change of
payoff - threshold.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

import sim
from sim.params import build_params

Evaluate = Callable[[list[dict]], Sequence[float]]


@dataclass
class FrontierResult:
    """`boundary`: one row per crossing (across-axis values, lower/upper grid value, interpolated estimate);
    `evaluations`: every point evaluated with its payoff."""
    axis: str
    threshold: float
    boundary: pd.DataFrame
    evaluations: pd.DataFrame
    points_used: int
    dense_points: int
    rounds: int

    @property
    def points_saved(self) -> int:
        return self.dense_points - self.points_used

    @property
    def fraction_used(self) -> float:
        return self.points_used / self.dense_points if self.dense_points else float("nan")

    def summary(self) -> str:
        return (f"{len(self.boundary)} crossing(s) of {self.axis} at payoff {self.threshold:g}: "
                f"{self.points_used} points evaluated in {self.rounds} rounds, {self.points_saved} saved "
                f"vs a dense grid of {self.dense_points} ({100 * self.fraction_used:.0f}% used)")


def _lines(across: dict[str, Sequence] | None) -> list[dict]:
    across = across or {}
    names = list(across)
    return [dict(zip(names, combo)) for combo in itertools.product(*(across[n] for n in names))] or [{}]


class _Memo:
    """Evaluates each distinct point once, however often the refinement asks for it."""

    def __init__(self, evaluate: Evaluate, axis: str, values: Sequence):
        self.evaluate, self.axis, self.values = evaluate, axis, list(values)
        self.cache: dict[tuple, float] = {}
        self.rounds = 0

    def run(self, wanted: list[tuple[int, int]], lines: list[dict]) -> None:
        todo = [w for w in dict.fromkeys(wanted) if w not in self.cache]
        if not todo:
            return
        points = [{**lines[ln], self.axis: _plain(self.values[i])} for ln, i in todo]
        payoffs = list(self.evaluate(points))
        if len(payoffs) != len(points):
            raise ValueError(f"evaluate returned {len(payoffs)} payoffs for {len(points)} points")
        self.rounds += 1
        for w, v in zip(todo, payoffs):
            self.cache[w] = float(v)


def _plain(value):
    """numpy scalars -> Python scalars, so build_params accepts them (it refuses non-int/float types)."""
    return value.item() if isinstance(value, np.generic) else value


def _side(payoff: float, threshold: float) -> bool:
    return payoff < threshold


def _boundary_rows(memo: _Memo, lines: list[dict], brackets: list[tuple[int, int, int]], axis: str,
                   threshold: float) -> pd.DataFrame:
    rows = []
    for ln, lo, hi in brackets:
        p_lo, p_hi = memo.cache[(ln, lo)], memo.cache[(ln, hi)]
        v_lo, v_hi = float(memo.values[lo]), float(memo.values[hi])
        frac = (threshold - p_lo) / (p_hi - p_lo) if p_hi != p_lo else 0.5
        rows.append({**lines[ln], "lower": memo.values[lo], "upper": memo.values[hi],
                     "payoff_at_lower": p_lo, "payoff_at_upper": p_hi,
                     "estimate": v_lo + frac * (v_hi - v_lo),
                     "below_threshold_at": "lower" if _side(p_lo, threshold) else "upper"})
    columns = [*(lines[0] if lines else {}), "lower", "upper", "payoff_at_lower", "payoff_at_upper", "estimate",
               "below_threshold_at"]
    return pd.DataFrame(rows, columns=columns)


def _evaluations(memo: _Memo, lines: list[dict], axis: str) -> pd.DataFrame:
    rows = [{**lines[ln], axis: memo.values[i], "payoff": v} for (ln, i), v in sorted(memo.cache.items())]
    return pd.DataFrame(rows)


def find_frontier(evaluate: Evaluate, axis: str, values: Sequence, across: dict[str, Sequence] | None = None,
                  threshold: float = 0.0, coarse: int = 3) -> FrontierResult:
    """Break-even of `payoff - threshold` along `axis` over the grid `values`, for each combination of `across`.

    `coarse` grid values (ends included) are evaluated first, so up to coarse-1
    crossings per line are found; each bracket is then bisected to adjacent grid
    values. A crossing between two coarse samples that cross back is missed, as
    with any sampling: raise `coarse` for wiggly payoffs.
    """
    values = sorted(values)
    if len(values) < 2:
        raise ValueError(f"{axis}: need at least two grid values, got {values}")
    lines = _lines(across)
    memo = _Memo(evaluate, axis, values)
    n = len(values)
    start = sorted({int(i) for i in np.linspace(0, n - 1, max(2, min(coarse, n))).round()})
    memo.run([(ln, i) for ln in range(len(lines)) for i in start], lines)
    brackets = [(ln, a, b) for ln in range(len(lines)) for a, b in zip(start, start[1:])
                if _side(memo.cache[(ln, a)], threshold) != _side(memo.cache[(ln, b)], threshold)]
    while any(b - a > 1 for _, a, b in brackets):
        mids = {(ln, a, b): (a + b) // 2 for ln, a, b in brackets if b - a > 1}
        memo.run([(ln, m) for (ln, _, _), m in mids.items()], lines)
        refined = []
        for ln, a, b in brackets:
            if b - a <= 1:
                refined.append((ln, a, b))
                continue
            m = mids[(ln, a, b)]
            same_as_a = _side(memo.cache[(ln, m)], threshold) == _side(memo.cache[(ln, a)], threshold)
            refined.append((ln, m, b) if same_as_a else (ln, a, m))
        brackets = refined
    return FrontierResult(axis=axis, threshold=threshold,
                          boundary=_boundary_rows(memo, lines, sorted(brackets), axis, threshold),
                          evaluations=_evaluations(memo, lines, axis), points_used=len(memo.cache),
                          dense_points=n * len(lines), rounds=memo.rounds)


def dense_frontier(evaluate: Evaluate, axis: str, values: Sequence, across: dict[str, Sequence] | None = None,
                   threshold: float = 0.0) -> FrontierResult:
    """The reference: every grid value evaluated, every sign change reported. Same result shape."""
    values = sorted(values)
    lines = _lines(across)
    memo = _Memo(evaluate, axis, values)
    memo.run([(ln, i) for ln in range(len(lines)) for i in range(len(values))], lines)
    brackets = [(ln, i, i + 1) for ln in range(len(lines)) for i in range(len(values) - 1)
                if _side(memo.cache[(ln, i)], threshold) != _side(memo.cache[(ln, i + 1)], threshold)]
    return FrontierResult(axis=axis, threshold=threshold,
                          boundary=_boundary_rows(memo, lines, brackets, axis, threshold),
                          evaluations=_evaluations(memo, lines, axis), points_used=len(memo.cache),
                          dense_points=len(values) * len(lines), rounds=memo.rounds)


def _nest(flat: dict) -> dict[str, dict]:
    groups: dict[str, dict] = {}
    for key, value in flat.items():
        group, _, name = key.partition(".")
        groups.setdefault(group, {})[name] = _plain(value)
    return groups


def simulator_evaluator(policy: str = "migrc", baseline: str = "batched", metric: str = "runtime_s",
                        base: dict | None = None, seeds: Sequence[int] = (0,),
                        simulate_batch: Callable = sim.simulate_batch) -> Evaluate:
    """evaluate(points) -> mean over `seeds` of 100 (variant/baseline - 1) of `metric`, in %.

    `base` holds override keys fixed for every point (e.g. {"fidelity.window_s": 0.2});
    `simulate_batch` defaults to the in-process simulator, and any function with its
    signature (a Ray fan-out, say) can stand in.
    """
    base = dict(base or {})

    def evaluate(points: list[dict]) -> list[float]:
        batch = [(build_params(_nest({**base, **pt})), int(s)) for pt in points for s in seeds]
        results = simulate_batch(batch, [baseline, policy])
        payoffs = []
        for i in range(len(points)):
            per_seed = results[i * len(seeds):(i + 1) * len(seeds)]
            ratios = [r[1][metric] / r[0][metric] for r in per_seed]
            payoffs.append(100.0 * (float(np.mean(ratios)) - 1.0))
        return payoffs

    return evaluate
