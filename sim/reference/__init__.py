"""The reference engine: a slow, explicit discrete-event model of migrc and its baselines.

    >>> import sim
    >>> rows = sim.simulate(sim.SimParams(), ["batched", "migrc"], seed=0, engine="reference")

Modules, one concept each:
  migrc_state  the seed's deferred-flush state machine (generators)
  tlb          per-CPU stale translations and the safety checker
  memory       pcp lists and the buddy list, with generation tags
  des          event heap, generator threads, flushes that take time
  workload     pages, NUMA scanner, promotions, write faults, refaults
  reclaim      kswapd: demotion/eviction batches under each policy
  model        one policy at one point: set-up and statistics hooks
  accounting   counts -> the results contract (engine.py's time accounting)
  interleave   scripted interleavings of the state machine, for the race tests
"""

from __future__ import annotations

from ..params import SimParams


def run_model(params: SimParams, policy: str, seed: int, **guards):
    """The finished model of one policy (for tests that look inside)."""
    from .model import Model
    m = Model(params, policy, seed, **guards)
    m.drv.run()
    m.finish()
    return m


def simulate_reference(params: SimParams, policies, seed: int) -> list[dict]:
    from .accounting import metrics_row
    rows = []
    for pol in policies:
        m = run_model(params, pol, seed)
        row, _ = metrics_row(m)
        rows.append({"policy": pol, **row})
    return rows


__all__ = ["run_model", "simulate_reference"]
