"""Fit the simulator's free physical parameters to the seed's table.

The fit is staged because the parameters separate cleanly:

1. `reclaim.numa_scan_period_ms` sets how fast the scanner promotes, hence the
   kswapd demotion volume and the number of flush batches. It is fitted so the
   baseline's shootdown rate matches BEFORE (shootdowns per second of runtime).
2. Given the flush tally, the runtime *ratio* AFTER/BEFORE depends only on what
   a flush costs, so `machine.walk_2d_factor` is fitted to the runtime change;
   then `workload.memory_parallelism` scales BEFORE's lookups/s onto the
   measured one.
3. Each counter is base_rate x work + per_flush x full flushes, so its two
   workload parameters follow exactly from BEFORE and AFTER (e.g. dTLB load
   misses give random_pages_per_unit and load_hot_pages).

What is *not* fitted is what the calibration is judged on: the shootdown and
iTLB-flush reductions come from the kswapd/pcp dynamics alone. Every fitted
value must land inside its plausible range, or the fit is refused and nothing is
written. The objective is documented in docs/calibration.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import yaml

import sim
from sim.engine import account, lane_arrays, simulate_flushes
from sim.params import build_params

from . import seed_table

# key -> (lo, hi, source); the plausible range every fitted value must respect
RANGES = {
    "reclaim.numa_scan_period_ms": (1000.0, 60000.0, "kernel scan_period_min/max (mechanism.md 4.1)"),
    "machine.walk_2d_factor": (1.2, 6.0, "costs.md 3: 2D walk x1.2-x6 of a native walk"),
    "workload.memory_parallelism": (1.0, 16.0, "[assumption] L1D fill buffers bound outstanding misses"),
    "workload.random_pages_per_unit": (10.0, 400.0, "mechanism.md 5: ~22 search steps + up to 321 nuclides"),
    "workload.load_hot_pages": (1.0, 2144.0, "at most the dTLB + STLB entries"),
    "workload.store_hot_pages": (0.0, 2144.0, "at most the dTLB + STLB entries"),
    "workload.code_hot_pages": (1.0, 2304.0, "at most the iTLB + STLB entries"),
    "workload.itlb_misses_per_unit": (0.0, 10.0, "[assumption] small code footprint"),
    "workload.store_misses_per_unit": (0.0, 10.0, "[assumption] stores go to a small private set"),
    "machine.itlb_flush_events_per_flush": (1.0, 4.0, "1 per flush, 2 with KPTI's user and kernel PCIDs"),
    "machine.dtlb_thread_events_per_flush": (1.0, 16.0, "[assumption] one per dTLB partition flushed"),
    "machine.stlb_any_events_per_flush": (1.0, 16.0, "[assumption] one per STLB partition flushed"),
    "machine.background_dtlb_thread_per_cpu_s": (0.0, 1e5, "[assumption] kernel single-page flushes"),
    "machine.background_stlb_any_per_cpu_s": (0.0, 1e5, "[assumption] kernel single-page flushes"),
}
POLICIES = ("batched", "migrc")
FIT_WINDOW_S = 2.0
REQUIRED_METRICS = ("tlb_shootdowns", "runtime_s", "dtlb_load_misses", "dtlb_store_misses", "itlb_load_misses",
                    "itlb_flush", "dtlb_thread_flush", "stlb_any_flush")


def seed_target() -> dict:
    """The seed's run: the sim defaults are its 16-vCPU guest and XSBench -t 16 -p 5e7."""
    return {"config": {"workload": {"cpu_utilization": seed_table.CPU_UTILIZATION[0] / 16}},
            "measured": {k: list(v) for k, v in seed_table.MEASURED.items()},
            "units": seed_table.LOOKUPS, "source": seed_table.SOURCE}


def load_target(path: Path) -> dict:
    """A measured run to fit: {config: {group: {key: value}}, measured: {metric: [before, after]}, units, source}."""
    doc = yaml.safe_load(Path(path).read_text())
    missing = [m for m in REQUIRED_METRICS if m not in doc.get("measured", {})]
    if missing:
        raise ValueError(f"{path}: measured is missing {missing}")
    return doc


def _config(target: dict, window_s: float = FIT_WINDOW_S) -> dict:
    cfg = {g: dict(v) for g, v in target.get("config", {}).items()}
    cfg["fidelity"] = {"window_s": window_s, "warmup_s": 0.2}
    return cfg


def _params(cfg: dict, values: dict) -> sim.SimParams:
    groups = {g: dict(v) for g, v in cfg.items()}
    for key, val in values.items():
        g, k = key.split(".")
        groups.setdefault(g, {})[k] = float(val)
    return build_params(groups)


