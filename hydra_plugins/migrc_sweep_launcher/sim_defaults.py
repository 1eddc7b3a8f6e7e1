"""Registers `sim_defaults`: every simulator parameter with its dataclass default.

conf/config.yaml puts it first in its defaults list, so every key of every sim
group exists in the composed config. Then `machine.page_walk_ns=50` is an
ordinary override (no `+`), a misspelt key is still refused (struct mode), and
the defaults live in one place: sim/params.py.
"""

import dataclasses

from hydra.core.config_store import ConfigStore

from sim.params import GROUPS


# Orchestration keys without a line in conf/config.yaml yet: declared here so that they are
# ordinary overrides too (no '+'); a value in config.yaml, which comes later, would win.
ORCHESTRATION_DEFAULTS = {
    "max_failed_fraction": 1.0,   # stop the sweep once more than this share of its points failed
}


def _defaults() -> dict:
    return {**{name: dataclasses.asdict(cls()) for name, cls in GROUPS.items()}, **ORCHESTRATION_DEFAULTS}


ConfigStore.instance().store(name="sim_defaults", node=_defaults(), provider="migrc_sweep")
