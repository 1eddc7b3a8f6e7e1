"""The five seaborn figures of "when does migrc pay off?". Frames in, Figures out; callers save them.

Every figure carries a title, axis labels with units and a legend, and draws
whatever is there when an axis has a single value (its title says so) instead
of failing: a sweep over one axis is still worth looking at.
"""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")  # headless by construction: the report and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from sim.params import GROUPS  # noqa: E402

from .payoff import DEFAULT_BASELINE, varying_axes  # noqa: E402

MAP_X = "memory.slow_latency_ns"
MAP_Y = "reclaim.extra_alloc_mib_per_s"
MAP_COL = "machine.num_cpus"
MAP_ROW = "machine.is_guest"
SENSITIVITY_AXES = ("workload.read_only_fraction", "workload.large_folio_fraction", "workload.write_fraction")
COST_COMPONENTS = ("interrupt_s", "initiator_wait_s", "tlb_walk_s", "copy_s")

NAMES = {
    "memory.slow_latency_ns": "slow-tier latency",
    "reclaim.extra_alloc_mib_per_s": "reclaim pressure",
    "machine.num_cpus": "CPUs",
    "machine.is_guest": "guest",
    "workload.read_only_fraction": "read-only fraction",
    "workload.large_folio_fraction": "THP (2 MiB folio) fraction",
    "workload.write_fraction": "write fraction (write-fault rate)",
}
COMPONENT_NAMES = {
    "interrupt_s": "shootdown IRQs on targets (interrupt_s)",
    "initiator_wait_s": "initiator waiting for acks (initiator_wait_s)",
    "tlb_walk_s": "TLB refill walks (tlb_walk_s)",
    "copy_s": "migration copies (copy_s)",
    "other": "work + memory stall",
}
PRICE_PANELS = (  # (title, metrics, unit)
    ("pending pages", ("pending_pages_mean", "pending_pages_peak"), "pages"),
    ("memory held until the flush (migrc_hold)", ("held_mib_mean", "held_mib_peak"), "MiB"),
    ("stale window: unmap to flush", ("stale_window_us_p50", "stale_window_us_p99", "stale_window_us_mean"), "µs"),
    ("flush time paid on the allocation path", ("alloc_flush_ns_per_s",), "ns/s"),
    ("deferred flushes forced by allocation", ("deferred_flush_alloc",), "flushes"),
)


def unit_of(column: str) -> str | None:
    group, _, name = column.partition(".")
    cls = GROUPS.get(group)
    for f in dataclasses.fields(cls) if cls else ():
        if f.name == name:
            return f.metadata["unit"]
    return None


def axis_label(column: str) -> str:
    """'memory.slow_latency_ns' -> 'slow-tier latency [ns]', the unit from sim's field metadata."""
    unit = unit_of(column)
    name = NAMES.get(column, column)
    return f"{name} [{unit}]" if unit else name


def _value_text(column: str, value) -> str:
    if column == "machine.is_guest":
        return "KVM guest" if bool(value) else "bare metal"
    if column == "machine.num_cpus":
        return f"{value:g} CPUs"
    unit = unit_of(column)
    text = f"{value:g}" if isinstance(value, (int, float, np.number)) else str(value)
    return f"{NAMES.get(column, column)} = {text}" + (f" {unit}" if unit not in (None, "fraction", "bool") else "")


def _values(df: pd.DataFrame, column: str) -> list:
    if column not in df.columns or df[column].dropna().empty:
        return [None]  # one facet, so an empty selection still yields a labelled figure
    return sorted(df[column].dropna().unique().tolist())


def _measure(long: pd.DataFrame, measure: str, policy: str | None = None) -> pd.DataFrame:
    data = long[long["measure"] == measure]
    return data if policy is None else data[data["policy"] == policy]


def _theme():
    sns.set_theme(style="whitegrid", context="notebook")


def _crossings(values: np.ndarray) -> list[float]:
    """Fractional positions where a 1-D profile crosses zero, by linear interpolation."""
    out = []
    for i in range(len(values) - 1):
        a, b = values[i], values[i + 1]
        if np.isfinite(a) and np.isfinite(b) and (a < 0) != (b < 0) and a != b:
            out.append(i + a / (a - b))
    return out


