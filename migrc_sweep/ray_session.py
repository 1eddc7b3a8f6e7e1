"""Starting or joining Ray without it phoning home (notes G1-G3, G9, G12).

Ray reads most of this from the environment of the driver at ray.init time, and the
processes it spawns (gcs, raylet, dashboard, workers) inherit that environment. So:
set everything BEFORE importing ray, and keep the fake HOME only while Ray starts,
so the driver's own HOME (matplotlib caches, git config) stays untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

# Ray's usage-stats head reads ~/ray_bootstrap_config.yaml; a local provider there
# stops its cloud-metadata probes (169.254.169.254, metadata.google.internal).
BOOTSTRAP_CONFIG = "provider: {type: local}\n"
BOOTSTRAP_NAME = "ray_bootstrap_config.yaml"
OBJECT_STORE_BYTES = 200 * 1024 * 1024   # results go to Parquet, not through the object store
_MAX_TMPDIR_CHARS = 36   # + "/session_<date>_<time>_<us>_<pid>/sockets/plasma_store" must stay < 107 bytes


def quiet_env() -> dict[str, str]:
    """Env that keeps any Ray process offline and free of auth-token files."""
    return {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled"),
    }


def prepare_dirs(ray_dir: Path) -> tuple[Path, Path]:
    """(home, tmp) for a private Ray; tmp falls back to a short path if ray_dir is deep."""
    home = Path(ray_dir) / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / BOOTSTRAP_NAME).write_text(BOOTSTRAP_CONFIG)
    tmp = Path(ray_dir) / "tmp"
    if len(str(tmp)) > _MAX_TMPDIR_CHARS:
        tag = hashlib.sha256(str(tmp).encode()).hexdigest()[:8]
        tmp = Path(tempfile.gettempdir()) / f"mrs-{os.getuid()}-{tag}"
    tmp.mkdir(parents=True, exist_ok=True)
    return home, tmp


def import_roots() -> list[str]:
    """Directories that hold the migrc_sweep and sim packages, for worker sys.path."""
    import migrc_sweep
    import sim
    roots = [Path(migrc_sweep.__file__).resolve().parent.parent]
    roots += [Path(p).resolve().parent for p in sim.__path__]
    return list(dict.fromkeys(str(r) for r in roots))


@contextlib.contextmanager
def _temporary_env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def session(address: str | None, num_cpus: int | None, ray_dir: Path) -> Iterator[str]:
    """A connected Ray driver; yields a description. Private local Ray is shut down after."""
    os.environ.update(quiet_env())
    pythonpath = os.pathsep.join([*import_roots(), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if address is None:
        home, tmp = prepare_dirs(ray_dir)
        os.environ["RAY_TMPDIR"] = str(tmp)
        with _temporary_env({"HOME": str(home), "PYTHONPATH": pythonpath}):
            import ray
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                     object_store_memory=OBJECT_STORE_BYTES, log_to_driver=True,
                     logging_level="WARNING", _temp_dir=str(tmp))
        what = f"private local Ray ({int(ray.cluster_resources().get('CPU', 0))} CPUs)"
    else:
        import ray
        # Workers of an existing cluster run elsewhere and may lack our code: ship it (G10).
        runtime_env = {"py_modules": [str(Path(r) / pkg) for r, pkg in _package_dirs()]}
        ray.init(address=address, runtime_env=runtime_env, logging_level="WARNING")
        what = f"Ray cluster at {address} ({int(ray.cluster_resources().get('CPU', 0))} CPUs)"
    try:
        yield what
    finally:
        ray.shutdown()


def _package_dirs() -> list[tuple[str, str]]:
    import migrc_sweep
    import sim
    dirs = [(str(Path(migrc_sweep.__file__).resolve().parent.parent), "migrc_sweep")]
    dirs += [(str(Path(p).resolve().parent), "sim") for p in sim.__path__]
    return dirs
