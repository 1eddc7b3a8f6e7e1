"""Figures from DataFrames; callers save them. Headless by construction."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sim.params import GROUPS  # noqa: E402


def axis_label(column: str) -> str:
    """'machine.num_cpus' -> 'machine.num_cpus [cpus]', from sim's own field metadata."""
    group, _, name = column.partition(".")
    cls = GROUPS.get(group)
    if cls is not None:
        for f in dataclasses.fields(cls):
            if f.name == name:
                return f"{column} [{f.metadata['unit']}]"
    return column


def payoff_figure(table: pd.DataFrame, baseline: str, x: str | None, hue: str | None) -> Figure:
    """Runtime change of each variant vs the baseline (negative = variant faster)."""
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    data = table.copy()
    variants = sorted(data["policy"].unique())
    if x is None:
        sns.barplot(data=data, x="policy", y="runtime_change_pct", ax=ax, errorbar=None)
        ax.set_xlabel("variant")
    else:
        hue_col = hue or "policy"
        if hue_col != "policy":
            data[hue_col] = data[hue_col].astype(str)  # categorical legend, not a colour bar
        style = "policy" if hue_col != "policy" and len(variants) > 1 else None
        sns.lineplot(data=data, x=x, y="runtime_change_pct", hue=hue_col, style=style, marker="o", ax=ax,
                     errorbar=None)
        ax.set_xlabel(axis_label(x))
        ax.legend(title=axis_label(hue_col) if hue_col != "policy" else "variant")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylabel(f"runtime change vs {baseline} [%]  (<0: faster)")
    ax.set_title(f"When does {', '.join(variants)} pay off against {baseline}?")
    return fig