def payoff_map_figure(long: pd.DataFrame, policy: str = "migrc", baseline: str = DEFAULT_BASELINE,
                      x: str = MAP_X, y: str = MAP_Y, col: str = MAP_COL, row: str = MAP_ROW,
                      level_pct: float = 0.0) -> Figure:
    """Runtime change of `policy` over slow-tier latency x reclaim pressure, faceted by CPUs and guest/bare
    metal, with the break-even (0 %) contour, or the contour of another runtime change (`level_pct`,
    e.g. -1: where the policy stops saving at least 1 %). Cells average over any other varying axis."""
    _theme()
    data = _measure(long, "runtime_change_pct", policy)
    notes = []
    others = [a for a in varying_axes(data) if a not in (x, y, col, row)]
    if others:
        notes.append("cells average over " + ", ".join(NAMES.get(a, a) for a in others))
    for a in (x, y):
        if a not in data.columns or data[a].nunique() < 2:
            notes.append(f"single {NAMES.get(a, a)}: no contour, break-even marked along the other axis")
    rows, cols = _values(data, row), _values(data, col)
    fig, axes = plt.subplots(len(rows), len(cols), squeeze=False, layout="constrained",
                             figsize=(4.2 * len(cols) + 1.5, 3.6 * len(rows) + 1.2))
    finite = data["mean_pct"].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    limit = max(float(np.abs(finite).max()) if finite.size else 1.0, 1e-3)
    norm, cmap = Normalize(-limit, limit), "RdBu_r"  # blue = policy faster; shared so panels compare
    drew_break_even = False
    for i, rv in enumerate(rows):
        for j, cv in enumerate(cols):
            ax = axes[i][j]
            cell = data
            if rv is not None:
                cell = cell[cell[row] == rv]
            if cv is not None:
                cell = cell[cell[col] == cv]
            facet = ", ".join(_value_text(c, v) for c, v in ((col, cv), (row, rv)) if v is not None)
            ax.set_title(facet or "all points", fontsize=10)
            ax.set_xlabel(axis_label(x))
            ax.set_ylabel(axis_label(y))
            if cell.empty:
                ax.text(0.5, 0.5, "no points in this facet", ha="center", va="center", transform=ax.transAxes)
                continue
            grid = cell.groupby([y, x], observed=True)["mean_pct"].mean().unstack(x)
            grid = grid.sort_index(ascending=False)  # pressure grows upwards, as on a map
            sns.heatmap(grid, ax=ax, cmap=cmap, vmin=-limit, vmax=limit, cbar=False, annot=True, fmt=".1f",
                        annot_kws={"fontsize": 8}, linewidths=0.5, linecolor="white")
            ax.set_xticklabels([f"{v:g}" for v in grid.columns], rotation=0)
            ax.set_yticklabels([f"{v:g}" for v in grid.index], rotation=0)
            ax.set_xlabel(axis_label(x))
            ax.set_ylabel(axis_label(y))
            z = grid.to_numpy(dtype=float)
            ny, nx = z.shape
            if ny >= 2 and nx >= 2:
                if np.nanmin(z) < level_pct < np.nanmax(z):
                    ax.contour(np.arange(nx) + 0.5, np.arange(ny) + 0.5, z, levels=[level_pct], colors="black",
                               linewidths=2)
                    drew_break_even = True
            else:
                line = z.ravel() - level_pct
                for pos in _crossings(line):
                    drew_break_even = True
                    if nx >= 2:
                        ax.axvline(pos + 0.5, color="black", linewidth=2)
                    else:
                        ax.axhline(ny - (pos + 0.5), color="black", linewidth=2)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.8,
                 label=f"runtime change vs {baseline} [%]  (<0: {policy} faster)")
    label = ("break-even: 0 % runtime change" if level_pct == 0 else f"{level_pct:g} % runtime change") \
        + ("" if drew_break_even else " (not crossed in this sweep)")
    fig.legend(handles=[Line2D([0], [0], color="black", linewidth=2, label=label)], loc="outside lower center",
               title="contour", fontsize=8)
    fig.suptitle(f"Where {policy} pays off: runtime change vs {baseline} [%] (mean over seeds)"
                 + ("\n" + "; ".join(notes) if notes else ""))
    return fig


