"""The equivalence test's verdicts against cached reference windows: seconds, not 40 minutes.

    MIGRC_EQUIVALENCE=all python tests/engine/cached_compare.py [--ref-seeds 0-47] [--fast 384] [case/policy ...]

The reference's window for each case and seed is computed once (on two processes)
and kept under outputs/equivalence-cache/<hash of the sources the reference runs>/,
so after a change to the fast engine alone every case is judged again in about 30 s,
with the test's own `judge`. With the test's seeds (reference 0-23 against its 96
fast windows, the default) the verdicts are the test's; with more windows on both
sides (`--ref-seeds 0-47 --fast 384`) the intervals narrow and smaller gaps show.
A case argument may be `name/*`; none means every case.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import test_equivalence as te  # noqa: E402  (the test's configurations and verdicts)

import sim  # noqa: E402

# what the reference model runs: its own package and the modules it imports from sim
REFERENCE_SOURCES = sorted((ROOT / "sim" / "reference").glob("*.py")) + [
    ROOT / "sim" / f for f in ("engine.py", "metrics.py", "flush_layout.py", "kernel.py", "params.py", "steady.py",
                               "mix.py")]


def cache_dir() -> Path:
    h = hashlib.sha256()
    for f in REFERENCE_SOURCES:
        h.update(f.read_bytes())
    return ROOT / "outputs" / "equivalence-cache" / h.hexdigest()[:12]


def _reference_window(args):
    name, policy, seed = args
    return seed, sim.simulate(te.CONFIGS[name][0], [policy], seed, engine="reference")[0]


def reference_rows(cases, seeds, pool) -> dict[tuple[str, str], list[dict]]:
    """The reference's rows for each case at `seeds`, computing (and caching) the missing ones."""
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, policy in cases:
        f = d / f"{name}-{policy}.pkl"
        params = repr(te.CONFIGS[name][0])
        cached = pickle.loads(f.read_bytes()) if f.exists() else {"params": params, "rows": {}}
        if cached["params"] != params:         # the test's configuration changed
            cached = {"params": params, "rows": {}}
        missing = [s for s in seeds if s not in cached["rows"]]
        if missing:
            print(f"   reference {name}/{policy}: {len(missing)} windows to run", flush=True)
            cached["rows"].update(pool.map(_reference_window, [(name, policy, s) for s in missing], chunksize=1))
            tmp = f.with_suffix(".tmp")
            tmp.write_bytes(pickle.dumps(cached))
            os.replace(tmp, f)
        out[(name, policy)] = [cached["rows"][s] for s in seeds]
    return out


def _seed_range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", nargs="*", help="name/policy or name/* (default: every case)")
    ap.add_argument("--ref-seeds", default=f"{te.REF_SEEDS[0]}-{te.REF_SEEDS[-1]}")
    ap.add_argument("--fast", type=int, default=len(te.FAST_SEEDS), help="fast windows (the test's seeds if equal)")
    ap.add_argument("--table", action="store_true", help="every metric, not only those outside")
    a = ap.parse_args(argv)
    every = [(n, p) for n, (_, pols) in te.CONFIGS.items() for p in pols]
    cases = [c for c in every if not a.cases or any(x in (f"{c[0]}/{c[1]}", f"{c[0]}/*") for x in a.cases)]
    seeds = _seed_range(a.ref_seeds)
    fast_seeds = list(te.FAST_SEEDS) if a.fast == len(te.FAST_SEEDS) else list(range(1000, 1000 + a.fast))
    with Pool(2) as pool:
        refs = reference_rows(cases, seeds, pool)
    n_bad = 0
    for name, policy in cases:
        params = te.CONFIGS[name][0]
        fast = [r[0] for r in sim.simulate_batch([(params, s) for s in fast_seeds], [policy])]
        rows = te.judge(params, refs[(name, policy)], fast)
        bad = [r for r in rows if not r[4]]
        n_bad += bool(bad)
        print(f"== {name}/{policy}: {len(bad)} outside")
        if a.table:
            print(te.table(rows))
            continue
        for k, rm, hw, fm, _ in sorted(bad, key=lambda r: -abs(r[3] - r[1]) / max(abs(r[1]), 1e-300)):
            gap = (fm - rm) / abs(rm) if rm else np.inf
            print(f"   {k:30} reference {rm:.4g} +-{'exact' if hw is None else f'{hw:.3g}'} fast {fm:.4g} ({gap:+.2%})")
    print(f"cases outside: {n_bad} of {len(cases)} ({len(seeds)} reference windows, {len(fast_seeds)} fast)")


if __name__ == "__main__":
    main()
