"""Two-sided Student-t critical values, without SciPy (not a project dependency).

The CDF is integrated numerically from the density and inverted by bisection;
accurate to ~1e-6, far below the spread of any sweep's replicates.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def _density(t: np.ndarray, dof: float) -> np.ndarray:
    log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    return np.exp(log_norm - (dof + 1) / 2 * np.log1p(t * t / dof))


def _mass_0_to(t: float, dof: float) -> float:
    """P(0 < T < t) by Simpson's rule on a grid fine enough for the heavy tails at dof=1."""
    grid = np.linspace(0.0, t, 4001)
    y = _density(grid, dof)
    h = grid[1] - grid[0]
    return float(h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum()))


@lru_cache(maxsize=256)
def t_critical(confidence: float, dof: int) -> float:
    """t such that P(-t < T < t) = confidence for `dof` degrees of freedom."""
    if dof < 1:
        return math.nan
    target = confidence / 2
    lo, hi = 0.0, 1.0
    while _mass_0_to(hi, dof) < target:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _mass_0_to(mid, dof) < target else (lo, mid)
    return (lo + hi) / 2
