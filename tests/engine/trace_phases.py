"""Quiet phases of both engines, from kswapd's sleep to its next wake (a diagnostic).

    python tests/engine/trace_phases.py default batched --seeds 0-7      # ~1 min on two cores

For each window of an equivalence case, the reference model runs with kswapd's thread
hooked from outside (the model is not changed), and the fast engine's kernel runs in
Python (numba's JIT off, in this process only) with its quiet phase wrapped. Prints the
phases' quantiles in ms, their coefficient of variation, and the mean lag-1 correlation
of consecutive phases within a window: docs/reference-model.md ("Quiet phases of one
length") quotes them.
"""

from __future__ import annotations

import os
import sys
from multiprocessing import Pool
from pathlib import Path

os.environ["NUMBA_DISABLE_JIT"] = "1"        # before sim is imported: the kernel runs as Python

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_equivalence as te  # noqa: E402  (the test's configurations)
import trace_args  # noqa: E402

from sim import flush_cycle  # noqa: E402
from sim.engine import lane_arrays, simulate_flushes  # noqa: E402
from sim.reference.model import Model  # noqa: E402


def reference_phases(case, policy, seed):
    """Quiet phases inside the window of one reference run: a burst's end to the next wake."""
    m = Model(te.CONFIGS[case][0], policy, seed)
    phases, last_end = [], [None]
    run = Model.kswapd

    def kswapd(model, task):
        if last_end[0] is not None and model.drv.now >= 0:
            phases.append(model.drv.now - last_end[0])
        yield from run(model, task)
        last_end[0] = model.drv.now

    m.kswapd = kswapd.__get__(m)
    m.drv.run()
    return phases


def fast_phases(case, policy, seed):
    """Quiet phases inside the window of one fast-engine run (its quiet_phase, wrapped)."""
    phases = []
    run = flush_cycle.quiet_phase

    def quiet_phase(*a):
        out = run(*a)
        t0, woke, t1 = a[16], out[0], out[1]
        if t0 >= 0 and woke:
            phases.append(t1 - t0)
        return out

    flush_cycle.quiet_phase = quiet_phase
    try:
        simulate_flushes(lane_arrays([te.CONFIGS[case][0]]), [seed], [policy])
    finally:
        flush_cycle.quiet_phase = run
    return phases


def summary(name, windows):
    q = np.concatenate([np.asarray(w) for w in windows]) * 1e3
    lag = [np.corrcoef(w[:-1], w[1:])[0, 1] for w in windows if len(w) > 3]
    pct = " ".join(f"{x:6.2f}" for x in np.percentile(q, [1, 10, 50, 90, 99]))
    print(f"{name:10} {len(q):5d} phases  p1/p10/p50/p90/p99 ms {pct}  CV {q.std() / q.mean():.2f}  "
          f"lag-1 {np.mean(lag):+.2f}")


def main(argv=None):
    case, policy, seeds = trace_args.parse(argv, "0-7",
                                           seeds_help="reference seeds; the fast engine takes as many from 100")
    with Pool(2) as pool:
        ref = pool.starmap(reference_phases, [(case, policy, s) for s in seeds], chunksize=1)
        fast = pool.starmap(fast_phases, [(case, policy, 100 + s) for s in seeds], chunksize=1)
    summary("reference", ref)
    summary("fast", fast)


if __name__ == "__main__":
    main()
