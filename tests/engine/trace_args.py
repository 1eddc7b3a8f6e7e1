"""The command line the trace_* diagnostics share: an equivalence case, a policy, and a
range of reference seeds (`--seeds 0-7`)."""

from __future__ import annotations

import argparse


def parse(argv=None, seeds="0-7", seeds_help=None):
    """(case, policy, [seeds]) from `case policy [--seeds LO-HI]`."""
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("policy")
    ap.add_argument("--seeds", default=seeds, help=seeds_help)
    a = ap.parse_args(argv)
    lo, _, hi = a.seeds.partition("-")
    return a.case, a.policy, list(range(int(lo), int(hi or lo) + 1))
