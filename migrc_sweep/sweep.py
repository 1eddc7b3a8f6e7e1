"""One sweep, end to end: plan and validate, skip what is stored, run the rest, report.

Both entry points land here: a single run (`run(cfg)` in cli.py) and a multirun grid
(the migrc_ray Hydra launcher), so the CLI and the grid share one engine.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from migrc_sweep import orchestrate, provenance, store
from migrc_sweep.points import Plan, Point, build_plan, sim_version
from migrc_sweep.tasks import Batch, BatchSummary, batch_id


MAX_HUE_LEVELS = 12


@dataclass(frozen=True)
class SweepResult:
    sweep_id: str
    requested_points: int
    present_points: int
    run_points: int
    failed_rows: int
    dataset_dir: Path
    figure_path: Path | None
    summaries: tuple[BatchSummary, ...]


def resolve_sweep_id(plan: Plan) -> str:
    if plan.settings.sweep_id:
        return plan.settings.sweep_id
    digest = hashlib.sha256("".join(sorted(p.point_id for p in plan.points)).encode()).hexdigest()
    return f"adhoc-{digest[:12]}"


def _missing(points: list[Point], done: set[tuple[str, str]]) -> list[Point]:
    out = []
    for p in points:
        todo = tuple(pol for pol in p.policies if (p.point_id, pol) not in done)
        if todo:
            out.append(Point(p.point_id, p.params, p.engine, p.seed, p.replicate, todo, p.flat))
    return out


def make_batches(points: list[Point], plan: Plan, sweep_id: str) -> list[Batch]:
    """Group points that share (engine, policies), then chunk them: one Ray task per chunk."""
    groups: dict[tuple[str, tuple[str, ...]], list[Point]] = defaultdict(list)
    for p in points:
        groups[(p.engine, p.policies)].append(p)
    s = plan.settings
    workers = s.ray_num_cpus or os.cpu_count() or 1
    per_task = s.points_per_task or max(1, math.ceil(len(points) / (2 * workers)))
    commit, dirty = provenance.git_state()
    versions = provenance.package_versions()
    version = sim_version()
    batches = []
    for (engine, policies), pts in groups.items():
        for i in range(0, len(pts), per_task):
            chunk = tuple(pts[i:i + per_task])
            batches.append(Batch(batch_id(sweep_id, engine, policies, chunk), sweep_id, engine, policies, chunk,
                                 str(s.store_root), version, commit, dirty, versions))
    return batches


def report(plan: Plan, sweep_id: str) -> Path | None:
    """Print baseline vs variants per point and save the payoff figure; returns the PNG path."""
    from migrc_sweep import payoff
    wanted = {p.point_id for p in plan.points}
    df = store.read_results(plan.settings.store_root, sweep_id)
    df = df[df["point_id"].isin(wanted)]
    failed = df[df["status"] == "failed"]
    for _, row in failed.drop_duplicates("point_id").iterrows():
        print(f"failed point {row['point_id']}: {row['error']}", file=sys.stderr)
    baseline = plan.settings.baseline
    table = payoff.payoff_table(df, baseline)
    print(f"\n{', '.join(sorted(table['policy'].unique())) or 'no variant'} vs {baseline} "
          f"(sweep {sweep_id}, {len(wanted)} points):")
    print(payoff.format_table(table, baseline))
    if plan.settings.compare_to:
        print_side_by_side(df[df["status"] == "ok"], baseline, plan.settings.compare_to)
    if table.empty:
        return None
    from migrc_sweep import figures
    axes = [a for a in payoff.varying_axes(df) if a in table.columns]
    numeric = [a for a in axes if table[a].dtype.kind in "if"]
    x = max(numeric, key=lambda a: table[a].nunique()) if numeric else None
    # A hue needs a legend entry per level: past a dozen the legend swallows the plot.
    hue = next((a for a in axes if a != x and table[a].nunique() <= MAX_HUE_LEVELS), None)
    fig = figures.payoff_figure(table, baseline, x, hue)
    out = plan.settings.figures_dir / sweep_id / "payoff.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    import matplotlib.pyplot as plt
    plt.close(fig)
    print(f"figure: {out}")
    return out


def print_side_by_side(df, baseline: str, table_name: str) -> None:
    """Measured BEFORE/AFTER/change next to the simulated ones, per variant, CI over seeds."""
    from migrc_sweep import calibrate, seed_table
    measured = {"seed_v9": seed_table.MEASURED}[table_name]
    base = df[df["policy"] == baseline].set_index(["point_id", "seed"])
    for variant in sorted(set(df["policy"]) - {baseline}):
        var = df[df["policy"] == variant].set_index(["point_id", "seed"])
        both = base.index.intersection(var.index)
        rows = calibrate.side_by_side(base.loc[both].to_dict("records"), var.loc[both].to_dict("records"), measured)
        print(f"\n{table_name}: measured (BEFORE {baseline}, AFTER {variant}) vs simulated, {len(both)} replicates:")
        print(calibrate.format_table(rows))


def run_sweep(configs: list[dict]) -> SweepResult:
    """configs: one resolved plain dict per grid point (no hydra node)."""
    plan = build_plan(configs)
    sweep_id = resolve_sweep_id(plan)
    root = plan.settings.store_root
    for path, why in store.damaged_parts(root, sweep_id):
        if plan.settings.dry_run:
            print(f"damaged part file {path} ({why}): its points will be recomputed", file=sys.stderr)
        else:
            moved = store.quarantine(root, path)
            print(f"damaged part file {path} ({why}): moved to {moved}, its points will be recomputed",
                  file=sys.stderr)
    done = store.completed(root, sweep_id)
    todo = _missing(plan.points, done)
    present = len(plan.points) - len(todo)
    print(f"sweep {sweep_id}: requested {len(plan.points)} points, present {present}, to run {len(todo)}"
          f" -> {store.partition_dir(root, sweep_id)}", flush=True)
    if plan.settings.dry_run:
        return SweepResult(sweep_id, len(plan.points), present, 0, 0, store.partition_dir(root, sweep_id),
                           None, ())
    batches = make_batches(todo, plan, sweep_id)
    summaries = orchestrate.run_batches(batches, plan.settings)
    unseen = [s.path for s in summaries if not Path(s.path).is_file()]
    if unseen:   # workers on other nodes wrote to a path that is not shared with this driver
        print(f"{len(unseen)} of {len(summaries)} part files written by workers are not visible at {root} "
              f"on this machine (e.g. {unseen[0]}): store.root must be a shared filesystem (docs/cluster.md)",
              file=sys.stderr)
    figure = report(plan, sweep_id)
    return SweepResult(sweep_id, len(plan.points), present, len(todo), sum(s.num_failed for s in summaries),
                       store.partition_dir(root, sweep_id), figure, tuple(summaries))
