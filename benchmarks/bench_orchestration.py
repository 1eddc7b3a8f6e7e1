"""What orchestration costs, and how a real sweep scales. Prints a table; not a test.

    python benchmarks/bench_orchestration.py                       # everything, 3 repeats
    python benchmarks/bench_orchestration.py --only a --repeats 5
    python benchmarks/bench_orchestration.py --stock-venv /tmp/hrl-venv   # include Hydra's stock Ray launcher

(a) Orchestration overhead per point, ENGINE-FREE. A fresh process composes the config with
    Hydra, expands a grid of N points the way our launcher does, validates them into a plan,
    starts a private Ray, runs every batch through the real task path (rows built, Parquet
    written atomically, summaries returned), reads the resume set back, and shuts Ray down. The
    one thing replaced is the simulator call: run_batch(simulate=...) gets a function that
    returns constant metrics. That parameter exists for this purpose only; the CLI never sets it.
    Side by side: Hydra's stock Ray launcher (hydra-ray-launcher) on a 200-job toy app whose job
    returns a constant. It needs a separate venv (--stock-venv) so the project's deps are not touched:
        python3 -m venv /tmp/hrl-venv && /tmp/hrl-venv/bin/pip install "ray==2.60.0" "hydra-core==1.3.*" hydra-ray-launcher
(b) A real 10,000-point sweep through the CLI on this machine (fidelity=tiny): wall time and the
    driver's peak RSS (psutil, sampled every 50 ms; Ray's own processes are not the driver).
(c) Scaling: the same sweep with ray.num_cpus=1 vs 2, timed over the tasks phase (first task
    submitted to last batch done; Ray's start and stop are fixed costs) and over the whole command.
    Only meaningful when nothing else runs: with other load on a 2-core box, 2 workers get < 2 cores.

The machine is shared: every figure is the median of --repeats runs, with the spread shown.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BIG_GRID = ["-m", "machine.num_cpus=range(1,101)", "workload.footprint_mib=range(1000,101000,1000)",
            "fidelity=tiny"]   # 100 x 100 = 10,000 points


# ----------------------------------------------------------------------------------------------
# (a) engine-free child: runs in its own process so that its wall time includes imports and Ray.

def constant_metrics(batch):
    """Stands in for sim.simulate_batch: one constant result per policy, no engine work."""
    from sim.metrics import ALL_METRICS
    return [[{"policy": pol, **{m: 1.0 for m in ALL_METRICS}} for pol in batch.policies] for _ in batch.points]


def engine_free_child(n_points: int, outputs: str) -> None:
    t = {"start": time.perf_counter()}
    from hydra import compose, initialize_config_dir

    from hydra_plugins.migrc_sweep_launcher.migrc_launcher import _with_value
    from migrc_sweep import orchestrate, store
    from migrc_sweep.cli import plain
    from migrc_sweep.confdir import config_dir
    from migrc_sweep.points import build_plan
    from migrc_sweep.sweep import make_batches, resolve_sweep_id
    from migrc_sweep.tasks import run_batch
    t["imports"] = time.perf_counter()

    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        base = plain(compose("config", overrides=["sweep=none", "fidelity=tiny", f"paths.outputs={outputs}",
                                                   "sweep_id=enginefree", f"max_points={max(n_points, 1)}"]))
    # The grid the launcher would build from machine.num_cpus=range(1,101) workload.footprint_mib=range(...),
    # by the same shortcut (a value set on the config resolved once).
    configs = [_with_value(_with_value(base, "machine.num_cpus", 1 + i % 100), "workload.footprint_mib",
                           1000 + 1000 * (i // 100)) for i in range(n_points)]
    t["compose"] = time.perf_counter()

    plan = build_plan(configs)
    sweep_id = resolve_sweep_id(plan)
    done = store.completed(plan.settings.store_root, sweep_id)
    batches = make_batches([p for p in plan.points if (p.point_id, p.policies[0]) not in done], plan, sweep_id)
    t["plan"] = time.perf_counter()

    runner = functools.partial(run_batch, simulate=constant_metrics)
    seen: list[float] = []
    orchestrate.run_batches(batches, plan.settings, progress=lambda *a: seen.append(time.perf_counter()),
                            runner=runner)
    t["ray_start+first_batch"] = seen[0]
    t["other_batches"] = seen[-1]
    t["ray_shutdown"] = time.perf_counter()
    stored = len(store.completed(plan.settings.store_root, sweep_id))
    t["resume_check"] = time.perf_counter()
    assert stored == n_points * len(plan.points[0].policies), stored
    names = list(t)
    print("PHASES " + " ".join(f"{b}={t[b] - t[a]:.4f}" for a, b in zip(names, names[1:])))
    print(f"BATCHES {len(batches)}")


def run_engine_free(n_points: int) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-ef-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--engine-free-child", str(n_points), tmp], env=env,
                             capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("PHASES "))
    phases = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    return wall, phases


STOCK_APP = textwrap.dedent("""
    import hydra

    @hydra.main(version_base="1.3", config_path=None, config_name=None)
    def main(cfg):
        return 1.0   # the job does nothing: what is left is the launcher's own cost
    if __name__ == "__main__":
        main()
