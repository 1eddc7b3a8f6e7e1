"""The progress line counts points done, failed and running, and extrapolates an ETA."""

import io

from migrc_sweep.orchestrate import ProgressLine
from migrc_sweep.tasks import BatchSummary


def _summary(points, failed):
    return BatchSummary(batch_id="b" * 20, num_points=points, num_rows=2 * points, num_failed=failed,
                        path="-", wall_s=0.1, ray_node_id=None, num_failed_points=failed)


def test_counts_accumulate_in_completion_order_and_the_eta_reaches_zero():
    out = io.StringIO()
    ticks = iter([0.0, 8.0, 16.0, 20.0])   # the sweep starts, then three batches finish
    line = ProgressLine(total_points=10, stream=out, clock=lambda: next(ticks))
    line(1, 3, _summary(4, 0), running=2)
    line(2, 3, _summary(4, 1), running=1)
    line(3, 3, _summary(2, 0), running=0)
    rows = out.getvalue().splitlines()   # not a terminal: one line per update
    assert len(rows) == 3
    assert "4/10 points done, 0 failed, 2 batches running (1/3 batches)" in rows[0]
    assert "8/10 points done, 1 failed, 1 batches running (2/3 batches)" in rows[1]
    assert rows[0].endswith("ETA 12 s")   # 4 points in 8 s, 6 to go
    assert rows[1].endswith("ETA 4 s")    # 8 points in 16 s, 2 to go
    assert rows[2].endswith("10/10 points done, 1 failed, 0 batches running (3/3 batches), ETA 0 s")
