"""Registers `sim_defaults`: every simulator parameter with its dataclass default.

conf/config.yaml puts it first in its defaults list, so every key of every sim
group exists in the composed config. Then `machine.page_walk_ns=50` is an
ordinary override (no `+`), a misspelt key is still refused (struct mode), and
the defaults live in one place: sim/params.py.
"""

import dataclasses

from hydra.core.config_store import ConfigStore

from sim.params import GROUPS


def _defaults() -> dict:
    return {name: dataclasses.asdict(cls()) for name, cls in GROUPS.items()}


ConfigStore.instance().store(name="sim_defaults", node=_defaults(), provider="migrc_sweep")
