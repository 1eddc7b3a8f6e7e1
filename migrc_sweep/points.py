"""From resolved configs to validated simulation points: everything is checked here,
before Ray starts or a file is written.

A point is one (SimParams, engine, seed) with the policies to run on it. Its id is a
content hash, so the same point gets the same id in every sweep and re-runs can skip it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sim.params import ENGINES, GROUPS, POLICIES, SimParams, as_flat_dict, build_group, check_consistency

from migrc_sweep.errors import ConfigError

EXECUTORS = ("auto", "ray", "inline")
_SWEEP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_TOP_LEVEL_KEYS = set(GROUPS) | {
    "policy", "engine", "seed", "replicates", "sweep_id", "dry_run", "max_points",
    "executor", "paths", "store", "ray", "calibration", "compare_to", "max_failed_fraction",
}
# ray.address: "auto", HOST:PORT, or ray://HOST:PORT (Ray Client).
_RAY_ADDRESS = re.compile(r"^(auto|(ray://)?[A-Za-z0-9_.\-]+:\d{1,5})$")
# Measured tables a sweep can be printed side by side with (compare_to=...).
MEASURED_TABLES = ("seed_v9",)


@dataclass(frozen=True)
class Point:
    point_id: str
    params: SimParams
    engine: str
    seed: int
    replicate: int
    policies: tuple[str, ...]
    # as_flat_dict(params), computed once: every row of the point repeats it (the dataset's param columns).
    flat: dict[str, Any] | None = field(default=None, compare=False, hash=False, repr=False)

    def flat_params(self) -> dict[str, Any]:
        return self.flat if self.flat is not None else as_flat_dict(self.params)


@dataclass(frozen=True)
class Settings:
    """What must be the same for every point of one sweep."""
    store_root: Path
    figures_dir: Path
    sweep_id: str | None
    baseline: str
    dry_run: bool
    max_points: int
    executor: str
    ray_address: str | None
    ray_num_cpus: int | None
    points_per_task: int | None
    ray_dir: Path
    compare_to: str | None = None
    max_failed_fraction: float = 1.0


@dataclass(frozen=True)
class Plan:
    settings: Settings
    points: list[Point]


def sim_version() -> str:
    import sim
    return str(getattr(sim, "__version__", "unknown"))


def point_id(params: SimParams, engine: str, seed: int, version: str, flat: dict | None = None) -> str:
    """Content hash of everything that determines a point's numbers."""
    payload = {"params": as_flat_dict(params) if flat is None else flat, "engine": engine, "seed": seed,
               "sim_version": version}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _whole(cfg: dict, key: str, lo: int, default: Any = ...) -> int | None:
    value = _get(cfg, key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and (math.isnan(value) or value != int(value))):
        raise ConfigError(key, value, f"must be a whole number >= {lo}")
    if value < lo:
        raise ConfigError(key, value, f"must be a whole number >= {lo}")
    return int(value)


