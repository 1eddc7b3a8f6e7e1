"""Analysis of a migrc-sweep dataset: load, pair with the baseline, figure, find the break-even.

    >>> from migrc_sweep import analysis
    >>> df = analysis.load_dataset("outputs/dataset")
    >>> long = analysis.payoff(df)              # paired, per-seed ratios, t-intervals
    >>> figs = analysis.all_figures(df)         # name -> matplotlib Figure

Only `load_dataset` reads files; everything else is DataFrames in, DataFrames or figures out.
"""

from __future__ import annotations

from .batch_frame import batch_frame
from .figures import (axis_label, cost_attribution_figure, payoff_map_figure, price_figure,
                      seed_comparison_figure, sensitivity_figure)
from .frontier import FrontierResult, dense_frontier, find_frontier, simulator_evaluator
from .load import load_dataset, tidy
from .payoff import (MEASURES, cost_attribution, pair_with_baseline, payoff, payoff_wide, price,
                     seed_comparison, varying_axes)

__all__ = ["FrontierResult", "MEASURES", "all_figures", "axis_label", "batch_frame", "cost_attribution",
           "cost_attribution_figure", "dense_frontier", "find_frontier", "load_dataset", "pair_with_baseline",
           "payoff", "payoff_map_figure", "payoff_wide", "price", "price_figure", "seed_comparison",
           "seed_comparison_figure", "sensitivity_figure", "simulator_evaluator", "tidy", "varying_axes"]


def all_figures(df, baseline: str = "batched", policy: str = "migrc") -> dict:
    """The five figures of the report, by name, from a tidy dataset frame."""
    long = payoff(df, baseline)
    return {
        "payoff_map": payoff_map_figure(long, policy=policy, baseline=baseline),
        "seed_comparison": seed_comparison_figure(seed_comparison(df, policy, baseline)),
        "cost_attribution": cost_attribution_figure(cost_attribution(df, baseline)),
        "price": price_figure(price(df, baseline)),
        "sensitivity": sensitivity_figure(long, baseline=baseline),
    }
