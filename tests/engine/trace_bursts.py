"""kswapd's bursts in both engines: where they start and end, and how long they run (a diagnostic).

    python tests/engine/trace_bursts.py thp_half migrc --seeds 0-23     # ~1 min on two cores

For each window of an equivalence case, the reference model runs with kswapd's thread
and its steps hooked from outside (the model is not changed), and the fast engine's
kernel runs in Python (numba's JIT off, in this process only) with its quiet phase,
kswapd's wake and its steps wrapped. Prints, per engine: bursts a window; free memory
(NR_FREE_PAGES) where kswapd wakes and where it stops; steps a burst and how often each
count comes; the share of bursts that end with a deferral pending; and, where there are
THPs, free memory before a THP step and how many small steps of its burst came first.
docs/reference-model.md ("`thp_half`/migrc: the scanner's wave", "`one_cpu`/migrc:
bursts of an even length") quotes them.
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
from sim.flush_layout import P_FREE  # noqa: E402
from sim.reference.model import Model  # noqa: E402


def reference_bursts(case, policy, seed):
    """Bursts inside the window of one reference run: (free at wake, free at end, pending at
    end, [(free before, is THP) per step])."""
    m = Model(te.CONFIGS[case][0], policy, seed)
    bursts = []
    run_kswapd, run_step = Model.kswapd, Model.reclaim_step

    def kswapd(model, task):
        steps = []
        model._trace_steps = steps
        t0, free0 = model.drv.now, len(model.mem.buddy)
        yield from run_kswapd(model, task)
        if t0 >= 0:
            bursts.append((free0, len(model.mem.buddy), model.state.ubc.required, steps))

    def reclaim_step(model, task):
        lru = model.lru_cold if model.lru_cold else model.lru_hot
        v = lru[0]
        model._trace_steps.append((len(model.mem.buddy), v < model.n_folios and model.size[v] > 1))
        return (yield from run_step(model, task))

    m.kswapd = kswapd.__get__(m)
    m.reclaim_step = reclaim_step.__get__(m)
    m.drv.run()
    return bursts


def fast_bursts(case, policy, seed):
    """The same for one fast-engine run: its wake opens a burst, its next quiet phase ends it;
    a step is seen at its split_batch() and the state vector at the owed() that follows."""
    bursts, cur, step = [], [None], [None]
    run_quiet, run_wake = flush_cycle.quiet_phase, flush_cycle.kswapd_wake
    run_split, run_owed = flush_cycle.split_batch, flush_cycle.owed

    def kswapd_wake(*a):
        out = run_wake(*a)
        if out[0]:
            cur[0] = [a[7][P_FREE], out[1], []]        # (free at wake, t, steps)
        return out

    def quiet_phase(*a):
        st, t = a[8], a[16]
        if cur[0] is not None and cur[0][1] >= 0 and t < a[0][flush_cycle.I_WINDOW]:
            bursts.append((cur[0][0], st[P_FREE], run_owed(st), cur[0][2]))
        cur[0] = None
        return run_quiet(*a)

    def split_batch(*a):
        step[0] = not a[-1]                             # its last argument: a small batch
        return run_split(*a)

    def owed(st):
        if step[0] is not None and cur[0] is not None:
            cur[0][2].append((st[P_FREE], step[0]))
        step[0] = None
        return run_owed(st)

    flush_cycle.kswapd_wake, flush_cycle.quiet_phase = kswapd_wake, quiet_phase
    flush_cycle.split_batch, flush_cycle.owed = split_batch, owed
    try:
        simulate_flushes(lane_arrays([te.CONFIGS[case][0]]), [seed], [policy])
    finally:
        flush_cycle.kswapd_wake, flush_cycle.quiet_phase = run_wake, run_quiet
        flush_cycle.split_batch, flush_cycle.owed = run_split, run_owed
    return bursts


def summary(name, per_window):
    n = len(per_window)
    b = [x for w in per_window for x in w]
    q = (10, 25, 50, 75, 90)
    print(f"{name}: {len(b) / n:.2f} bursts a window")
    print(f"  free at wake {np.percentile([x[0] for x in b], q).round(0)}, at the end "
          f"{np.percentile([x[1] for x in b], q).round(0)} (quantiles {q})")
    steps = np.array([len(x[3]) for x in b])
    top = np.argsort(-np.bincount(steps))[:4]
    print(f"  steps a burst: mean {steps.mean():.2f}, sd {steps.std():.2f}; most often "
          + ", ".join(f"{k} ({np.mean(steps == k):.0%})" for k in top))
    print(f"  a deferral pending at the end: {np.mean([bool(x[2]) for x in b]):.0%} of bursts")
    thp = [(free, k) for x in b for k, (free, big) in enumerate(x[3]) if big]
    if thp:
        print(f"  THP steps: free before {np.percentile([f for f, _ in thp], q).round(0)}, small steps "
              f"before in their burst {np.percentile([k for _, k in thp], q).round(0)}")


def main(argv=None):
    case, policy, seeds = trace_args.parse(argv, "0-7")
    with Pool(2) as pool:
        ref = pool.starmap(reference_bursts, [(case, policy, s) for s in seeds], chunksize=1)
    fast = [fast_bursts(case, policy, 100 + s) for s in range(4 * len(seeds))]
    summary("reference", ref)
    summary("fast", fast)


if __name__ == "__main__":
    main()
