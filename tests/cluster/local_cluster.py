"""A real multi-node Ray cluster on this machine, started with `ray start` and stopped by pid.

Follows the probe's recipe (ray-hydra-notes §3b) and its gotchas: auth off on every process (G1),
usage stats off (G2), a HOME holding ray_bootstrap_config.yaml so nothing probes cloud metadata
(G3), every port picked free so two nodes (and other users' clusters) never clash (G4), CPUs,
memory and object store capped per node (G5). Never the ray CLI's stop command, which is machine-wide (G8):
we kill exactly the processes we started and their descendants, then remove the temp dir with
its ray_current_cluster file (G9).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

BOOTSTRAP_CONFIG = "provider: {type: local}\n"
OBJECT_STORE_BYTES = 100 * 1000 * 1000
MEMORY_BYTES = 2 * 1024 ** 3
START_TIMEOUT_S = 90.0
STOP_GRACE_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class LocalCluster:
    """`with LocalCluster(base, num_nodes=2) as c:` -> c.address is HOST:PORT of the head."""

    def __init__(self, base: Path, num_nodes: int = 2, cpus_per_node: int = 1):
        self.base = Path(base)
        self.num_nodes, self.cpus_per_node = num_nodes, cpus_per_node
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.home = self.base / "home"
        # Short: Ray's Unix socket paths live under it and must stay below 107 bytes (G12).
        self.tmp = Path(tempfile.mkdtemp(prefix="mrc-"))
        self.ray = str(Path(sys.executable).parent / "ray")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(HOME=str(self.home), RAY_TMPDIR=str(self.tmp), RAY_AUTH_MODE="disabled",
                   RAY_USAGE_STATS_ENABLED="0")
        return env

    def _node_args(self) -> list[str]:
        ports = {"--node-manager-port": free_port(), "--object-manager-port": free_port(),
                 "--dashboard-agent-listen-port": free_port(), "--dashboard-agent-grpc-port": free_port(),
                 "--runtime-env-agent-port": free_port(), "--metrics-export-port": free_port()}
        return [f"--num-cpus={self.cpus_per_node}", f"--object-store-memory={OBJECT_STORE_BYTES}",
                f"--memory={MEMORY_BYTES}", "--block", *(f"{k}={v}" for k, v in ports.items())]

    def _spawn(self, args: list[str], name: str) -> None:
        log = open(self.base / f"{name}.log", "wb")
        # Own session: the node's whole process group can be signalled without touching anyone else's.
        self.procs.append(subprocess.Popen([self.ray, "start", *args], env=self.env(), stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True))

    def start(self) -> "LocalCluster":
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "ray_bootstrap_config.yaml").write_text(BOOTSTRAP_CONFIG)
        self._spawn(["--head", f"--port={self.port}", "--include-dashboard=false", "--disable-usage-stats",
                     f"--temp-dir={self.tmp}", *self._node_args()],
                    "head")
        self._wait(lambda: _port_open(self.port), "the head's GCS port")
        for i in range(1, self.num_nodes):
            self._spawn([f"--address={self.address}", *self._node_args()], f"node{i}")
        self._wait(lambda: self.alive_nodes() == self.num_nodes, f"{self.num_nodes} alive nodes")
        return self

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            dead = [p.args for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"ray start exited early: {dead}; see {self.base}/*.log")
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"no {what} after {START_TIMEOUT_S:.0f} s; see {self.base}/*.log")

    def alive_nodes(self) -> int:
        code = ("import ray; ray.init(address=%r, logging_level='ERROR'); "
                "print(sum(1 for n in ray.nodes() if n['Alive']))" % self.address)
        try:
            out = subprocess.run([sys.executable, "-c", code], env=self.env(), capture_output=True, text=True,
                                 timeout=60)
            return int(out.stdout.strip().splitlines()[-1])
        except (subprocess.SubprocessError, ValueError, IndexError):
            return 0

    def processes(self) -> list[psutil.Process]:
        """Everything this cluster runs: our `ray start` processes and all their descendants, plus any
        process that inherited our private RAY_TMPDIR (a worker orphaned when its raylet died first)."""
        found: dict[int, psutil.Process] = {}
        for p in self.procs:
            try:
                root = psutil.Process(p.pid)
                for q in [root, *root.children(recursive=True)]:
                    found[q.pid] = q
            except psutil.NoSuchProcess:
                pass
        for q in psutil.process_iter(["uids"]):
            try:
                if q.info["uids"].real == os.getuid() and q.environ().get("RAY_TMPDIR") == str(self.tmp):
                    found.setdefault(q.pid, q)
            except (psutil.Error, AttributeError):
                pass
        found.pop(os.getpid(), None)
        return list(found.values())

    def workers(self, title_prefix: str = "ray::") -> list[psutil.Process]:
        out = []
        for q in self.processes():
            try:
                if " ".join(q.cmdline()).startswith(title_prefix):
                    out.append(q)
            except psutil.Error:
                pass
        return out

    def stop(self) -> None:
        procs = self.processes()
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        for q in procs:
            try:
                q.terminate()
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(procs, timeout=STOP_GRACE_S)
        for p in self.procs:   # gcs/raylet may ignore SIGTERM for a long time (notes §3b)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for q in alive:
            try:
                q.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=STOP_GRACE_S)
        for p in self.procs:
            try:
                p.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        # A stale ray_current_cluster would point later drivers at this dead cluster (G9).
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
