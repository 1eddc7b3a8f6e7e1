"""Shared set-up of the benchmark scripts: the seed experiment's parameters and machine facts."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import sim  # noqa: E402
from sim.params import GROUPS, build_params  # noqa: E402

CALIBRATION = REPO / "conf" / "calibration" / "seed_v9.yaml"
SEED_COUNTERS = ("itlb_flush", "dtlb_thread_flush", "stlb_any_flush", "dtlb_load_misses", "dtlb_store_misses",
                 "itlb_load_misses", "tlb_shootdowns")


def seed_params(**fidelity) -> sim.SimParams:
    """SimParams() with the seed_v9 calibration's group/key values applied (and optional fidelity overrides)."""
    cal = yaml.safe_load(CALIBRATION.read_text())
    groups = {g: dict(cal[g]) for g in GROUPS if isinstance(cal.get(g), dict)}
    if fidelity:
        groups["fidelity"] = {**groups.get("fidelity", {}), **fidelity}
    return build_params(groups)


def pin_one_core() -> int:
    """Run this process on one CPU, so figures are per core on a shared machine."""
    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    return cpu


def machine() -> dict:
    def lscpu(field):
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.split(":")[0].strip() == field:
                return line.split(":", 1)[1].strip()
        return "?"
    import numba
    import numpy
    return {"cpu": lscpu("Model name"), "cores": lscpu("CPU(s)"), "python": platform.python_version(),
            "numpy": numpy.__version__, "numba": numba.__version__}


# Student-t quantiles (two-sided 95% and 99%) by degrees of freedom; no scipy in the runtime deps.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t975(df: int) -> float:
    """t quantile for a 95% two-sided interval; the next lower tabulated df (conservative)."""
    return _T975[max(k for k in _T975 if k <= df)] if df < 1000 else 1.960
