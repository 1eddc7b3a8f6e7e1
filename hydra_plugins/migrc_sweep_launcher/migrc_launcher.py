"""Hydra plugins that hand a whole grid to migrc_sweep at once.

`migrc_grid` (sweeper): Hydra's basic sweeper minus its per-job side costs: it writes no
multirun.yaml (nothing may be written before validation) and skips validate_batch_is_legal,
which composes every job a second time (notes §5, G13).

`migrc_ray` (launcher): composes once per combination of group choices, resolves that config
to a plain dict once, and sets each job's value overrides on a copy of the dict (a few µs).
Only an override that could change an interpolation (some interpolation reads its key, it adds
or deletes a key, or its value is one) goes through OmegaConf per job, which costs ~50 ms.
Then it calls migrc_sweep.sweep.run_sweep with every point, which validates all of them
before starting Ray. No per-job directories.

Heavy imports (ray, pyarrow, sim) stay inside methods: Hydra imports this module on
every start to discover plugins.
"""

# No `from __future__ import annotations`: Hydra execs this module without registering it in
# sys.modules, and dataclasses then cannot resolve string annotations.
import copy
import os
import re
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from omegaconf import DictConfig, OmegaConf


@dataclass
class MigrcGridSweeperConf:
    _target_: str = "hydra_plugins.migrc_sweep_launcher.migrc_launcher.MigrcGridSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Any] = None


@dataclass
class MigrcRayLauncherConf:
    _target_: str = "hydra_plugins.migrc_sweep_launcher.migrc_launcher.MigrcRayLauncher"


ConfigStore.instance().store(group="hydra/sweeper", name="migrc_grid", node=MigrcGridSweeperConf,
                             provider="migrc_sweep")
ConfigStore.instance().store(group="hydra/launcher", name="migrc_ray", node=MigrcRayLauncherConf,
                             provider="migrc_sweep")


class MigrcGridSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Any] = None) -> None:
        super().__init__(max_batch_size=None, params=dict(params or {}))

    def sweep(self, arguments: List[str]) -> Any:
        from migrc_sweep.errors import ConfigError
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        params_conf = self._parse_config() + list(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(params_conf)
        for o in overrides:
            if o.is_sweep_override() and o.is_discrete_sweep() and not list(o.sweep_string_iterator()):
                raise ConfigError(o.get_key_element(), (o.input_line or "").split("=", 1)[-1],
                                  "is an empty grid axis: the sweep has no points")
        # All points in one launch: the launcher validates the whole grid before running any.
        self.overrides = self.split_arguments(overrides, None)
        jobs = self.overrides[0]
        if not jobs:
            raise ConfigError("grid", params_conf, "is empty: the sweep has no points")
        results = self.launcher.launch(jobs, initial_job_idx=0)
        for r in results:
            _ = r.return_value
        return [results]


def _is_structural(o: Override, loader: Any) -> bool:
    """Overrides that change the defaults tree need a real compose; values can be merged."""
    key = o.key_or_group
    return (o.package is not None or key.startswith("hydra") or o.is_hydra_override()
            or loader.repository.group_exists(key))


_NODE_REF = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")          # ${calibration.machine.x}: absolute key
_ENV_REF = re.compile(r"\$\{oc\.env:[^${}]*\}")                 # ${oc.env:VAR,default}: no config key


def _referenced_keys(cfg: DictConfig) -> set[str] | None:
    """Keys the config's interpolations read; None if some interpolation is too clever to tell
    (a relative ${..x}, a resolver other than oc.env), and then every key counts as read."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and "${" in node:
            found.append(node)
    walk(OmegaConf.to_container(cfg, resolve=False))
    text = "\n".join(found)
    if "${" in _ENV_REF.sub("", _NODE_REF.sub("", text)):
        return None
    return set(_NODE_REF.findall(text))


def _has_leaf(d: dict, dotted: str) -> bool:
    node: Any = d
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return not isinstance(node, (dict, list))


def _plain_value_ok(o: Override, resolved: dict, referenced: set[str] | None) -> bool:
    """True if setting this override on the resolved dict gives what OmegaConf would give."""
    if o.is_add() or o.is_force_add() or o.is_delete() or referenced is None:
        return False
    key = o.key_or_group
    value = o.value()
    if isinstance(value, (dict, list)) or (isinstance(value, str) and "${" in value):
        return False
    if any(r == key or r.startswith(key + ".") or key.startswith(r + ".") for r in referenced):
        return False   # something interpolates this key (or its parent): it must be re-resolved
    # A missing key takes the slow path so that Hydra reports it in its own words.
    return _has_leaf(resolved, key)


def _with_value(d: dict, dotted: str, value: Any) -> dict:
    """A copy of d with one leaf replaced; only the dicts on the path are copied."""
    head, _, rest = dotted.partition(".")
    out = dict(d)
    out[head] = _with_value(d[head], rest, value) if rest else value
    return out


class MigrcRayLauncher(Launcher):
    def __init__(self) -> None:
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.task_function: Optional[TaskFunction] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def compose(self, job_overrides: Sequence[Sequence[str]]) -> list[dict]:
        """One resolved plain config dict (no hydra node) per job."""
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from migrc_sweep.cli import plain
        assert self.hydra_context is not None and self.config is not None
        loader = self.hydra_context.config_loader
        parser = OverridesParser.create(config_loader=loader)
        composed: dict[tuple[str, ...], tuple[DictConfig, dict, set[str] | None]] = {}
        # A grid repeats the same override strings across jobs: parse each (~0.5 ms of ANTLR) once.
        known: dict[str, tuple[Override, bool]] = {}
        out = []
        for overrides in job_overrides:
            for line in overrides:
                if line not in known:
                    o = parser.parse_overrides([line])[0]
                    known[line] = (o, _is_structural(o, loader))
            structural = tuple(line for line in overrides if known[line][1])
            values = [known[line][0] for line in overrides if not known[line][1]]
            if structural not in composed:
                cfg = loader.load_sweep_config(self.config, list(structural))
                composed[structural] = (cfg, plain(cfg), _referenced_keys(cfg))
            cfg, resolved, referenced = composed[structural]
            if all(_plain_value_ok(o, resolved, referenced) for o in values):
                job = resolved
                for o in values:
                    job = _with_value(job, o.key_or_group, o.value())
            else:
                slow = copy.deepcopy(cfg)
                ConfigLoaderImpl._apply_overrides_to_config(values, slow)
                job = plain(slow)
            out.append(job)
        return out

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from migrc_sweep.sweep import run_sweep
        setup_globals()
        result = run_sweep(self.compose(job_overrides))
        task_name = str(self.config.hydra.job.name) if self.config is not None else "migrc_sweep"
        # One sweep ran for all jobs: every JobReturn carries its result; per-job configs live in the dataset.
        return [JobReturn(overrides=list(o), cfg=None, hydra_cfg=self.config, working_dir=os.getcwd(),
                          task_name=task_name, status=JobStatus.COMPLETED, _return_value=result)
                for o in job_overrides]
