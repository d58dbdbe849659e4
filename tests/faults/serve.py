"""``optivgi-csms serve`` as a real process, started, killed and started again on the same port and database."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env() -> dict[str, str]:
    """The environment without the developer's OPTIVGI_* settings: the process reads only what it is given."""
    return {key: value for key, value in os.environ.items() if not key.startswith("OPTIVGI_") and key != "DATABASE_URL"}


def upgrade(cwd: Path, database_url: str) -> None:
    """``optivgi-csms db upgrade`` on the database."""
    command = [sys.executable, "-m", "optivgi_csms", "db", "upgrade", "--database-url", database_url]
    done = subprocess.run(command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def spawn_serve(cwd: Path, log_path: Path, *arguments: str) -> subprocess.Popen[str]:
    """``optivgi-csms serve ARGUMENTS`` in ``cwd``, its output in ``log_path`` (it starts in milliseconds: no need
    to leave the event loop for it)."""
    with log_path.open("w") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "optivgi_csms", "serve", *arguments],
            cwd=cwd,
            env=clean_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )


def log_tail(log_path: Path, chars: int = 3000) -> str:
    """The end of a process's output."""
    return log_path.read_text()[-chars:] if log_path.exists() else ""


async def wait_listening(
    process: subprocess.Popen[str], ports: tuple[int, ...], log_path: Path, deadline: float
) -> None:
    """Return once ``process`` accepts connections on every port; fails if it exits or ``deadline`` (monotonic)
    passes first."""
    for port in ports:
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited: {log_tail(log_path)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"serve did not start listening on {port}"
                await asyncio.sleep(0.05)


class ServeHandle:
    """Killing and stopping the ``serve`` process a test holds in ``process``."""

    process: subprocess.Popen[str] | None = None

    def kill(self) -> float:
        """SIGKILL: no shutdown, no flush, nothing but what the database already holds. Returns when (monotonic)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        return time.monotonic()

    def stop(self) -> None:
        """Make sure no process is left (a failed test must not leave one behind)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class ServeProcess(ServeHandle):
    """One ``serve`` process after another on the same port and database; every log kept."""

    def __init__(self, cwd: Path, database_url: str, *settings: str) -> None:
        self.cwd = cwd
        self.database_url = database_url
        self.settings = settings
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.logs: list[str] = []
        self._log_files: list[Path] = []

    async def start(self, timeout_s: float = 30.0) -> float:
        """Start a process and wait until it listens; returns how long that took (s)."""
        started = time.monotonic()
        log_path = self.cwd / f"serve-{len(self._log_files)}.log"
        self._log_files.append(log_path)
        self.process = spawn_serve(
            self.cwd,
            log_path,
            *("--host", "127.0.0.1", "--port", str(self.port), "--api", "false"),
            *("--database-url", self.database_url, "--log-format", "json", *self.settings),
        )
        await wait_listening(self.process, (self.port,), log_path, started + timeout_s)
        return time.monotonic() - started

    def log(self) -> str:
        """Every process's output so far."""
        return "\n".join(path.read_text() for path in self._log_files if path.exists())
