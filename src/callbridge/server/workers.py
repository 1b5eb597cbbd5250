"""`callbridge serve --workers N`: N server processes on one port, under a supervising parent.

Owns the parent: it reserves the port (binding it with `SO_REUSEPORT`, never listening, so port
0 picks one port for all), starts N children — each an ordinary `callbridge serve` that binds
the same port with `SO_REUSEPORT` (`reuse_port_socket`), so the kernel spreads new connections
over them — named `<CALLBRIDGE_INSTANCE_ID>-w<k>`, and passes SIGTERM (drain) and SIGINT on to
them. A child that dies is started again after a second; meanwhile its siblings close its calls
as interrupted (`server.cluster`). The parent exits once every child has, with the first
non-zero status. Each child is a full instance: the workers find each other's calls through
the shared PostgreSQL database, exactly as separate hosts do, which is why `--workers` needs it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

from callbridge.logs import get_logger

log = get_logger("callbridge.workers")
RESTART_AFTER_S = 1.0


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` with `SO_REUSEPORT` (not yet listening)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(False)
    return sock


def worker_id(base: str, index: int) -> str:
    return f"{base}-w{index}"


class Supervisor:
    """Runs and watches the worker processes (see the module docstring)."""

    def __init__(self, workers: int, host: str, port: int, log_level: str, base_id: str,
                 with_worker: bool = False) -> None:
        self._workers = workers
        self._host = host
        self._log_level = log_level
        self._base_id = base_id
        self._with_worker = with_worker
        self._reserved = reuse_port_socket(host, port)
        self.port = int(self._reserved.getsockname()[1])
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._stopping: int | None = None  # the signal passed on to the children

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "callbridge", "--log-level", self._log_level, "serve",
                "--host", self._host, "--port", str(self.port), "--reuse-port",
                *(["--with-worker"] if self._with_worker else [])]

    def _start(self, index: int) -> None:
        env = {**os.environ, "CALLBRIDGE_INSTANCE_ID": worker_id(self._base_id, index)}
        self._children[index] = subprocess.Popen(self._command(), env=env)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = signum
        for child in self._children.values():
            if child.poll() is None:
                child.send_signal(signum)

    def run(self) -> int:
        """Start the workers and supervise them until they have all exited."""
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        for index in range(self._workers):
            self._start(index)
        log.info("workers started", workers=self._workers, port=self.port)
        status = 0
        while self._children:
            time.sleep(0.2)
            for index, child in list(self._children.items()):
                code = child.poll()
                if code is None:
                    continue
                del self._children[index]
                if self._stopping is None:
                    log.error("a worker died; starting it again", worker=index, status=code)
                    time.sleep(RESTART_AFTER_S)
                    self._start(index)
                elif code != 0 and status == 0:
                    status = code
        self._reserved.close()
        return status
