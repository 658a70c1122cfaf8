"""Ray nodes started as a user starts them (``ray start --head``, ``ray start --address``), each in
a process group of its own, on this machine, for the multi-node tests.

Every node gets free ports of its own (two nodes on one machine would otherwise both claim the
dashboard agent's and the client server's default ports) and a short temporary folder (Ray's
socket paths have a length limit). ``home`` is the ``HOME`` of every Ray process: Ray reads its
token from ``~/.ray/auth_token`` there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.postgres_server import free_port

RAY = str(Path(sys.executable).with_name("ray"))


@dataclass
class RayNode:
    process: subprocess.Popen
    log: Path
    temp_dir: Path

    def stop(self) -> None:
        """SIGTERM makes ``ray start --block`` stop what it started; then the whole group goes."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.log.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the node's every process (raylet, workers, …): the node dies as a crashed machine does."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the session started for this node, nothing else
        except ProcessLookupError:
            pass
        self.process.wait()


@dataclass
class RayCluster:
    """A head node and worker nodes on this machine, started with ``ray start``."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)
    nodes: list[RayNode] = field(default_factory=list)
    port: int = 0
    client_port: int = 0
    host: str = ""
    private: Path | None = None
    """A folder every node sees as an empty folder of its own (when ``private_mounts``)."""
    private_mounts: bool = False

    @property
    def address(self) -> str:
        """``HOST:PORT`` as ``ray start --head`` prints it."""
        return f"{self.host}:{self.port}"

    def ray_env(self, **extra: str) -> dict[str, str]:
        environment = {**os.environ, "HOME": str(self.home), "RAY_ADDRESS": "", **self.env, **extra}
        if "RAY_AUTH_MODE" not in extra:
            environment.pop("RAY_AUTH_MODE", None)
        return environment

    def start_node(self, cpus: int, head: bool = False, wrap: list[str] = ()) -> RayNode:
        """Start a node with ``cpus`` CPUs (``wrap``: a command to run ``ray start`` under)."""
        temp_dir = Path(tempfile.mkdtemp(prefix="hpr", dir="/tmp"))
        log = temp_dir.with_suffix(".log")
        ports = [f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
                 f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}"]
        if head:
            self.port, self.client_port = free_port(), free_port()
            role = ["--head", f"--port={self.port}", f"--ray-client-server-port={self.client_port}",
                    f"--dashboard-port={free_port()}", "--include-dashboard=false", "--disable-usage-stats"]
        else:
            role = [f"--address={self.address}"]
        command = [*wrap, RAY, "start", "--block", *role, *ports, f"--num-cpus={cpus}", f"--temp-dir={temp_dir}"]
        # A head finds the token in ~/.ray/auth_token and turns token authentication on by itself;
        # a joining node must be told (Ray's docs: RAY_AUTH_MODE=token on every node).
        environment = self.ray_env() if head else self.ray_env(RAY_AUTH_MODE="token")
        process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=environment,
                                   start_new_session=True)
        node = RayNode(process, log, temp_dir)
        self.nodes.append(node)
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
        if "Ray runtime started" not in log.read_text():
            raise RuntimeError(f"ray start failed:\n{log.read_text()[-3000:]}")
        if head:
            printed = re.search(r"ray start --address='([^']+)'", log.read_text())
            self.host = printed.group(1).rsplit(":", 1)[0] if printed else "127.0.0.1"
        return node

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def node_ids(self) -> dict[str, str]:
        """``{node id: "head" | "worker"}`` of the live nodes, asked of the cluster itself."""
        script = (f"import ray; ray.init(address='{self.address}', log_to_driver=False)\n"
                  "for n in ray.nodes():\n"
                  "    print('NODE', n['NodeID'], 'head' if 'node:__internal_head__' in n['Resources'] else 'worker', n['Alive'])")
        out = subprocess.run([sys.executable, "-c", script], env=self.ray_env(RAY_AUTH_MODE="token"),
                             capture_output=True, text=True, timeout=120).stdout
        return {line.split()[1]: line.split()[2] for line in out.splitlines()
                if line.startswith("NODE ") and line.split()[3] == "True"}
