"""Every figure: title, axis labels with units, legend, a non-empty PNG; single-valued axes drawn, not refused."""

from __future__ import annotations

import re

import pytest
from matplotlib.text import Text

from migrc_sweep.analysis import (cost_attribution, cost_attribution_figure, load_dataset, payoff, payoff_map_figure,
                                  price, price_figure, seed_comparison, seed_comparison_figure, sensitivity_figure)

UNIT = re.compile(r"\[[^\]]+\]")


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def build(name: str, df):
    long = payoff(df)
    return {
        "payoff_map": lambda: payoff_map_figure(long),
        "seed_comparison": lambda: seed_comparison_figure(seed_comparison(df)),
        "cost_attribution": lambda: cost_attribution_figure(cost_attribution(df)),
        "price": lambda: price_figure(price(df)),
        "sensitivity": lambda: sensitivity_figure(long),
    }[name]()


def check_figure(fig, path):
    title = fig.get_suptitle() or next((ax.get_title() for ax in fig.axes if ax.get_title()), "")
    assert title, "figure has no title"
    plot_axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert plot_axes
    for ax in plot_axes:
        x, y = ax.get_xlabel(), ax.get_ylabel()
        assert x and y, f"unlabelled axes in {title!r}"
        assert UNIT.search(x) and UNIT.search(y), f"axis labels without units: {x!r}, {y!r}"
    legends = list(fig.legends) + [ax.get_legend() for ax in plot_axes if ax.get_legend() is not None]
    assert legends, f"no legend in {title!r}"
    assert all(lg.get_texts() for lg in legends)
    all_text = texts(fig)
    for label in [title, *(ax.get_xlabel() for ax in plot_axes), *(ax.get_ylabel() for ax in plot_axes)]:
        assert label in all_text  # present in what is drawn, not just set on an object
    fig.savefig(path, dpi=60)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    return all_text


FIGURES = ["payoff_map", "seed_comparison", "cost_attribution", "price", "sensitivity"]


@pytest.mark.parametrize("name", FIGURES)
def test_figure_on_the_map_sweep(map_dataset, tmp_path, name):
    fig = build(name, load_dataset(map_dataset))
    all_text = check_figure(fig, tmp_path / f"{name}.png")
    if name == "payoff_map":
        assert any("break-even" in t for t in all_text)
        assert {"8 CPUs, KVM guest", "32 CPUs, bare metal"} <= set(all_text)  # faceted by CPUs and guest
        assert any("slow-tier latency [ns]" == t for t in all_text)
        assert any("reclaim pressure [MiB/s]" == t for t in all_text)
    if name == "sensitivity":  # the map sweep holds the workload fixed: drawn, and said so
        assert sum("single value in this sweep" in t for t in all_text) == 3


@pytest.mark.parametrize("name", FIGURES)
def test_figure_on_the_sensitivity_sweep(sensitivity_dataset, tmp_path, name):
    fig = build(name, load_dataset(sensitivity_dataset))
    all_text = check_figure(fig, tmp_path / f"{name}.png")
    if name == "payoff_map":  # one latency and one pressure: a single cell per facet, said in the title
        assert "single slow-tier latency" in fig.get_suptitle()
    if name == "sensitivity":
        assert not any("single value" in t for t in all_text)
        assert "write fraction (write-fault rate) [fraction]" in all_text


def test_payoff_map_draws_the_contour_where_the_payoff_crosses_its_level(map_dataset, tmp_path):
    """In a guest at 90 ns migrc saves 4.1-4.3 % without reclaim pressure and 3.7-3.9 % at 3 MiB/s
    (the batches that catch a fresh, written page flush at once): the -4 % contour must be drawn
    between them. (At 3 MiB/s migrc still saves everywhere, so the 0 % line is not crossed; it
    turns into a loss only at hundreds of MiB/s.)"""
    long = payoff(load_dataset(map_dataset))
    fig = payoff_map_figure(long, policy="migrc", x="machine.num_cpus", y="reclaim.extra_alloc_mib_per_s",
                            col="memory.slow_latency_ns", row="machine.is_guest", level_pct=-4.0)
    check_figure(fig, tmp_path / "hold.png")
    assert any(ax.collections and any(type(c).__name__ == "QuadContourSet" or "Contour" in type(c).__name__
                                      for c in ax.collections) for ax in fig.axes)
    assert "not crossed" not in " ".join(texts(fig))
