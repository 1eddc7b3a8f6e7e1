"""How precise is the seed experiment at a given fidelity window? 95% CI half-widths over seeds.

    python benchmarks/fidelity.py [--seeds 20] [--windows 0.5 1 2]

For each window: the migrc-vs-batched runtime change (%) and each counter's
reduction (%), per seed (paired: both policies share the seed's draws), then the
Student-t 95% CI half-width of their mean over seeds. The issue's targets are
<= 1 percentage point on the runtime change and <= 2 on counter reductions.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import SEED_COUNTERS, seed_params, sim, t975


def changes(window: float, warmup: float, seeds) -> dict[str, np.ndarray]:
    p = seed_params(window_s=window, warmup_s=warmup)
    rows = sim.simulate_batch([(p, s) for s in seeds], ["batched", "migrc"])
    out = {}
    for k in ("runtime_s",) + SEED_COUNTERS:
        out[k] = np.array([(m[k] / b[k] - 1) * 100 for b, m in rows])
    return out


def half_width(x: np.ndarray, single: bool = False) -> float:
    """95% half-width of the mean over seeds, or (single) of one seed's value (prediction interval)."""
    n = len(x)
    scale = np.sqrt(1 + 1 / n) if single else 1 / np.sqrt(n)
    return float(t975(n - 1) * x.std(ddof=1) * scale)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--windows", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 4.0])
    ap.add_argument("--warmup", type=float, default=0.1)
    a = ap.parse_args(argv)
    seeds = range(1000, 1000 + a.seeds)
    keys = ("runtime_s",) + SEED_COUNTERS
    print(f"seed experiment (SimParams + seed_v9 calibration), {a.seeds} seeds, warmup {a.warmup} s")
    print("cells: mean change %, 95% CI half-width of that mean / of a single seed's run, bias vs the longest window"
          " (percentage points)")
    res = {w: changes(w, a.warmup, seeds) for w in sorted(a.windows)}
    ref = res[max(res)]
    print(f"{'window_s':>8} " + " ".join(f"{k[:17]:>30}" for k in keys) + "  verdict (mean / single run)")
    for w, ch in res.items():
        cells = [f"{ch[k].mean():8.3f} {half_width(ch[k]):5.3f}/{half_width(ch[k], True):5.3f} {ch[k].mean() - ref[k].mean():+6.3f}"
                 for k in keys]
        verdict = []
        for single in (False, True):
            ok = half_width(ch["runtime_s"], single) <= 1.0 and max(half_width(ch[k], single) for k in SEED_COUNTERS) <= 2.0
            verdict.append("meets" if ok else "MISSES")
        print(f"{w:8.2f} " + " ".join(f"{c:>30}" for c in cells) + "  " + " / ".join(verdict))


if __name__ == "__main__":
    main()
