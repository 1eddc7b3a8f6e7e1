"""`migrc-whatif FILE`: what would migrc change on *my* machine?

Instead of deriving the migration volume from the workload model, take the
rates a user measured in /proc/vmstat (pgdemote_kswapd, pgmigrate_success,
numa_pages_migrated), the CPU count and the elapsed time, and predict each
kernel variant's shootdowns and runtime against today's batched kernel. The
input format is documented in docs/whatif.md, with docs/whatif_example.yaml.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import yaml

import sim
from sim.params import ParamError

from migrc_sweep.errors import ConfigError
from migrc_sweep.points import points_from_config, sim_version

VMSTAT = ("pgdemote_kswapd", "pgmigrate_success", "numa_pages_migrated")
_KEYS = {"num_cpus", "elapsed_s", "threads", "vmstat_per_s", "vmstat_delta", "machine", "memory", "workload",
         "reclaim", "variants", "overrides", "replicates"}


def _number(doc: dict, key: str, lo: float, whole: bool = False) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < lo \
            or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        raise ConfigError(key, value, f"must be {kind} >= {lo:g}")
    return value


def rates_per_s(doc: dict) -> dict[str, float]:
    """vmstat rates per second, from `vmstat_per_s` or from `vmstat_delta` over `elapsed_s`."""
    if ("vmstat_per_s" in doc) == ("vmstat_delta" in doc):
        raise ConfigError("vmstat_per_s", doc.get("vmstat_per_s"), "give exactly one of vmstat_per_s, vmstat_delta")
    key = "vmstat_per_s" if "vmstat_per_s" in doc else "vmstat_delta"
    node = doc[key]
    if not isinstance(node, dict):
        raise ConfigError(key, node, f"must map {', '.join(VMSTAT)} to numbers")
    for k in node:
        if k not in VMSTAT:
            raise ConfigError(f"{key}.{k}", node[k], f"unknown counter; expected {', '.join(VMSTAT)}")
    scale = 1.0 if key == "vmstat_per_s" else 1.0 / doc["elapsed_s"]
    out = {k: _number(node, k, 0.0) * scale for k in VMSTAT if k in node}
    missing = [k for k in VMSTAT if k not in out]
    if missing:
        raise ConfigError(f"{key}.{missing[0]}", None, "missing")
    if out["pgmigrate_success"] + 1e-9 < out["pgdemote_kswapd"] + out["numa_pages_migrated"]:
        raise ConfigError(f"{key}.pgmigrate_success", node["pgmigrate_success"],
                          "must be at least pgdemote_kswapd + numa_pages_migrated")
    return out


def compose(doc: dict) -> dict:
    """The resolved job config of this what-if, through the app's own Hydra configs."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from migrc_sweep.confdir import config_dir

    for k in doc:
        if k not in _KEYS:
            raise ConfigError(k, doc[k], f"unknown key; expected {', '.join(sorted(_KEYS))}")
    cpus = int(_number(doc, "num_cpus", 1, whole=True))
    _number(doc, "elapsed_s", 1e-9)
    threads = int(_number(doc, "threads", 1, whole=True)) if "threads" in doc else cpus
    rates = rates_per_s(doc)
    variants = doc.get("variants", ["migrc"])
    overrides = [f"{g}={doc[g]}" for g in ("machine", "memory", "workload", "reclaim") if g in doc]
    overrides += ["sweep=none", f"machine.num_cpus={cpus}", f"workload.num_threads={threads}",
                  "reclaim.use_measured_rates=true",
                  f"reclaim.measured_promote_pages_per_s={rates['numa_pages_migrated']}",
                  f"reclaim.measured_demote_pages_per_s={rates['pgdemote_kswapd']}",
                  "reclaim.measured_other_migrate_pages_per_s="
                  f"{rates['pgmigrate_success'] - rates['pgdemote_kswapd'] - rates['numa_pages_migrated']}",
                  f"policy.variants=[{','.join(variants)}]", f"replicates={int(doc.get('replicates', 5))}"]
    overrides += list(doc.get("overrides", []))
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)


def predict(doc: dict) -> list[dict]:
    """Per policy: predicted rates over the measured elapsed time, with 95% CIs over replicates."""
    cfg = compose(doc)
    points = points_from_config(cfg, sim_version())
    results = sim.simulate_batch([(p.params, p.seed) for p in points], points[0].policies, points[0].engine)
    elapsed = float(doc["elapsed_s"])
    base = np.array([r[0]["runtime_s"] for r in results])
    out = []
    for i, policy in enumerate(points[0].policies):
        ratio = np.array([r[i]["runtime_s"] for r in results]) / base
        shoot = np.array([r[i]["tlb_shootdowns"] / r[i]["runtime_s"] for r in results])
        n = len(results)
        half = (lambda x: 1.96 * x.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan"))
        out.append(dict(policy=policy, runtime_s=elapsed * ratio.mean(), runtime_change_pct=100 * (ratio.mean() - 1),
                        runtime_change_ci95=100 * half(ratio), shootdowns_per_s=shoot.mean(),
                        shootdowns_per_cpu_s=shoot.mean() / cfg["machine"]["num_cpus"],
                        shootdowns_in_elapsed=shoot.mean() * elapsed * ratio.mean()))
    return out


def format_prediction(rows: list[dict]) -> str:
    lines = [f"{'policy':<12}{'runtime s':>12}{'change %':>10}{'CI95':>8}{'IRQs/s':>12}{'IRQs/CPU/s':>12}"]
    for r in rows:
        lines.append(f"{r['policy']:<12}{r['runtime_s']:>12.1f}{r['runtime_change_pct']:>10.2f}"
                     f"{r['runtime_change_ci95']:>8.2f}{r['shootdowns_per_s']:>12.0f}{r['shootdowns_per_cpu_s']:>12.1f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="migrc-whatif", description=__doc__.split("\n")[0])
    ap.add_argument("file", type=Path, help="YAML with measured rates (see docs/whatif.md)")
    args = ap.parse_args(argv)
    try:
        doc = yaml.safe_load(args.file.read_text())
        if not isinstance(doc, dict):
            raise ConfigError(str(args.file), doc, "must be a YAML mapping")
        rows = predict(doc)
    except (OSError, yaml.YAMLError, ConfigError, ParamError) as exc:
        print(f"migrc-whatif: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except Exception as exc:  # Hydra's composition errors: keep to one line too
        if type(exc).__module__.split(".")[0] not in ("hydra", "omegaconf"):
            raise
        print(f"migrc-whatif: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(format_prediction(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
