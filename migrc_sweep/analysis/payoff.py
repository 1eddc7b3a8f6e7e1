"""Does a variant pay off against its baseline? Paired, per seed, with t-intervals.

A point is one configuration (every config column, the engine and the sweep);
its replicates are the same point under different seeds. Each variant row is
paired with the baseline row of the same point and seed, so the seed's noise
cancels in the per-seed ratio variant/baseline; the interval is a t-interval
over those ratios, NaN when a point has only one replicate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from migrc_sweep import seed_table
from sim.params import SimParams, as_flat_dict

from .load import PARAM_COLUMNS, PARTITION_KEY
from .student_t import t_critical

DEFAULT_BASELINE = "batched"
CONFIDENCE = 0.95

# measure column -> (metric, kind). "change" = 100 (variant/baseline - 1): runtime < 0 is
# faster. "reduction" = 100 (1 - variant/baseline): > 0 means the variant did less of it.
MEASURES = {
    "runtime_change_pct": ("runtime_s", "change"),
    "throughput_change_pct": ("throughput_per_s", "change"),
    "shootdowns_reduction_pct": ("tlb_shootdowns", "reduction"),
    "remote_flushes_reduction_pct": ("nr_tlb_remote_flush", "reduction"),
    "itlb_flush_reduction_pct": ("itlb_flush", "reduction"),
    "dtlb_thread_flush_reduction_pct": ("dtlb_thread_flush", "reduction"),
    "stlb_any_flush_reduction_pct": ("stlb_any_flush", "reduction"),
    "dtlb_load_misses_reduction_pct": ("dtlb_load_misses", "reduction"),
    "dtlb_store_misses_reduction_pct": ("dtlb_store_misses", "reduction"),
    "itlb_load_misses_reduction_pct": ("itlb_load_misses", "reduction"),
}

# Where runtime goes, in CPU-seconds per thread; the six add up to runtime_s.
TIME_COMPONENTS = ("interrupt_s", "initiator_wait_s", "tlb_walk_s", "copy_s", "work_s", "memory_stall_s")
PRICE_METRICS = ("pending_pages_mean", "pending_pages_peak", "held_mib_mean", "held_mib_peak",
                 "stale_window_us_p50", "stale_window_us_p99", "stale_window_us_mean",
                 "alloc_flush_ns_per_s", "deferred_flush_alloc")


def point_columns(df: pd.DataFrame) -> list[str]:
    """Columns that identify a point: partition, engine and every config value present."""
    return [c for c in (PARTITION_KEY, "engine", *PARAM_COLUMNS) if c in df.columns]


def varying_axes(df: pd.DataFrame) -> list[str]:
    """Config columns with more than one value: the axes the sweep moved."""
    return [c for c in PARAM_COLUMNS if c in df.columns and df[c].nunique(dropna=False) > 1]


def pair_with_baseline(df: pd.DataFrame, baseline: str = DEFAULT_BASELINE) -> pd.DataFrame:
    """One row per (point, seed, variant): the variant's metrics beside the baseline's (suffix `_baseline`).

    Only rows with status "ok" take part; every policy other than the baseline is a variant.
    """
    ok = df[df["status"] == "ok"]
    keys = [*point_columns(df), "seed"]
    # A partition column arrives as a categorical; merging on its codes would need equal categories.
    base = ok[ok["policy"] == baseline].drop_duplicates(keys, keep="last")
    var = ok[ok["policy"] != baseline].drop_duplicates([*keys, "policy"], keep="last")
    metric_cols = [c for c in df.columns if c in _metric_names()]
    merged = var[[*keys, "policy", *metric_cols]].merge(
        base[[*keys, *metric_cols]], on=keys, how="inner", suffixes=("", "_baseline"))
    # copy() first: the wide merge leaves a fragmented frame that pandas warns about on insert.
    merged = merged.copy()
    merged.insert(merged.columns.get_loc("policy") + 1, "baseline", baseline)
    return merged.sort_values([*keys, "policy"], kind="stable").reset_index(drop=True)


def _metric_names() -> set[str]:
    from sim.metrics import ALL_METRICS
    return set(ALL_METRICS)


def ratio_stats(ratios: np.ndarray, confidence: float = CONFIDENCE) -> tuple[int, float, float, float]:
    """(n, mean, ci_low, ci_high) of per-seed ratios; non-finite ratios (0/0) are left out."""
    r = np.asarray(ratios, dtype="float64")
    r = r[np.isfinite(r)]
    n = len(r)
    if n == 0:
        return 0, math.nan, math.nan, math.nan
    mean = float(r.mean())
    if n == 1:
        return 1, mean, math.nan, math.nan
    half = t_critical(confidence, n - 1) * float(r.std(ddof=1)) / math.sqrt(n)
    return n, mean, mean - half, mean + half


def _to_pct(kind: str, mean: float, lo: float, hi: float) -> tuple[float, float, float]:
    if kind == "change":
        return 100 * (mean - 1), 100 * (lo - 1), 100 * (hi - 1)
    return 100 * (1 - mean), 100 * (1 - hi), 100 * (1 - lo)  # a reduction flips the bounds


def payoff(df: pd.DataFrame, baseline: str = DEFAULT_BASELINE, confidence: float = CONFIDENCE,
           measures: dict | None = None) -> pd.DataFrame:
    """Long table: one row per (point, variant, measure) with n_seeds, mean_pct, ci_low_pct, ci_high_pct."""
    measures = MEASURES if measures is None else measures
    pairs = pair_with_baseline(df, baseline)
    keys = [*point_columns(df), "policy", "baseline"]
    rows = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for key, grp in pairs.groupby(keys, sort=True, observed=True, dropna=False):
            for measure, (metric, kind) in measures.items():
                ratios = grp[metric].to_numpy() / grp[f"{metric}_baseline"].to_numpy()
                n, mean, lo, hi = ratio_stats(ratios, confidence)
                mean_pct, lo_pct, hi_pct = _to_pct(kind, mean, lo, hi)
                rows.append({**dict(zip(keys, key)), "measure": measure, "metric": metric, "n_seeds": n,
                             "mean_pct": mean_pct, "ci_low_pct": lo_pct, "ci_high_pct": hi_pct})
    out = pd.DataFrame(rows, columns=[*keys, "measure", "metric", "n_seeds", "mean_pct", "ci_low_pct",
                                      "ci_high_pct"])
    return _restore_dtypes(out, df)


def _restore_dtypes(out: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    for col in out.columns:
        if col in like.columns and len(out):
            out[col] = out[col].astype(like[col].dtype)
    return out


def payoff_wide(long: pd.DataFrame) -> pd.DataFrame:
    """One row per (point, variant); columns `<measure>`, `<measure>_ci_low`, `<measure>_ci_high`."""
    keys = [c for c in long.columns if c not in ("measure", "metric", "n_seeds", "mean_pct", "ci_low_pct",
                                                  "ci_high_pct")]
    # pivot, not pivot_table: with dropna=False (needed to keep NaN intervals) pivot_table would
    # build the cartesian product of the index levels and invent points that were never run.
    wide = long.pivot(index=keys, columns="measure", values=["mean_pct", "ci_low_pct", "ci_high_pct"])
    n = long.groupby(keys, observed=True, sort=False)["n_seeds"].max()
    columns = {"n_seeds": n.reindex(wide.index).to_numpy()}
    for measure in long["measure"].unique():
        columns[measure] = wide[("mean_pct", measure)].to_numpy()
        columns[f"{measure}_ci_low"] = wide[("ci_low_pct", measure)].to_numpy()
        columns[f"{measure}_ci_high"] = wide[("ci_high_pct", measure)].to_numpy()
    flat = pd.DataFrame(columns, index=wide.index).sort_index()
    return _restore_dtypes(flat.reset_index(), long)


def closest_to_seed(points: pd.DataFrame) -> pd.Series:
    """The row whose config agrees with the seed's (sim defaults) on the most config columns."""
    seed_cfg = as_flat_dict(SimParams())
    cols = [c for c in PARAM_COLUMNS if c in points.columns and not c.startswith("fidelity.")]
    agree = sum((points[c] == seed_cfg[c]).astype(int) for c in cols)
    return points.loc[agree.idxmax()]


