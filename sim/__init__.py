"""migrc-sweep's simulator: pure computation over frozen parameters.

    >>> import sim
    >>> rows = sim.simulate(sim.SimParams(), ["batched", "migrc"], seed=0)

Nothing here reads files, talks to a network or imports an orchestration or
storage library; everything arrives as arguments and leaves as return values.
"""

from __future__ import annotations

from .metrics import ALL_METRICS, CONTRACT_METRICS, EXTRA_METRICS
from .params import ENGINES, POLICIES, ParamError, SimParams, build_params

__version__ = "0.17.0"
__all__ = ["ALL_METRICS", "CONTRACT_METRICS", "ENGINES", "EXTRA_METRICS", "POLICIES", "ParamError",
           "SimParams", "build_params", "simulate", "simulate_batch", "__version__"]


def _check(policies, engine):
    for p in policies:
        if p not in POLICIES:
            raise ParamError("policy", p, f"unknown policy; expected one of {list(POLICIES)}")
    if engine not in ENGINES:
        raise ParamError("engine", engine, f"unknown engine; expected one of {list(ENGINES)}")


def simulate_batch(points, policies, engine: str = "vectorized") -> list[list[dict]]:
    """For each (params, seed) point, one dict per policy: {"policy": ..., metric: float}."""
    policies = list(policies)
    _check(policies, engine)
    if engine == "reference":
        from .reference import simulate_reference
        return [simulate_reference(p, policies, s) for p, s in points]
    from .engine import run_lanes
    lanes, seeds, pols = [], [], []
    for params, seed in points:
        for pol in policies:
            lanes.append(params)
            seeds.append(int(seed))
            pols.append(pol)
    if not lanes:
        return []
    rows = run_lanes(lanes, seeds, pols)
    k = len(policies)
    return [rows[i * k:(i + 1) * k] for i in range(len(points))]


def simulate(params: SimParams, policies, seed: int, engine: str = "vectorized") -> list[dict]:
    """One point: one dict per policy, in the order given."""
    return simulate_batch([(params, seed)], policies, engine)[0]