def seed_comparison_figure(comparison: pd.DataFrame) -> Figure:
    """Simulated vs measured change of each counter of the seed's table, side by side."""
    _theme()
    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    policy = comparison["policy"].iloc[0] if len(comparison) else "migrc"
    baseline = comparison["baseline"].iloc[0] if len(comparison) else DEFAULT_BASELINE
    sim_label, seed_label = f"simulated {policy} (95% CI over seeds)", "measured (seed: migrc v9, XSBench)"
    tidy = pd.concat([
        pd.DataFrame({"metric": comparison["metric"], "source": sim_label,
                      "change_pct": comparison["simulated_change_pct"]}),
        pd.DataFrame({"metric": comparison["metric"], "source": seed_label,
                      "change_pct": comparison["measured_change_pct"]}),
    ], ignore_index=True)
    if comparison.empty:
        ax.text(0.5, 0.5, f"no {policy} rows paired with {baseline}", ha="center", va="center",
                transform=ax.transAxes)
        ax.bar([], [], label=seed_label)
    else:
        sns.barplot(data=tidy, x="metric", y="change_pct", hue="source", hue_order=[sim_label, seed_label], ax=ax,
                    errorbar=None)
    if ax.containers and len(comparison):
        bars = ax.containers[0]
        centres = [b.get_x() + b.get_width() / 2 for b in bars]
        mean = comparison["simulated_change_pct"].to_numpy(dtype=float)
        lo = comparison["simulated_ci_low_pct"].to_numpy(dtype=float)
        hi = comparison["simulated_ci_high_pct"].to_numpy(dtype=float)
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            ax.errorbar(np.array(centres)[ok], mean[ok], yerr=[mean[ok] - lo[ok], hi[ok] - mean[ok]], fmt="none",
                        ecolor="black", capsize=3)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("counter of the seed's table [perf/vmstat name; runtime in s, throughput in lookups/s]")
    ax.set_ylabel(f"change {policy} vs {baseline} [%]  (after/before - 1)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(title="source")
    n = int(comparison["n_seeds"].max()) if len(comparison) else 0
    single = " - one seed: no CI" if n == 1 else ""
    ax.set_title(f"Counters vs the seed's measured table: {policy} against {baseline} "
                 f"at the point closest to the seed ({n} seeds{single})")
    return fig


def scenario_labels(frame: pd.DataFrame, axes: list[str]) -> pd.Series:
    """'CPUs = 16, KVM guest, ...' from the axes that vary; 'seed config' when none does."""
    if not axes:
        return pd.Series("the single point", index=frame.index)
    return frame.apply(lambda r: ", ".join(_value_text(a, r[a]) for a in axes), axis=1)


def cost_attribution_figure(costs: pd.DataFrame, max_scenarios: int = 12) -> Figure:
    """Per scenario and variant: CPU time saved per thread by component (baseline - variant)."""
    _theme()
    axes_varying = varying_axes(costs)
    data = costs.copy()
    data["scenario"] = scenario_labels(data, axes_varying)
    scenarios = list(dict.fromkeys(data["scenario"]))
    note = ""
    if len(scenarios) > max_scenarios:
        keep = [scenarios[int(i)] for i in np.linspace(0, len(scenarios) - 1, max_scenarios).round()]
        note = f" - {len(keep)} of {len(scenarios)} scenarios, evenly spaced"
        scenarios = list(dict.fromkeys(keep))
        data = data[data["scenario"].isin(scenarios)]
    if not axes_varying:
        note += " - one scenario in this sweep"
    shown = data[data["component"].isin(COST_COMPONENTS)].copy()
    other = data[~data["component"].isin(COST_COMPONENTS)].groupby(
        ["scenario", "policy"], sort=False, observed=True)["saved_s"].sum().reset_index()
    other["component"] = "other"
    shown = pd.concat([shown[["scenario", "policy", "component", "saved_s"]], other], ignore_index=True)
    shown["component"] = shown["component"].map(COMPONENT_NAMES)
    policies = sorted(data["policy"].unique()) or ["(none)"]
    baseline = data["baseline"].iloc[0] if len(data) else DEFAULT_BASELINE
    fig, axs = plt.subplots(1, len(policies), squeeze=False, sharey=True, layout="constrained",
                            figsize=(6 * len(policies) + 2, 0.55 * len(scenarios) * 1.6 + 2.5))
    for ax, pol in zip(axs[0], policies):
        sub = shown[shown["policy"] == pol]
        sns.barplot(data=sub, y="scenario", x="saved_s", hue="component", order=scenarios,
                    hue_order=list(COMPONENT_NAMES.values()), orient="h", ax=ax, errorbar=None)
        total = data[data["policy"] == pol].drop_duplicates("scenario").set_index("scenario")["runtime_saved_s"]
        total = total.reindex(scenarios)
        ax.scatter(total.to_numpy(), np.arange(len(scenarios)), marker="D", color="black", zorder=5,
                   label="runtime saved (sum of components)")
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel(f"CPU time saved per thread vs {baseline} [s]")
        ax.set_ylabel("scenario [swept config values]")
        ax.set_title(f"{pol} (>0: {pol} saves time)", fontsize=10)
        ax.legend(title="where the time goes", fontsize=8, loc="best")
    fig.suptitle(f"Cost attribution: where the saved time comes from (mean over seeds){note}")
    return fig


def price_figure(price: pd.DataFrame) -> Figure:
    """What deferral costs: pending pages, memory held, stale window, flushes on the allocation path."""
    _theme()
    fig, axs = plt.subplots(2, 3, layout="constrained", figsize=(15, 8.5))
    flat = axs.ravel()
    n_points = int(price.groupby(["policy", "metric"], observed=True).size().max()) if len(price) else 0
    policies = sorted(price["policy"].unique())
    for ax, (title, metrics, unit) in zip(flat, PRICE_PANELS):
        sub = price[price["metric"].isin(metrics)]
        sns.barplot(data=sub, x="policy", y="value", hue="metric", order=policies, hue_order=list(metrics), ax=ax,
                    errorbar=("pi", 100), capsize=0.1)
        values = sub["value"].to_numpy(dtype=float)
        if values.size and np.nanmax(values) > 0 and np.nanmax(values) / max(np.nanmin(values[values > 0]),
                                                                            1e-12) > 1e3:
            ax.set_yscale("symlog", linthresh=1.0)  # migrc_hold holds ~1e5 pages where migrc holds ~1e1
        ax.set_xlabel("variant [policy]")
        ax.set_ylabel(f"{title.split(':')[0]} [{unit}]")
        ax.set_title(title, fontsize=10)
        ax.legend(title="statistic", fontsize=8)
    flat[-1].remove()
    single = " - one point per variant: no spread" if n_points <= 1 else ""
    fig.suptitle("The price of deferring flushes (bars: mean over points, whiskers: min-max over points)"
                 + single)
    return fig


def sensitivity_figure(long: pd.DataFrame, axes: tuple[str, ...] = SENSITIVITY_AXES,
                       baseline: str = DEFAULT_BASELINE, measure: str = "runtime_change_pct") -> Figure:
    """Payoff vs read-only fraction, THP fraction and write-fault rate; band = range over the other axes."""
    _theme()
    data = _measure(long, measure)
    fig, axs = plt.subplots(1, len(axes), squeeze=False, sharey=True, layout="constrained",
                            figsize=(5 * len(axes) + 1, 4.5))
    policies = sorted(data["policy"].unique())
    for ax, axis in zip(axs[0], axes):
        title = NAMES.get(axis, axis)
        if axis not in data.columns or data.empty:
            ax.text(0.5, 0.5, f"{axis} not in the dataset", ha="center", va="center", transform=ax.transAxes)
            title += " (not in this dataset)"
            ax.plot([], [], label="no data")
        else:
            if data[axis].nunique() < 2:
                title += f" (single value in this sweep: {data[axis].iloc[0]:g})"
            sns.lineplot(data=data, x=axis, y="mean_pct", hue="policy", hue_order=policies, marker="o", ax=ax,
                         errorbar=("pi", 100))
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel(axis_label(axis))
        ax.set_ylabel(f"runtime change vs {baseline} [%]  (<0: variant faster)")
        ax.set_title(title, fontsize=10)
        ax.legend(title="variant", fontsize=8)
    fig.suptitle("Sensitivity: how the payoff moves with the workload "
                 "(line: mean over the other axes, band: their min-max)")
    return fig
