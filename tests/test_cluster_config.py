"""docs/cluster.example.yaml is a cluster config Ray itself accepts, and it installs this package."""

from __future__ import annotations

from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_example_cluster_yaml_passes_rays_own_schema(tmp_path, monkeypatch):
    from ray.autoscaler._private.util import prepare_config, validate_config
    monkeypatch.setenv("HOME", str(tmp_path))   # prepare_config may cache state under ~
    cfg = yaml.safe_load((DOCS / "cluster.example.yaml").read_text())
    validate_config(prepare_config(cfg))
    assert cfg["provider"]["type"] == "local"
    assert any("pip install ." in c for c in cfg["setup_commands"])
    starts = " ".join(cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"])
    assert starts.count("RAY_USAGE_STATS_ENABLED=0") == 2 and "--include-dashboard=false" in starts


def test_cluster_doc_names_the_settings_it_relies_on():
    text = (DOCS / "cluster.md").read_text()
    for needle in ("ray.address=auto", "RAY_ADDRESS", "runtime_env", "shared filesystem", "cluster.example.yaml",
                   "ray_bootstrap_config.yaml", "RAY_AUTH_MODE=disabled", "max_failed_fraction"):
        assert needle in text, needle
