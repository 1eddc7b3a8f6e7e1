"""Hydra plugins that hand a whole grid to migrc_sweep at once.

`migrc_grid` (sweeper): Hydra's basic sweeper minus its per-job side costs: it writes no
multirun.yaml (nothing may be written before validation) and skips validate_batch_is_legal,
which composes every job a second time (notes §5, G13).

`migrc_ray` (launcher): composes once per combination of group choices, applies value
overrides by merging, and calls migrc_sweep.sweep.run_sweep with every point, which
validates all of them before starting Ray. No per-job directories.

Heavy imports (ray, pyarrow, sim) stay inside methods: Hydra imports this module on
every start to discover plugins.
"""

# No `from __future__ import annotations`: Hydra execs this module without registering it in
# sys.modules, and dataclasses then cannot resolve string annotations.
import copy
import os
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


class MigrcRayLauncher(Launcher):
    def __init__(self) -> None:
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.task_function: Optional[TaskFunction] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def compose(self, job_overrides: Sequence[Sequence[str]]) -> list[DictConfig]:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        assert self.hydra_context is not None and self.config is not None
        loader = self.hydra_context.config_loader
        parser = OverridesParser.create(config_loader=loader)
        composed: dict[tuple[str, ...], DictConfig] = {}
        out = []
        for overrides in job_overrides:
            parsed = parser.parse_overrides(list(overrides))
            structural = tuple(o.input_line for o in parsed if _is_structural(o, loader))
            values = [o for o in parsed if not _is_structural(o, loader)]
            if structural not in composed:
                composed[structural] = loader.load_sweep_config(self.config, list(structural))
            cfg = copy.deepcopy(composed[structural])
            ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
            out.append(cfg)
        return out

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from migrc_sweep.cli import plain
        from migrc_sweep.sweep import run_sweep
        setup_globals()
        cfgs = self.compose(job_overrides)
        result = run_sweep([plain(c) for c in cfgs])
        task_name = str(self.config.hydra.job.name) if self.config is not None else "migrc_sweep"
        return [JobReturn(overrides=list(o), cfg=c, hydra_cfg=self.config, working_dir=os.getcwd(),
                          task_name=task_name, status=JobStatus.COMPLETED, _return_value=result)
                for o, c in zip(job_overrides, cfgs)]
