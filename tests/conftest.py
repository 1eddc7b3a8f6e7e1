from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from migrc_sweep.confdir import config_dir


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("config", overrides=overrides)


@pytest.fixture
def compose_config():
    return compose_cfg
