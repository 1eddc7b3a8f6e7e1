"""Cheap facts about where and from what code a row came."""

from __future__ import annotations

import json
import socket
import subprocess
from importlib import metadata
from pathlib import Path

_PACKAGES = ("migrc-sweep", "numpy", "ray", "hydra-core", "omegaconf", "pyarrow", "pandas")


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout the code runs from; (None, None) for an installed wheel."""
    repo = Path(__file__).resolve().parent.parent
    if not (repo / ".git").exists():
        return None, None
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(status.strip())


def package_versions() -> str:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return json.dumps(versions, sort_keys=True)


def host() -> str:
    return socket.gethostname()
