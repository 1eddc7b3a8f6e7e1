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

MAX_TASK_RETRIES = 3
# progress(batches done, batches in all, the batch just finished, batches running now)
Progress = Callable[[int, int, BatchSummary, int], None]
# What a task does with its batch: run_batch (simulate, write one file). Any function with the same
# signature can stand in, e.g. benchmarks/bench_orchestration.py's engine-free runner.
Runner = Callable[..., BatchSummary]


class TooManyFailures(RuntimeError):
    """More points failed than max_failed_fraction allows; the rest of the sweep was cancelled.

    What finished is stored (failed points as status=failed rows), so fixing the cause and
    re-running the same command computes only what is missing or failed.
    """


class FailureBudget:
    """Counts failed points as batches finish; trips once they exceed the allowed fraction."""

    def __init__(self, total_points: int, max_failed_fraction: float):
        self.total, self.fraction = total_points, max_failed_fraction
        self.failed, self.first_error = 0, None

    def add(self, summary: BatchSummary) -> None:
        self.failed += summary.num_failed_points
        self.first_error = self.first_error or summary.first_error
        if self.failed > self.fraction * self.total:
            raise TooManyFailures(
                f"stopped: {self.failed} of {self.total} points failed, more than max_failed_fraction="
                f"{self.fraction:g} allows; first error: {self.first_error}")


class ProgressLine:
    """Points done, failed and running, with an ETA, in completion order.

    On a terminal the line is rewritten in place; in a log, each update is a line.
    The ETA extrapolates the points finished so far over the elapsed time.
    """

    def __init__(self, total_points: int, stream=None, clock=time.perf_counter):
        self.total_points, self.stream, self.clock = total_points, stream or sys.stderr, clock
        self.start = clock()
        self.points = self.failed = 0
        self.live = self.stream.isatty()

    def __call__(self, done: int, total: int, summary: BatchSummary, running: int = 0) -> None:
        self.points += summary.num_points
        self.failed += summary.num_failed_points
        elapsed = self.clock() - self.start
        left = self.total_points - self.points
        eta = f"{elapsed / self.points * left:.0f} s" if self.points and left else "0 s"
        width = 20
        bar = "#" * round(width * self.points / max(self.total_points, 1))
        line = (f"  [{bar:<{width}}] {self.points}/{self.total_points} points done, {self.failed} failed, "
                f"{running} batches running ({done}/{total} batches), ETA {eta}")
        end = "" if self.live and done < total else "\n"
        print(("\r" if self.live else "") + line, end=end, file=self.stream, flush=True)


def print_progress(done: int, total: int, summary: BatchSummary, running: int = 0) -> None:
    """One line per batch, for callers that did not set up a ProgressLine."""
    failed = f", {summary.num_failed_points} failed" if summary.num_failed_points else ""
    print(f"  [{done}/{total}] batch {summary.batch_id[:8]}: {summary.num_points} points"
          f"{failed} in {summary.wall_s:.1f} s, {running} running", file=sys.stderr, flush=True)


def use_ray(settings: Settings, num_batches: int) -> bool:
    if settings.executor == "auto":
        return num_batches > 1 or settings.ray_address is not None
    return settings.executor == "ray"


def run_inline(batches: list[Batch], budget: FailureBudget, progress: Progress = print_progress,
               runner: Runner = run_batch) -> list[BatchSummary]:
    out = []
    for i, batch in enumerate(batches):
        out.append(runner(batch))
        progress(i + 1, len(batches), out[-1], 0)
        budget.add(out[-1])
    return out


def task_attempt() -> int:
    """Ray's attempt number of the running task: 0 first, n after n retries (worker or node died).

    Ray 2.60 has no public accessor; the core worker's is the number Ray itself uses for retry
    bookkeeping, so it is right even when a retry lands on another node. -1 if that accessor disappears.
    """
    import ray
    worker = ray._private.worker.global_worker
    try:
        return int(worker.core_worker.get_current_task_attempt_number())
    except AttributeError:  # pragma: no cover - a future Ray renamed it
        return -1


def _remote_run(batch: Batch, runner: Runner) -> BatchSummary:
    import ray
    return runner(batch, ray_node_id=ray.get_runtime_context().get_node_id(), attempt=task_attempt())


def run_on_ray(batches: list[Batch], settings: Settings, budget: FailureBudget,
               progress: Progress = print_progress, runner: Runner = run_batch) -> list[BatchSummary]:
    with ray_session.session(settings.ray_address, settings.ray_num_cpus, settings.ray_dir) as what:
        import ray
        print(f"running {len(batches)} tasks on {what}", file=sys.stderr, flush=True)
        # Retries cover dead workers and nodes; a point that raises is a failed row, not a task error.
        remote = ray.remote(num_cpus=1, max_retries=MAX_TASK_RETRIES)(_remote_run)
        runner_ref = ray.put(runner)
        refs = [remote.remote(b, runner_ref) for b in batches]
        slots = max(int(ray.cluster_resources().get("CPU", 1)), 1)   # tasks take one CPU each
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[BatchSummary | None] = [None] * len(refs)
        pending, done = list(refs), 0
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            if pending:   # collect everything else that is ready too: one wait per completion is O(n^2)
                more, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
                ready += more
            for ref, summary in zip(ready, ray.get(ready)):
                results[index[ref]] = summary
                done += 1
                progress(done, len(refs), summary, min(len(pending), slots))
                try:
                    budget.add(summary)
                except TooManyFailures:
                    for other in pending:   # an existing cluster keeps running what we leave behind
                        ray.cancel(other)
                    raise
        return [r for r in results if r is not None]


def run_batches(batches: list[Batch], settings: Settings, progress: Progress | None = None,
                runner: Runner = run_batch) -> list[BatchSummary]:
    if not batches:
        return []
    start = time.perf_counter()
    total_points = sum(len(b.points) for b in batches)
    progress = progress or ProgressLine(total_points)
    budget = FailureBudget(total_points, settings.max_failed_fraction)
    if use_ray(settings, len(batches)):
        out = run_on_ray(batches, settings, budget, progress, runner)
    else:
        out = run_inline(batches, budget, progress, runner)
    print(f"simulated {sum(s.num_points for s in out)} points in {time.perf_counter() - start:.1f} s",
          file=sys.stderr, flush=True)
    return out
