"""Compose the app's config with Hydra's compose API, as the CLI would.

A module of its own rather than conftest.py: several conftest.py files exist
under tests/, and `import conftest` returns whichever was imported first.
"""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from migrc_sweep.confdir import config_dir


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("config", overrides=overrides)
