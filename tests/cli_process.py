"""The real CLI as a subprocess, the way a user runs it.

A module of its own rather than conftest.py: several conftest.py files exist
under tests/, and `import conftest` returns whichever was imported first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "RAY_ADDRESS")}
    # Outputs (dataset, figures, private Ray dirs) of the real CLI stay inside the test's tmp dir.
    env["MIGRC_SWEEP_OUTPUTS"] = str(tmp_path / "outputs")
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_cli(tmp_path: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, as a user would run it (python -m == console script)."""
    return subprocess.run([sys.executable, "-m", "migrc_sweep", *args], cwd=tmp_path, env=cli_env(tmp_path),
                          capture_output=True, text=True, timeout=timeout)
