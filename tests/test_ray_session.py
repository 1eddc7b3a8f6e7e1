"""A private local Ray: dashboard off, usage stats off, no cloud probes, our code importable."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from migrc_sweep import ray_session

pytestmark = pytest.mark.slow


def _ray_children() -> list[psutil.Process]:
    return [p for p in psutil.Process(os.getpid()).children(recursive=True)
            if any(n in " ".join(p.cmdline()) for n in ("gcs_server", "raylet", "dashboard.py"))]


def test_local_ray_is_private_quiet_and_finds_our_packages(tmp_path):
    ray_dir = tmp_path / "r"
    home_before = os.environ.get("HOME")
    with ray_session.session(None, 1, ray_dir):
        import ray
        assert not ray._private.worker._global_node.address_info.get("webui_url")  # dashboard off
        procs = _ray_children()
        assert any("raylet" in " ".join(p.cmdline()) for p in procs)
        for proc in procs:
            env = proc.environ()
            assert env["RAY_USAGE_STATS_ENABLED"] == "0"
            assert env["RAY_AUTH_MODE"] == "disabled"
            bootstrap = Path(env["HOME"]) / ray_session.BOOTSTRAP_NAME
            assert bootstrap.read_text() == ray_session.BOOTSTRAP_CONFIG
            assert Path(env["HOME"]).is_relative_to(ray_dir)
        dashboards = [p for p in procs if "dashboard.py" in " ".join(p.cmdline())]
        for d in dashboards:  # only the usage-stats head runs, and it reads the local-provider file
            assert "--modules-to-load=UsageStatsHead" in " ".join(d.cmdline())

        @ray.remote
        def where() -> tuple[str, str]:
            import migrc_sweep
            import sim
            return migrc_sweep.__file__, sim.__name__

        assert ray.get(where.remote())[1] == "sim"
        assert os.environ.get("HOME") == home_before  # the driver keeps its own HOME
    assert not ray.is_initialized()
