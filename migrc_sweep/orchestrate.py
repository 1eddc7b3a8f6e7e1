"""Fan batches out: the only module that imports ray.

Batches are submitted all at once and reported in completion order (ray.wait), then
returned in submission order so callers can zip them with their inputs.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

from migrc_sweep import ray_session
from migrc_sweep.points import Settings
from migrc_sweep.tasks import Batch, BatchSummary, run_batch

Progress = Callable[[int, int, BatchSummary], None]


def print_progress(done: int, total: int, summary: BatchSummary) -> None:
    failed = f", {summary.num_failed} failed" if summary.num_failed else ""
    print(f"  [{done}/{total}] batch {summary.batch_id[:8]}: {summary.num_points} points"
          f"{failed} in {summary.wall_s:.1f} s", file=sys.stderr, flush=True)


def use_ray(settings: Settings, num_batches: int) -> bool:
    if settings.executor == "auto":
        return num_batches > 1 or settings.ray_address is not None
    return settings.executor == "ray"


def run_inline(batches: list[Batch], progress: Progress = print_progress) -> list[BatchSummary]:
    out = []
    for i, batch in enumerate(batches):
        out.append(run_batch(batch))
        progress(i + 1, len(batches), out[-1])
    return out


def _remote_run(batch: Batch) -> BatchSummary:
    import ray
    return run_batch(batch, ray_node_id=ray.get_runtime_context().get_node_id())


def run_on_ray(batches: list[Batch], settings: Settings, progress: Progress = print_progress) -> list[BatchSummary]:
    with ray_session.session(settings.ray_address, settings.ray_num_cpus, settings.ray_dir) as what:
        import ray
        print(f"running {len(batches)} tasks on {what}", file=sys.stderr, flush=True)
        remote = ray.remote(num_cpus=1, max_retries=2)(_remote_run)
        refs = [remote.remote(b) for b in batches]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[BatchSummary | None] = [None] * len(refs)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                results[index[ref]] = ray.get(ref)
                progress(sum(r is not None for r in results), len(refs), results[index[ref]])
        return [r for r in results if r is not None]


def run_batches(batches: list[Batch], settings: Settings, progress: Progress = print_progress) -> list[BatchSummary]:
    if not batches:
        return []
    start = time.perf_counter()
    out = run_on_ray(batches, settings, progress) if use_ray(settings, len(batches)) else run_inline(batches, progress)
    print(f"simulated {sum(s.num_points for s in out)} points in {time.perf_counter() - start:.1f} s",
          file=sys.stderr, flush=True)
    return out
