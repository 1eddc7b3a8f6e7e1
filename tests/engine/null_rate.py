"""How often would a perfect fast engine fail the equivalence test? The fast engine in both roles.

    MIGRC_EQUIVALENCE=all python tests/engine/null_rate.py [--reps 10]

Each repetition gives every case of test_equivalence.py two disjoint sets of the fast
engine's seeds: as many as the test's reference windows in the reference's place, as
many as its fast windows in the fast engine's, and judges them with the test's own
`judge`. Both sides come from one model, so every failure is a false one: the count
is what chance alone makes the test fail, to set against its real failures. Takes
about 6 s a repetition on one core.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_equivalence as te  # noqa: E402  (the test's configurations and verdicts)

import sim  # noqa: E402


def failing_cases(first_seed: int) -> dict[tuple[str, str], list[str]]:
    """The cases whose two disjoint fast-engine seed sets from `first_seed` disagree, with their metrics."""
    n_ref, n_fast = len(te.REF_SEEDS), len(te.FAST_SEEDS)
    seeds = list(range(first_seed, first_seed + n_ref + n_fast))
    bad = {}
    for name, (params, policies) in te.CONFIGS.items():
        for pol in policies:
            rows = [r[0] for r in sim.simulate_batch([(params, s) for s in seeds], [pol])]
            verdict = te.judge(params, rows[:n_ref], rows[n_ref:])
            out = [k for k, *_, ok in verdict if not ok]
            if out:
                bad[(name, pol)] = out
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args(argv)
    n_cases = sum(len(p) for _, p in te.CONFIGS.values())
    counts = []
    for rep in range(a.reps):
        # far from the test's own seeds (0-23 reference, 100-195 fast)
        bad = failing_cases(10_000 + 1_000 * rep)
        counts.append(len(bad))
        worst = ", ".join(f"{n}/{p} ({len(m)})" for (n, p), m in sorted(bad.items(), key=lambda x: -len(x[1]))[:4])
        print(f"rep {rep}: {len(bad)} of {n_cases} cases fail" + (f"; most metrics: {worst}" if bad else ""),
              flush=True)
    c = np.array(counts)
    print(f"false failures per run of the full set: mean {c.mean():.1f}, median {np.median(c):.0f}, "
          f"range {c.min()}-{c.max()} ({a.reps} repetitions)")


if __name__ == "__main__":
    main()
