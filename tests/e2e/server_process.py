"""`callbridge serve` in a child process, for tests that kill, signal or read its logs."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """`callbridge serve` in a child process, so it can be killed for real."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None,
                 log_level: str = "warning", workers: int | None = None) -> None:
        self.port = port or free_port()
        self.workers = workers
        self.log_level = log_level
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "callbridge", "--log-level", self.log_level, "serve",
                 "--host", "127.0.0.1", "--port", str(self.port),
                 *(["--workers", str(self.workers)] if self.workers else [])],
                env=self.env, stdout=log, stderr=log)

    async def start(self) -> None:
        self._spawn()
        async with httpx.AsyncClient(trust_env=False) as client:
            for _ in range(300):  # several processes starting together on a busy machine
                if self.process is not None and self.process.poll() is not None:
                    break
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the server did not come up: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=5)

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, within: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=within)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
