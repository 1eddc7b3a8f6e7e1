"""`migrc-sweep`: a thin Hydra app. `run(cfg)` is what tests call; `main()` is the console script.

Bad input must come out as ONE line on stderr and a non-zero exit, before anything is
simulated or written. Hydra prints multi-line reports itself, so main() lets Hydra's
exceptions propagate (HYDRA_FULL_ERROR, unless the user set it) and formats them here.
"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from migrc_sweep.confdir import config_dir
from migrc_sweep.sweep import SweepResult, run_sweep

EXIT_BAD_INPUT = 2
EXIT_TOO_MANY_FAILURES = 3


def plain(cfg: DictConfig) -> dict:
    """The resolved job config without Hydra's own node."""
    keys = [k for k in cfg if k != "hydra"]
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, keys), resolve=True)


def run(cfg: DictConfig) -> SweepResult:
    """One point (or its replicates), through the same engine as a grid."""
    return run_sweep([plain(cfg)])


class _BadInput(BaseException):
    """Carries a validation error past Hydra's run_job, which catches Exception and
    would print its own 'Error executing job' line before re-raising."""


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _hydra_main(cfg: DictConfig) -> SweepResult:
    from sim.params import ParamError

    from migrc_sweep.errors import ConfigError
    from migrc_sweep.orchestrate import TooManyFailures
    try:
        return run(cfg)
    except (ParamError, ConfigError, TooManyFailures) as ex:
        raise _BadInput(ex) from ex


def one_line(ex: BaseException) -> str:
    if isinstance(ex, _BadInput):
        ex = ex.args[0]
    parts = [str(ex)]
    cause = ex.__cause__
    if cause is not None and str(cause) and str(cause) not in parts[0]:
        parts.append(str(cause))
    lines = [ln.strip() for p in parts for ln in p.splitlines() if ln.strip()]
    # Hydra's own hint about the env var makes no sense to our users.
    if "Config search path:" in lines:  # Hydra's missing-option report: keep the options, drop the paths
        lines = lines[:lines.index("Config search path:")]
    out: list[str] = []
    for ln in lines:
        # "To append to your config use +k=v" is wrong advice here: sim_defaults declares every
        # real key, so a key Hydra cannot find is a typo, and '+' would only reach our own refusal.
        if "HYDRA_FULL_ERROR" in ln or ln.startswith(("full_key:", "object_type=", "To append to your config")):
            continue
        if out and out[-1].startswith("Available options") and ":" in out[-1]:
            out[-1] += (" " if out[-1].endswith(":") else ", ") + ln
        else:
            out.append(ln)
    return "; ".join(ln.rstrip(".") for ln in out[:-1]) + ("; " if len(out) > 1 else "") + (out[-1] if out else "") \
        or type(ex).__name__


def _with_default_grid(argv: list[str]) -> list[str]:
    """A command-line grid (-m a=1,2) means exactly that grid, not the default one crossed with it."""
    multirun = any(a in ("-m", "--multirun") for a in argv)
    names_sweep = any(a.split("=", 1)[0].lstrip("+~") == "sweep" for a in argv if "=" in a)
    return argv + ["sweep=none"] if multirun and not names_sweep else argv


def main() -> None:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    from sim.params import ParamError

    from migrc_sweep.errors import ConfigError
    from migrc_sweep.orchestrate import TooManyFailures

    user_wants_trace = bool(os.environ.get("HYDRA_FULL_ERROR"))
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv = [sys.argv[0], *_with_default_grid(sys.argv[1:])]
    try:
        try:
            _hydra_main()
        except _BadInput as carrier:
            raise carrier.args[0]  # keeps its own __cause__ for one_line
    except (ParamError, ConfigError, HydraException, OmegaConfBaseException) as ex:
        if user_wants_trace:
            raise
        print(f"migrc-sweep: error: {one_line(ex)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except TooManyFailures as ex:
        print(f"migrc-sweep: {ex}", file=sys.stderr)
        sys.exit(EXIT_TOO_MANY_FAILURES)


if __name__ == "__main__":
    main()
