from __future__ import annotations

import pytest

from hydra_compose import compose_cfg


@pytest.fixture
def compose_config():
    return compose_cfg
