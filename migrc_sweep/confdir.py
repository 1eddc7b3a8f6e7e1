"""Where the Hydra configs live: inside an installed wheel, or at the repo root."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def config_dir() -> Path:
    """The conf/ directory: shipped as migrc_sweep/conf in a wheel, else <repo>/conf.

    The wheel copy wins so an installed tool never picks up a stray checkout's configs.
    """
    for candidate in (_PACKAGE_DIR / "conf", _PACKAGE_DIR.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no conf/config.yaml next to {_PACKAGE_DIR} or its parent")
