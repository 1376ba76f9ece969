"""A Ray cluster on this machine for tests, started and stopped by ``deploy/local/cluster.sh``.

The cluster tests (tests/test_cluster.py) and the node-loss test
(tests/test_worker_faults.py) run the script users run rather than a copy of
its ``ray start`` lines. Every component runs in a session of its own whose id
the script records (``<state>/<component>.pid``), so a test can kill exactly
one node of its own cluster and never another Ray on the machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "deploy" / "local" / "cluster.sh"


@dataclass(frozen=True)
class Cluster:
    """A running ``cluster.sh`` cluster: its state directory, environment and ports."""

    state: Path
    env: dict[str, str]
    owner_url: str
    head_port: int
    dashboard_port: int

    @property
    def address(self) -> str:
        """The head's GCS address, which a driver on this machine joins (``RAY_ADDRESS``)."""
        return f"127.0.0.1:{self.head_port}"

    def driver_env(self) -> dict[str, str]:
        """The environment of a driver that joins the cluster directly (token auth on)."""
        return {
            **self.env,
            "RAY_ADDRESS": self.address,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.state / "auth_token"),
        }

    def run(self, command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """``command`` in bash with the cluster's submit environment (as docs/cluster.md does it)."""
        script = f'eval "$({SCRIPT} env)" && {command}'
        return subprocess.run(
            ["bash", "-c", script], env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout
        )

    def session(self, component: str) -> int:
        """The session id of a component the script started (``head``, ``worker-1``, ``dashboard``)."""
        return int((self.state / f"{component}.pid").read_text())

    def kill(self, component: str) -> list[int]:
        """SIGKILL every process of one component (a node dying at once); returns the pids killed."""
        sid = self.session(component)
        killed = []
        for pid in session_pids(sid):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        return killed


def session_pids(sid: int) -> list[int]:
    """The processes of one session (what the script's ``session_pids`` lists)."""
    listed = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True, check=True).stdout
    return [
        int(pid) for pid, session in (line.split() for line in listed.splitlines()) if int(session) == sid
    ]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def logs(state: Path) -> str:
    """The tails of the cluster's logs, for a failure message."""
    parts = []
    for path in sorted((state / "logs").glob("*.log")):
        parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


@contextmanager
def local_cluster(owner_url: str, settings: Mapping[str, str]) -> Iterator[Cluster]:
    """``cluster.sh up`` on free ports with ``settings`` (its environment variables); ``down`` after.

    The state directory is short (Ray's Unix socket paths live under it) and
    removed afterwards, whether the test passed or not.
    """
    pytest.importorskip("ray")
    state = Path(tempfile.mkdtemp(prefix="nasc", dir="/tmp"))
    head, dashboard, client, ray_dashboard, agent = free_ports(5)
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "PYTHON": sys.executable,
        "NAS_STORAGE": owner_url,
        "NAS_CLUSTER_DIR": str(state),
        "RAY_HEAD_PORT": str(head),
        "RAY_DASHBOARD_PORT": str(ray_dashboard),
        "RAY_CLIENT_PORT": str(client),
        "RAY_AGENT_PORT": str(agent),
        "NAS_DASHBOARD_PORT": str(dashboard),
        **settings,
    }
    for name in ("RAY_ADDRESS", "NAS_ARTIFACTS", "NAS_DASHBOARD_STORAGE"):
        env.pop(name, None)
    try:
        started = subprocess.run(
            ["bash", str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=300
        )
        if started.returncode != 0:
            pytest.fail(f"cluster.sh up failed:\n{started.stderr}\n{logs(state)}")
        yield Cluster(state, env, owner_url, head, dashboard)
    finally:
        subprocess.run(["bash", str(SCRIPT), "down"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)
