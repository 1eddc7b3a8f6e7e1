"""Does the variant pay off at each point? Baseline vs variant, as frame transforms."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.params import GROUPS

PARAM_COLUMNS_PREFIXES = tuple(f"{g}." for g in GROUPS)


def varying_axes(df: pd.DataFrame) -> list[str]:
    """Config columns that take more than one value: the axes the sweep actually moved."""
    cols = [c for c in df.columns if c.startswith(PARAM_COLUMNS_PREFIXES) or c == "engine"]
    return [c for c in cols if df[c].nunique(dropna=False) > 1]


def payoff_table(df: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """One row per (point, variant): runtime change and shootdown reduction against the baseline."""
    ok = df[df["status"] == "ok"]
    axes = varying_axes(df)
    base = ok[ok["policy"] == baseline].set_index("point_id")[["runtime_s", "tlb_shootdowns"]]
    var = ok[ok["policy"] != baseline]
    merged = var.join(base, on="point_id", rsuffix="_baseline", how="inner")
    out = merged[["point_id", *axes, "replicate", "policy"]].copy()
    out["runtime_change_pct"] = (merged["runtime_s"] / merged["runtime_s_baseline"] - 1.0) * 100.0
    shootdowns_base = merged["tlb_shootdowns_baseline"].replace(0.0, np.nan)
    out["shootdown_reduction_pct"] = (1.0 - merged["tlb_shootdowns"] / shootdowns_base) * 100.0
    return out.sort_values([*axes, "policy", "replicate"], kind="stable").reset_index(drop=True)


def format_table(table: pd.DataFrame, baseline: str) -> str:
    if table.empty:
        return f"(no variant to compare with {baseline})"
    shown = table.drop(columns=["point_id"]).rename(columns={
        "runtime_change_pct": "runtime change %", "shootdown_reduction_pct": "shootdowns cut %",
        "policy": "variant"})
    if shown["replicate"].nunique() == 1:
        shown = shown.drop(columns=["replicate"])
    for col in ("runtime change %", "shootdowns cut %"):
        shown[col] = shown[col].map(lambda v: f"{v:+.2f}")
    return shown.to_string(index=False)