def _fraction(cfg: dict, key: str, default: float) -> float:
    value = _get(cfg, key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(key, value, "must be a fraction in [0, 1]")   # NaN fails the range test too
    return float(value)


def _get(cfg: dict, dotted: str, default: Any = ...) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is ...:
                raise ConfigError(dotted, None, "missing")
            return default
        node = node[part]
    return node


def _policies(cfg: dict) -> tuple[str, tuple[str, ...]]:
    node = cfg.get("policy")
    if not isinstance(node, dict):
        raise ConfigError("policy", node, "must be a mapping with baseline and variants")
    unknown = set(node) - {"baseline", "variants"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"policy.{key}", node[key], "unknown key for policy; expected baseline, variants")
    baseline = node.get("baseline")
    variants = node.get("variants", [])
    if baseline not in POLICIES:
        raise ConfigError("policy.baseline", baseline, f"unknown policy; expected one of {', '.join(POLICIES)}")
    if not isinstance(variants, list):
        raise ConfigError("policy.variants", variants, "must be a list of policy names")
    for v in variants:
        if v not in POLICIES:
            raise ConfigError("policy.variants", v, f"unknown policy; expected one of {', '.join(POLICIES)}")
    if len(set(variants)) != len(variants) or baseline in variants:
        raise ConfigError("policy.variants", variants, "lists a policy twice (the baseline always runs)")
    return baseline, (baseline, *variants)


def _path(cfg: dict, key: str) -> Path:
    value = _get(cfg, key)
    if not isinstance(value, str) or not value:
        raise ConfigError(key, value, "must be a path")
    return Path(value).expanduser().resolve()


def settings_from_config(cfg: dict) -> Settings:
    sweep_id = cfg.get("sweep_id")
    if sweep_id is not None and (not isinstance(sweep_id, str) or not _SWEEP_ID.match(sweep_id)):
        raise ConfigError("sweep_id", sweep_id, "must be letters, digits, '_', '.', '-' (a directory name)")
    executor = cfg.get("executor", "auto")
    if executor not in EXECUTORS:
        raise ConfigError("executor", executor, f"must be one of {', '.join(EXECUTORS)}")
    address = _get(cfg, "ray.address", None)
    if address is not None and (not isinstance(address, str) or not _RAY_ADDRESS.match(address)
                                or (":" in address and not 0 < int(address.rsplit(":", 1)[1]) < 65536)):
        raise ConfigError("ray.address", address, "must be null, 'auto' or HOST:PORT")
    compare_to = cfg.get("compare_to")
    if compare_to is not None and compare_to not in MEASURED_TABLES:
        raise ConfigError("compare_to", compare_to, f"must be null or one of {', '.join(MEASURED_TABLES)}")
    dry_run = cfg.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ConfigError("dry_run", dry_run, "must be true or false")
    return Settings(
        store_root=_path(cfg, "store.root"),
        figures_dir=_path(cfg, "store.figures"),
        sweep_id=sweep_id,
        baseline=_policies(cfg)[0],
        dry_run=dry_run,
        max_points=_whole(cfg, "max_points", 1),
        executor=executor,
        ray_address=address,
        ray_num_cpus=_whole(cfg, "ray.num_cpus", 1, None),
        points_per_task=_whole(cfg, "ray.points_per_task", 1, None),
        ray_dir=_path(cfg, "ray.dir"),
        compare_to=compare_to,
        max_failed_fraction=_fraction(cfg, "max_failed_fraction", 1.0),
    )


class GroupCache:
    """Validated sim groups by content: a 100 x 100 grid has 100 distinct machine groups, not 10,000.

    Validation (sim.params.build_group) and flattening cost ~0.1 ms per group; a grid repeats
    the same group values across most of its points.
    """

    def __init__(self) -> None:
        self._built: dict[tuple, tuple[Any, dict[str, Any]]] = {}

    def group(self, name: str, values: dict) -> tuple[Any, dict[str, Any]]:
        # Value types are part of the key: 1 == 1.0 == True must not share a validated group.
        key = (name, tuple((k, type(v), v) for k, v in values.items()))
        try:
            hit = self._built.get(key)
        except TypeError:   # an unhashable value (a list): sim will refuse it anyway
            return self._build(name, values)
        if hit is None:
            hit = self._built[key] = self._build(name, values)
        return hit

    @staticmethod
    def _build(name: str, values: dict) -> tuple[Any, dict[str, Any]]:
        built = build_group(name, dict(values))
        return built, {f"{name}.{k}": v for k, v in asdict(built).items()}


def _params(cfg: dict, cache: GroupCache) -> tuple[SimParams, dict[str, Any]]:
    """sim.params.build_params, group by group through the cache; also the flat dict (as_flat_dict)."""
    parts, flat = {}, {}
    for g in GROUPS:
        parts[g], part_flat = cache.group(g, cfg.get(g) or {})
        flat.update(part_flat)
    params = SimParams(**parts)
    check_consistency(params)
    return params, flat


def points_from_config(cfg: dict, version: str, cache: GroupCache | None = None) -> list[Point]:
    """One Point per replicate of the configured (params, engine, seed); raises on bad input."""
    for key in cfg:
        if key not in _TOP_LEVEL_KEYS:
            raise ConfigError(key, cfg[key], "unknown key")
    params, flat = _params(cfg, cache or GroupCache())
    engine = cfg.get("engine")
    if engine not in ENGINES:
        raise ConfigError("engine", engine, f"must be one of {', '.join(ENGINES)}")
    seed = _whole(cfg, "seed", 0)
    replicates = _whole(cfg, "replicates", 1)
    _, policies = _policies(cfg)
    return [Point(point_id(params, engine, seed + r, version, flat), params, engine, seed + r, r, policies, flat)
            for r in range(replicates)]


_SETTINGS_INPUTS = ("store", "paths", "ray", "sweep_id", "executor", "dry_run", "max_points", "compare_to",
                    "max_failed_fraction", "policy")


def build_plan(configs: list[dict]) -> Plan:
    """Validate every job config; the first bad one raises ConfigError or sim's ParamError."""
    if not configs:
        raise ConfigError("grid", [], "is empty: the sweep has no points")
    version = sim_version()
    settings = settings_from_config(configs[0])
    inputs = tuple(configs[0].get(k) for k in _SETTINGS_INPUTS)
    cache = GroupCache()
    points: list[Point] = []
    seen: set[str] = set()
    for cfg in configs:
        # Settings are derived only from these keys; unchanged inputs cannot give other settings.
        other = settings if tuple(cfg.get(k) for k in _SETTINGS_INPUTS) == inputs else settings_from_config(cfg)
        if other != settings:
            name = next(f for f in Settings.__dataclass_fields__
                        if getattr(other, f) != getattr(settings, f))
            raise ConfigError(name, getattr(other, name), "must be the same for every point of a sweep")
        for point in points_from_config(cfg, version, cache):
            # A grid may name one point twice (num_cpus=4,4); run it once.
            if point.point_id not in seen:
                seen.add(point.point_id)
                points.append(point)
        if len(points) > settings.max_points:
            raise ConfigError("max_points", settings.max_points,
                              f"the grid has more points than this (at least {len(points)})")
    return Plan(settings, points)