def seed_comparison(df: pd.DataFrame, variant: str = "migrc", baseline: str = DEFAULT_BASELINE,
                    confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Simulated vs measured change (after/before - 1, %) for each metric of the seed's table.

    The simulated side is the point closest to the seed's configuration; `point_id`
    and the config columns say which one.
    """
    pairs = pair_with_baseline(df, baseline)
    pairs = pairs[pairs["policy"] == variant]
    cols = ["metric", "simulated_change_pct", "simulated_ci_low_pct", "simulated_ci_high_pct",
            "measured_change_pct", "n_seeds", "policy", "baseline"]
    if pairs.empty:
        return pd.DataFrame(columns=cols)
    chosen = closest_to_seed(pairs)
    keys = point_columns(df)
    at = pairs[(pairs[keys] == chosen[keys]).all(axis=1)]
    rows = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for metric in seed_table.MEASURED:
            n, mean, lo, hi = ratio_stats(at[metric].to_numpy() / at[f"{metric}_baseline"].to_numpy(), confidence)
            rows.append({"metric": metric, "simulated_change_pct": 100 * (mean - 1),
                         "simulated_ci_low_pct": 100 * (lo - 1), "simulated_ci_high_pct": 100 * (hi - 1),
                         "measured_change_pct": seed_table.change_pct(metric), "n_seeds": n,
                         "policy": variant, "baseline": baseline})
    out = pd.DataFrame(rows, columns=cols)
    for c in keys:
        out[c] = chosen[c]
    return out


def cost_attribution(df: pd.DataFrame, baseline: str = DEFAULT_BASELINE) -> pd.DataFrame:
    """Long table: per (point, variant, time component) the CPU-seconds per thread saved (baseline - variant).

    Mean over seeds; the components add up to the runtime saved.
    """
    pairs = pair_with_baseline(df, baseline)
    keys = [*point_columns(df), "policy", "baseline"]
    comps = [c for c in TIME_COMPONENTS if c in pairs.columns]
    diff = pairs[keys].copy()
    for c in comps:
        diff[c] = pairs[f"{c}_baseline"] - pairs[c]
    diff["runtime_s"] = pairs["runtime_s_baseline"] - pairs["runtime_s"]
    mean = diff.groupby(keys, observed=True, sort=True)[[*comps, "runtime_s"]].mean().reset_index()
    long = mean.melt(id_vars=[*keys, "runtime_s"], value_vars=comps, var_name="component", value_name="saved_s")
    long = long.rename(columns={"runtime_s": "runtime_saved_s"})
    return _restore_dtypes(long, df)


def price(df: pd.DataFrame, baseline: str = DEFAULT_BASELINE) -> pd.DataFrame:
    """Long table: per (point, variant, price metric) the mean over seeds of what deferral costs."""
    ok = df[(df["status"] == "ok") & (df["policy"] != baseline)]
    keys = [*point_columns(df), "policy"]
    metrics = [m for m in PRICE_METRICS if m in ok.columns]
    mean = ok.groupby(keys, observed=True, sort=True)[metrics].mean().reset_index()
    n = ok.groupby(keys, observed=True, sort=True)["seed"].nunique().reset_index(name="n_seeds")
    mean = mean.merge(n, on=keys)
    long = mean.melt(id_vars=[*keys, "n_seeds"], value_vars=metrics, var_name="metric", value_name="value")
    return _restore_dtypes(long, df)