def _bisect(fn, lo, hi, target, iters=40, log=True):
    """x in [lo, hi] with fn(x) == target, fn monotone; the nearer bound if out of reach."""
    f_lo, f_hi = fn(lo) - target, fn(hi) - target
    if f_lo * f_hi > 0:
        return lo if abs(f_lo) < abs(f_hi) else hi
    a, b = (math.log(lo), math.log(hi)) if log else (lo, hi)
    for _ in range(iters):
        m = (a + b) / 2
        f_m = fn(math.exp(m) if log else m) - target
        if (f_m > 0) == (f_lo > 0):
            a, f_lo = m, f_m
        else:
            b = m
    m = (a + b) / 2
    return math.exp(m) if log else m


def _run(cfg, values, seeds=(0,)):
    p = _params(cfg, values)
    lanes = [p] * (len(POLICIES) * len(seeds))
    pols = [pol for _ in seeds for pol in POLICIES]
    sds = [s for s in seeds for _ in POLICIES]
    L = lane_arrays(lanes)
    return L, pols, simulate_flushes(L, sds, pols)


def fit(target: dict | None = None, seed: int = 0, verbose=print) -> dict:
    target = target or seed_target()
    cfg = _config(target)
    meas = {k: tuple(v) for k, v in target["measured"].items()}
    runtime_b, runtime_a = meas["runtime_s"]
    values = {k: getattr(getattr(sim.SimParams(), k.split(".")[0]), k.split(".")[1]) for k in RANGES}

    # 1. scan period <- baseline shootdowns per second
    target_rate = meas["tlb_shootdowns"][0] / runtime_b

    def shootdown_rate(period_ms):
        L, pols, tally = _run(_config(target, window_s=1.0),
                              {**values, "reclaim.numa_scan_period_ms": period_ms}, seeds=(seed,))
        rows = account(L, pols, tally)
        return rows[0]["tlb_shootdowns"] / rows[0]["runtime_s"]

    lo, hi = RANGES["reclaim.numa_scan_period_ms"][:2]
    values["reclaim.numa_scan_period_ms"] = _bisect(lambda x: -shootdown_rate(x), lo, hi, -target_rate, iters=14)
    verbose(f"scan period {values['reclaim.numa_scan_period_ms']:.0f} ms")

    L, pols, tally = _run(cfg, values, seeds=(seed,))
    for _ in range(4):
        _fit_counters(cfg, values, L, pols, tally, meas, float(target["units"]))
        _fit_time(cfg, values, pols, tally, runtime_b, runtime_a)
    return values


def _reprice(cfg, values, pols, tally):
    p = _params(cfg, values)
    return account(lane_arrays([p] * len(pols)), pols, tally)


def _fit_time(cfg, values, pols, tally, runtime_b, runtime_a):
    def ratio(walk):
        rows = _reprice(cfg, {**values, "machine.walk_2d_factor": walk}, pols, tally)
        return rows[1]["runtime_s"] / rows[0]["runtime_s"]

    lo, hi = RANGES["machine.walk_2d_factor"][:2]
    values["machine.walk_2d_factor"] = _bisect(lambda w: -ratio(w), lo, hi, -runtime_a / runtime_b, log=False)

    def runtime_before(mlp):
        return _reprice(cfg, {**values, "workload.memory_parallelism": mlp}, pols, tally)[0]["runtime_s"]

    lo, hi = RANGES["workload.memory_parallelism"][:2]
    values["workload.memory_parallelism"] = _bisect(lambda m: -runtime_before(m), lo, hi, -runtime_b)


def _fit_counters(cfg, values, L, pols, tally, meas, units):
    rows = _reprice(cfg, values, pols, tally)
    full = [r["tlb_full_flushes"] for r in rows]          # full flushes summed over CPUs
    runtime = [r["runtime_s"] for r in rows]
    num_cpus = float(L["machine.num_cpus"][0])
    miss = rows[0]["dtlb_load_misses"] - full[0] * min(values["workload.load_hot_pages"], 2144)
    miss_per_page = miss / units / values["workload.random_pages_per_unit"]

    def two_point(metric):  # m = base + per_flush * full, from BEFORE and AFTER
        (mb, ma), d_full = meas[metric], full[0] - full[1]
        per_flush = (mb - ma) / d_full
        return mb - per_flush * full[0], per_flush

    base, values["workload.load_hot_pages"] = two_point("dtlb_load_misses")
    values["workload.random_pages_per_unit"] = base / units / miss_per_page
    base, values["workload.store_hot_pages"] = two_point("dtlb_store_misses")
    values["workload.store_misses_per_unit"] = base / units
    base, values["workload.code_hot_pages"] = two_point("itlb_load_misses")
    values["workload.itlb_misses_per_unit"] = base / units
    values["machine.itlb_flush_events_per_flush"] = math.exp(np.mean(
        [math.log(m / f) for m, f in zip(meas["itlb_flush"], full)]))
    for metric, ev, bg in (("dtlb_thread_flush", "dtlb_thread_events_per_flush", "background_dtlb_thread_per_cpu_s"),
                           ("stlb_any_flush", "stlb_any_events_per_flush", "background_stlb_any_per_cpu_s")):
        # m = k * full + bg * cpus * runtime, two equations in (k, bg)
        a = np.array([[full[0], num_cpus * runtime[0]], [full[1], num_cpus * runtime[1]]])
        k, b = np.linalg.solve(a, np.array(meas[metric], dtype=float))
        values[f"machine.{ev}"], values[f"machine.{bg}"] = k, b