""")


def run_stock(venv: Path, n_jobs: int) -> float:
    """Hydra's stock Ray launcher: n_jobs trivial jobs, local Ray with 2 CPUs and the dashboard off
    (the probe's fairest settings, notes §5 b), offline settings as for our own Ray."""
    with tempfile.TemporaryDirectory(prefix="bench-st-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "app.py").write_text(STOCK_APP)
        home = tmp_path / "home"
        home.mkdir()
        (home / "ray_bootstrap_config.yaml").write_text("provider: {type: local}\n")
        raytmp = Path(tempfile.mkdtemp(prefix="bst-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "PYTHON"))}
        env.update(HOME=str(home), RAY_TMPDIR=str(raytmp), RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
        cmd = [str(venv / "bin" / "python"), "app.py", "-m", "hydra/launcher=ray",
               "+hydra.launcher.ray.init.include_dashboard=false", "+hydra.launcher.ray.init.num_cpus=2",
               "+x=range(0,%d)" % n_jobs]
        start = time.perf_counter()
        out = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - start
        subprocess.run(["rm", "-rf", str(raytmp)])
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return wall


# ----------------------------------------------------------------------------------------------
# (b), (c): the real CLI on the 10,000-point grid.

def run_real_sweep(num_cpus: int) -> dict[str, float]:
    """Wall, the tasks phase (from 'running N tasks' to the last batch done, stamped as stderr lines
    arrive: no Ray start/stop in it), and the driver's peak RSS."""
    import threading

    import psutil
    with tempfile.TemporaryDirectory(prefix="bench-rs-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "HYDRA_FULL_ERROR")}
        env.update(MIGRC_SWEEP_OUTPUTS=str(Path(tmp) / "outputs"), MPLBACKEND="Agg")
        cmd = [sys.executable, "-m", "migrc_sweep", *BIG_GRID, f"ray.num_cpus={num_cpus}", "sweep_id=bench"]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stamped: list[tuple[float, str]] = []
        reader = threading.Thread(target=lambda: stamped.extend((time.perf_counter(), ln) for ln in proc.stderr))
        reader.start()
        driver, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            try:
                peak = max(peak, driver.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        reader.join()
        wall = time.perf_counter() - start
    err = "".join(ln for _, ln in stamped)
    if proc.returncode != 0:
        raise RuntimeError(err[-3000:])
    t_running = next(t for t, ln in stamped if ln.startswith("running "))
    t_last = max(t for t, ln in stamped if re.match(r"\s+\[(\d+)/\1\]", ln))
    return {"wall_s": wall, "tasks_s": t_last - t_running, "peak_rss_mib": peak / 2**20}


def cpu_ceiling(seconds_of_work: float = 2.0) -> float:
    """What this box gives 2 processes over 1 right now: the same fixed CPU-bound loop, once alone and
    twice in parallel; the 2-worker speed-up of a sweep cannot beat this under the current load."""
    code = "n = 0\nfor i in range(%d): n += i" % int(seconds_of_work * 2.5e7)

    def timed(k: int) -> float:
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(k)]
        for p in procs:
            p.wait()
        return time.perf_counter() - start
    one = timed(1)
    return 2 * one / timed(2)


# ----------------------------------------------------------------------------------------------

def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3g} [{min(xs):.3g}-{max(xs):.3g}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["a", "b", "c"], action="append")
    ap.add_argument("--stock-venv", type=Path, default=None, help="venv with hydra-ray-launcher, for (a)")
    ap.add_argument("--engine-free-child", nargs=2, metavar=("N", "OUTPUTS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.engine_free_child:
        engine_free_child(int(args.engine_free_child[0]), args.engine_free_child[1])
        return
    parts = set(args.only or ["a", "b", "c"])
    r = args.repeats
    load = os.getloadavg()[0]
    print(f"# bench_orchestration: {os.cpu_count()} cores, load average {load:.2f} at start, "
          f"median [min-max] of {r} runs; the machine is shared, expect noise")
    print(f"{'measure':58s} {'value':>26s}")

    def row(name: str, value: str) -> None:
        print(f"{name:58s} {value:>26s}", flush=True)

    if "a" in parts:
        for n in (200, 10_000):
            runs = [run_engine_free(n) for _ in range(r)]
            walls = [w for w, _ in runs]
            row(f"(a) engine-free sweep, {n} points: process wall s", med(walls))
            row("(a)   per point, whole process: ms", med([1000 * w / n for w in walls]))
            inproc = [sum(p.values()) - p["imports"] for _, p in runs]
            row("(a)   per point, after imports: ms", med([1000 * s / n for s in inproc]))
            for phase in ("imports", "compose", "plan", "ray_start+first_batch", "other_batches", "ray_shutdown",
                          "resume_check"):
                row(f"(a)     phase {phase}: s", med([p[phase] for _, p in runs]))
            if n == 200:
                ours_200 = statistics.median(walls)
        if args.stock_venv:
            stock = [run_stock(args.stock_venv, 200) for _ in range(r)]
            row("(a) Hydra stock Ray launcher, 200 jobs: process wall s", med(stock))
            row("(a)   per job: ms", med([1000 * w / 200 for w in stock]))
            row("(a)   stock / ours, 200 points, process wall: x", f"{statistics.median(stock) / ours_200:.1f}")
    if parts & {"b", "c"}:
        # Interleaved, so that a burst of someone else's load hits both worker counts alike.
        two, one = [], []
        for _ in range(r):
            two.append(run_real_sweep(2))
            if "c" in parts:
                one.append(run_real_sweep(1))
        row("(b) real 10,000-point sweep, 2 workers: wall s", med([x["wall_s"] for x in two]))
        row("(b)   tasks phase (no Ray start/stop): s", med([x["tasks_s"] for x in two]))
        row("(b)   driver peak RSS: MiB", med([x["peak_rss_mib"] for x in two]))
    if "c" in parts:
        row("(c) same sweep, 1 worker: wall s", med([x["wall_s"] for x in one]))
        row("(c)   tasks phase (no Ray start/stop): s", med([x["tasks_s"] for x in one]))
        row("(c) speed-up 2 vs 1 workers, tasks phase: x",
            f"{statistics.median([x['tasks_s'] for x in one]) / statistics.median([x['tasks_s'] for x in two]):.2f}")
        row("(c)   same, median of the interleaved pairs' ratios: x",
            med([a["tasks_s"] / b["tasks_s"] for a, b in zip(one, two)]))
        row("(c) load average during the runs (1 min)", f"{os.getloadavg()[0]:.2f}")
        row("(c) the box's own 2-vs-1 ceiling now (busy loops): x", med([cpu_ceiling() for _ in range(r)]))
        row("(c) speed-up 2 vs 1 workers, whole command: x",
            f"{statistics.median([x['wall_s'] for x in one]) / statistics.median([x['wall_s'] for x in two]):.2f}")


if __name__ == "__main__":
    main()
