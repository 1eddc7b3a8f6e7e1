"""migrc-report DATASET [--out DIR]: a self-contained HTML report of a sweep.

Figures are embedded as base64 PNG and tables are inline, so the single file can
be mailed, attached to an issue or opened from CI artefacts without its dataset.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from migrc_sweep import analysis, seed_table  # noqa: E402
from migrc_sweep.analysis.figures import unit_of  # noqa: E402
from migrc_sweep.analysis.load import PARAM_COLUMNS, PROVENANCE_COLUMNS  # noqa: E402
from migrc_sweep.analysis.payoff import point_columns  # noqa: E402

REPORT_NAME = "migrc_report.html"
FIGURE_CAPTIONS = {
    "payoff_map": "Payoff map: runtime change over slow-tier latency x reclaim pressure; black line = break-even.",
    "seed_comparison": "Simulated vs measured counter changes at the point closest to the seed's configuration.",
    "cost_attribution": "Where the saved CPU time comes from, per scenario (baseline minus variant).",
    "price": "What deferral costs: pending pages, memory held, stale window, flushes on the allocation path.",
    "sensitivity": "Payoff vs read-only fraction, THP fraction and write fraction.",
}
PCT_FORMAT = "{:.4f}"

CSS = """
body { font-family: sans-serif; margin: 2em; max-width: 1400px; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; }
figure { margin: 1em 0 2em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
.note { color: #555; font-size: 13px; }
"""


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)  # the report builds five large figures; keep memory flat
    return buf.getvalue()


def _table(frame: pd.DataFrame, table_id: str) -> str:
    if frame.empty:
        return f'<p class="note" id="{table_id}-empty">(no rows)</p>'
    shown = frame.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            fmt = PCT_FORMAT if col.endswith(("_pct", "_ci_low", "_ci_high")) else "{:.6g}"
            shown[col] = shown[col].map(lambda v, f=fmt: "NaN" if pd.isna(v) else f.format(v))
    return shown.to_html(index=False, table_id=table_id, na_rep="NaN", escape=True, border=0)


def payoff_table(df: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per point x variant: every payoff measure with its CI; swept axes only, so it stays readable."""
    wide = analysis.payoff_wide(analysis.payoff(df, baseline))
    axes = analysis.varying_axes(df)
    keep = ["sweep_id", *axes, "policy", "baseline", "n_seeds"]
    measures = [c for c in wide.columns if c.endswith("_pct") or c.endswith(("_ci_low", "_ci_high"))]
    return wide[[c for c in keep if c in wide.columns] + measures]


def cost_table(df: pd.DataFrame, baseline: str) -> pd.DataFrame:
    costs = analysis.cost_attribution(df, baseline)
    keys = ["sweep_id", *analysis.varying_axes(df), "policy", "baseline", "runtime_saved_s"]
    keys = [k for k in keys if k in costs.columns]
    full_keys = [*point_columns(df), "policy", "baseline", "runtime_saved_s"]
    wide = costs.pivot_table(index=full_keys, columns="component", values="saved_s", observed=True,
                             sort=True).reset_index()
    wide.columns.name = None
    return wide[keys + [c for c in wide.columns if c not in full_keys]]


def price_table(df: pd.DataFrame, baseline: str) -> pd.DataFrame:
    pr = analysis.price(df, baseline)
    full_keys = [*point_columns(df), "policy", "n_seeds"]
    wide = pr.pivot_table(index=full_keys, columns="metric", values="value", observed=True,
                          sort=True).reset_index()
    wide.columns.name = None
    keys = [k for k in ["sweep_id", *analysis.varying_axes(df), "policy", "n_seeds"] if k in wide.columns]
    return wide[keys + [c for c in wide.columns if c not in full_keys]]


def config_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every config key with its unit and the values the sweep used (all of them when it varied)."""
    rows = []
    for col in [c for c in PARAM_COLUMNS if c in df.columns] + ["engine"]:
        if col not in df.columns:
            continue
        values = sorted(df[col].dropna().unique().tolist(), key=str) if col == "engine" else \
            sorted(df[col].dropna().unique().tolist())
        rows.append({"key": col, "unit": unit_of(col) or "", "n_values": len(values),
                     "values": ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)})
    return pd.DataFrame(rows).sort_values(["n_values", "key"], ascending=[False, True], kind="stable")


def provenance_table(df: pd.DataFrame, max_values: int = 5) -> pd.DataFrame:
    rows = []
    for col in ["sweep_id", *PROVENANCE_COLUMNS]:
        if col not in df.columns:
            continue
        values = df[col].dropna()
        if col in ("finished_at", "wall_s") and len(values):
            shown = f"{values.min()} .. {values.max()}"
        else:
            uniq = [str(v) for v in values.astype("str").unique()]
            shown = "; ".join(uniq[:max_values]) + (f"; ... ({len(uniq)} in all)" if len(uniq) > max_values else "")
        rows.append({"column": col, "n_distinct": int(values.nunique()), "values": shown})
    return pd.DataFrame(rows)


def status_table(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby(["sweep_id", "policy", "status"], observed=True).size().reset_index(name="rows")


def build_report(df: pd.DataFrame, source: str, baseline: str = "batched", policy: str = "migrc") -> str:
    """The whole report as one HTML string."""
    figures = analysis.all_figures(df, baseline, policy)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>migrc-sweep report: {html.escape(source)}"
             f"</title><style>{CSS}</style></head><body>",
             "<h1>When does migrc pay off?</h1>",
             f"<p class='note'>Dataset: <code>{html.escape(source)}</code> - {len(df)} rows, "
             f"{df['sweep_id'].nunique()} sweep(s), baseline <b>{html.escape(baseline)}</b> - generated "
             f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. Runtime change &lt; 0 means the variant is "
             f"faster; reductions &gt; 0 mean it did less of the counted event. Intervals: 95% t-intervals over "
             f"per-seed paired ratios (NaN with one seed).</p>",
             "<h2>Figures</h2>"]
    for name, fig in figures.items():
        data = base64.b64encode(figure_png(fig)).decode("ascii")
        parts.append(f"<figure id='fig-{name}'><img alt='{name}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(FIGURE_CAPTIONS[name])}</figcaption></figure>")
    failed = df[df["status"] != "ok"]
    sections = [
        ("Payoff per point and variant", payoff_table(df, baseline), "table-payoff"),
        (f"Counters vs the seed's table ({seed_table.SOURCE})", analysis.seed_comparison(df, policy, baseline),
         "table-seed"),
        ("Cost attribution: CPU time saved per thread [s]", cost_table(df, baseline), "table-cost"),
        ("The price of deferral (mean over seeds)", price_table(df, baseline), "table-price"),
        ("Rows by status", status_table(df), "table-status"),
        ("Failed rows", failed[[c for c in ("sweep_id", "point_id", "policy", "seed", "error")
                                if c in failed.columns]], "table-failed"),
        ("Sweep configuration", config_table(df), "table-config"),
        ("Provenance", provenance_table(df), "table-provenance"),
    ]
    for title, frame, table_id in sections:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(_table(frame, table_id))
    parts.append("</body></html>")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="migrc-report", description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="root of the hive-partitioned Parquet dataset")
    parser.add_argument("--out", type=Path, default=Path("outputs"), help="directory for the report (default: outputs/)")
    parser.add_argument("--sweep-id", default=None, help="only this sweep_id partition")
    parser.add_argument("--baseline", default="batched", help="policy every other policy is compared with")
    parser.add_argument("--policy", default="migrc", help="variant shown in the payoff map and seed comparison")
    args = parser.parse_args(argv)
    try:
        df = analysis.load_dataset(args.dataset, args.sweep_id)
    except FileNotFoundError as exc:
        print(f"migrc-report: {exc}", file=sys.stderr)
        return 2
    if df.empty:
        print(f"migrc-report: no rows in {args.dataset}", file=sys.stderr)
        return 2
    if not (df["policy"] == args.baseline).any():
        print(f"migrc-report: baseline policy {args.baseline!r} has no rows in {args.dataset}", file=sys.stderr)
        return 2
    variants = sorted(set(df.loc[df["policy"] != args.baseline, "policy"]))
    if args.policy not in variants and variants:
        # A sweep of, say, luf alone still deserves its map: show the first variant, and say so.
        print(f"migrc-report: no {args.policy!r} rows; showing {variants[0]!r} instead", file=sys.stderr)
        args.policy = variants[0]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / REPORT_NAME
    path.write_text(build_report(df, str(args.dataset), args.baseline, args.policy), encoding="utf-8")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
