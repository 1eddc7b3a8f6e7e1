"""Speed of the vectorized engine, printed as a table. Run as `python benchmarks/run.py`.

Pinned to one CPU. Reports median of repeats (the machine is shared, so timings
are noisy; compare rows of one run rather than runs of different days):
  * JIT: first call in a fresh process, with an empty numba cache (compile) and
    with the on-disk cache (load), and warm in-process;
  * the seed experiment (16 CPUs, batched + migrc, default fidelity), against the
    old numpy lock-step loop (tests/engine/numpy_oracle.py) and sim.reference;
  * batch throughput: 200 distinct points x 2 policies, with peak memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

from _common import REPO, machine, pin_one_core, seed_params, sim

POLICIES = ["batched", "migrc"]


def _median_time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


def _first_call(cache_dir: str) -> dict:
    """Fresh interpreter: import time and first seed-experiment call, with a given numba cache dir."""
    code = ("import os,time,json,sys; cpu=sorted(os.sched_getaffinity(0))[-1]; os.sched_setaffinity(0,{cpu});"
            "t0=time.perf_counter(); sys.path.insert(0, %r); import _common; t1=time.perf_counter();"
            "p=_common.seed_params(); t2=time.perf_counter(); _common.sim.simulate(p, ['batched','migrc'], 0);"
            "t3=time.perf_counter(); _common.sim.simulate(p, ['batched','migrc'], 1); t4=time.perf_counter();"
            "print(json.dumps(dict(imp=t1-t0, first=t3-t2, second=t4-t3)))") % str(REPO / "benchmarks")
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _numpy_seed_experiment(params, seed):
    """The pre-issue-4 engine: same steady flows and accounting, numpy lock-step flush loop."""
    sys.path.insert(0, str(REPO / "tests" / "engine"))
    from numpy_oracle import run_cycles as run_np

    from sim.engine import account, lane_arrays
    from sim.flush_layout import NUM_STREAMS, POLICY_CODES
    from sim.rng import LaneRandom
    from sim.steady import steady_flows
    L = lane_arrays([params] * len(POLICIES))
    rnd = LaneRandom(np.array([seed] * len(POLICIES), dtype=np.uint64), NUM_STREAMS)
    tally = run_np(steady_flows(L), L, np.array([POLICY_CODES[p] for p in POLICIES]), rnd,
                   L["fidelity.window_s"], L["fidelity.warmup_s"])
    return account(L, POLICIES, tally)


def _batch_points(n):
    base = seed_params()
    rng = np.random.default_rng(0)
    pts = []
    for i in range(n):  # distinct points around the seed: CPUs, fast-node size, read-only share, evictions
        g = {"machine": {"num_cpus": int(rng.choice([4, 8, 16, 32, 64]))},
             "memory": {"fast_capacity_mib": float(rng.choice([512, 1024, 2048]))},
             "workload": {"read_only_fraction": float(rng.uniform(0.8, 1.0)),
                          "num_threads": 16},
             "reclaim": {"evict_fraction": float(rng.uniform(0, 0.2))}}
        p = dataclasses.replace(base, **{k: dataclasses.replace(getattr(base, k), **v) for k, v in g.items()})
        pts.append((p, i))
    return pts


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=200)
    a = ap.parse_args(argv)
    cpu = pin_one_core()
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores (pinned to cpu {cpu}); python {m['python']}, "
          f"numpy {m['numpy']}, numba {m['numba']}")
    rows = []

    with tempfile.TemporaryDirectory() as d:
        cold = _first_call(d)      # empty cache: compiles
        cached = _first_call(d)    # same dir: loads the compiled kernel
    rows.append(("import sim + calibration (fresh process)", f"{cached['imp']:.3f} s", ""))
    rows.append(("first call, empty numba cache (JIT compile)", f"{cold['first']:.3f} s", "once per machine/version"))
    rows.append(("first call, numba cache on disk", f"{cached['first']:.3f} s", "once per process"))

    p = seed_params()
    sim.simulate(p, POLICIES, 0)
    t_seed, _ = _median_time(lambda: sim.simulate(p, POLICIES, 0), a.repeats)
    rows.append(("seed experiment, warm (target <= 1 s)", f"{t_seed:.4f} s", "PASS" if t_seed <= 1 else "FAIL"))

    t_np, _ = _median_time(lambda: _numpy_seed_experiment(p, 0), max(1, a.repeats // 2))
    rows.append(("seed experiment, old numpy loop", f"{t_np:.3f} s", f"kernel is {t_np / t_seed:.0f}x faster"))

    try:
        from sim.reference import simulate_reference  # noqa: F401
        have_ref = True
    except ImportError:
        have_ref = False
    if have_ref:
        t_ref, _ = _median_time(lambda: sim.simulate(p, POLICIES, 0, engine="reference"), 1)
        t_vec, _ = _median_time(lambda: sim.simulate(p, POLICIES, 0), a.repeats)
        ratio = t_ref / t_vec
        rows.append(("seed experiment, engine=reference", f"{t_ref:.3f} s",
                     f"vectorized {ratio:.0f}x faster (target >= 100x): {'PASS' if ratio >= 100 else 'FAIL'}"))
    else:
        rows.append(("seed experiment, engine=reference", "missing", "sim.reference.simulate_reference not found"))

    pts = _batch_points(a.batch)
    sim.simulate_batch(pts[:2], POLICIES)
    t_b, _ = _median_time(lambda: sim.simulate_batch(pts, POLICIES), a.repeats)
    rate = a.batch / t_b
    rows.append((f"batch {a.batch} points x {len(POLICIES)} policies", f"{t_b:.3f} s",
                 f"{rate:.0f} points/s (target >= 200): {'PASS' if rate >= 200 else 'FAIL'}"))
    tracemalloc.start()
    sim.simulate_batch(pts, POLICIES)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows.append(("batch peak memory (tracemalloc)", f"{peak / 2**20:.1f} MiB",
                 f"{peak / a.batch / 1024:.1f} KiB/point"))

    w = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{w}}  {'value':>12}  note")
    for name, val, note in rows:
        print(f"{name:<{w}}  {val:>12}  {note}")


if __name__ == "__main__":
    main()