def check_ranges(values: dict) -> list[str]:
    bad = []
    for key, val in values.items():
        lo, hi, src = RANGES[key]
        if not (lo <= val <= hi) or not math.isfinite(val):
            bad.append(f"{key}={val:.4g}: outside its plausible range [{lo:g}, {hi:g}] ({src})")
    return bad


def compare(values: dict, target: dict | None = None, seeds=(0, 1, 2)) -> list[dict]:
    """Measured vs simulated BEFORE, AFTER and change %, with a 95% CI over seeds."""
    target = target or seed_target()
    p = _params(_config(target), values)
    per_seed = [sim.simulate(p, list(POLICIES), s) for s in seeds]
    return side_by_side([r[0] for r in per_seed], [r[1] for r in per_seed], target["measured"])


def side_by_side(before_rows: list[dict], after_rows: list[dict], measured: dict) -> list[dict]:
    """Rows of the side-by-side report from paired replicates (same seed, BEFORE and AFTER policy).

    The CI is a t-interval of the per-seed paired change, so common random
    numbers make it tight.
    """
    from migrc_sweep.analysis.student_t import t_critical
    n = len(before_rows)
    out = []
    for metric, (mb, ma) in measured.items():
        before = np.array([r[metric] for r in before_rows], dtype=float)
        after = np.array([r[metric] for r in after_rows], dtype=float)
        change = 100 * (after / before - 1)
        half = t_critical(0.95, n - 1) * change.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
        out.append(dict(metric=metric, measured_before=mb, measured_after=ma,
                        measured_change_pct=100 * (ma / mb - 1), sim_before=float(before.mean()),
                        sim_after=float(after.mean()), sim_change_pct=float(change.mean()), sim_change_ci95=half))
    return out


def write_calibration(path: Path, values: dict, table: list[dict], source: str) -> None:
    by_group: dict[str, dict] = {}
    for key, val in values.items():
        g, k = key.split(".")
        by_group.setdefault(g, {})[k] = float(f"{val:.6g}")
    doc = {
        "source": source,
        "objective": "staged exact fit, see docs/calibration.md",
        "sim_version": sim.__version__,
        **by_group,
        "ranges": {k: {"lo": lo, "hi": hi, "source": src} for k, (lo, hi, src) in RANGES.items()},
        "residuals": {r["metric"]: {"measured_change_pct": round(r["measured_change_pct"], 3),
                                    "sim_change_pct": round(r["sim_change_pct"], 3),
                                    "sim_before": float(f"{r['sim_before']:.6g}"),
                                    "measured_before": r["measured_before"]} for r in table},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# Written by migrc-calibrate; do not edit by hand.\n" + yaml.safe_dump(doc, sort_keys=False))
    tmp.replace(path)


def format_table(table: list[dict]) -> str:
    lines = [f"{'counter':<20}{'BEFORE meas':>16}{'BEFORE sim':>16}{'AFTER meas':>16}{'AFTER sim':>16}"
             f"{'chg meas %':>12}{'chg sim %':>12}{'CI95':>8}"]
    for r in table:
        lines.append(f"{r['metric']:<20}{r['measured_before']:>16.4g}{r['sim_before']:>16.4g}"
                     f"{r['measured_after']:>16.4g}{r['sim_after']:>16.4g}{r['measured_change_pct']:>12.2f}"
                     f"{r['sim_change_pct']:>12.2f}{r['sim_change_ci95']:>8.2f}")
    return "\n".join(lines)


def default_path() -> Path:
    return Path(__file__).resolve().parent.parent / "conf" / "calibration" / "seed_v9.yaml"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="migrc-calibrate", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=default_path(), help="calibration file to write")
    ap.add_argument("--target", type=Path, help="YAML of a measured run to fit (default: the seed's table)")
    ap.add_argument("--dry-run", action="store_true", help="fit and report, write nothing")
    args = ap.parse_args(argv)
    try:
        target = load_target(args.target) if args.target else seed_target()
        _params(_config(target), {})  # a bad target config is the user's error, not the fit's
    except (ValueError, OSError) as exc:
        print(f"migrc-calibrate: {exc}", file=sys.stderr)
        return 2
    try:
        values = fit(target, verbose=lambda s: print(s, file=sys.stderr))
    except sim.ParamError as exc:  # a fitted value the simulator itself cannot take
        print(f"refusing the fit: {exc}", file=sys.stderr)
        return 1
    bad = check_ranges(values)
    table = compare(values, target)
    print(format_table(table))
    for k, v in values.items():
        print(f"  {k} = {v:.6g}")
    if bad:
        print("refusing the fit: " + "; ".join(bad), file=sys.stderr)
        return 1
    if not args.dry_run:
        write_calibration(args.out, values, table, target.get("source", str(args.target)))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
