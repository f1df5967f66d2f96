"""`chalice local --stage local` as a subprocess on a free port, for the tests that
drive the app over real HTTP (e2e, browser) and for the benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chalicelib import config
from deploy.asl import PROJECT_DIR
from local import hooks, persistence


@dataclass(frozen=True)
class LocalServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def chalice_executable() -> Path:
    beside_python = Path(sys.executable).with_name("chalice")
    found = beside_python if beside_python.exists() else shutil.which("chalice")
    if not found:
        raise RuntimeError("the chalice executable is neither next to this Python nor on PATH")
    return Path(found)


def clean_environment() -> dict[str, str]:
    """This process's environment without any AWS_* variable (the server must need
    none) and without what an in-process test stack exported for itself."""
    stage = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())["stages"]["local"]
    own = {*stage["environment_variables"], config.BOOKING_STATE_MACHINE_ENV, config.CANCELLATION_STATE_MACHINE_ENV}
    own |= {persistence.STATE_DIR_ENV, persistence.FRESH_ENV, persistence.FSYNC_ENV}  # only where asked
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("AWS_", "POWERTOOLS_")) and key not in own}
    return {**environment, "PYTHONUNBUFFERED": "1"}


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def chalice_local(log: Path, *, timeout: float = 90.0, state_dir: Path | None = None,
                  project_dir: Path = PROJECT_DIR, retry_wait_factor: float | None = None) -> Iterator[LocalServer]:
    """Start the server, wait for GET /health, yield it; always stop it. Its output goes
    to ``log`` (a file: a full pipe would block the server) and into any error. With
    ``state_dir`` it keeps its state there as `make run` does (local/persistence.py);
    without, in memory only, so runs stay independent and the work tree clean.
    ``project_dir``: the app to serve (benchmarks: another commit's tree).
    ``retry_wait_factor``: tests only, the engine's retry sleeps scaled by it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = clean_environment()
    if state_dir is not None:
        environment[persistence.STATE_DIR_ENV] = str(state_dir)
    if retry_wait_factor is not None:
        environment[hooks.RETRY_WAIT_FACTOR_ENV] = str(retry_wait_factor)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(chalice_executable()), "local", "--stage", "local", "--no-autoreload",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=project_dir, env=environment, stdout=sink, stderr=subprocess.STDOUT,
        )
    server = LocalServer(process, port, log)
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(server.url):
            if process.poll() is not None:
                raise RuntimeError(f"chalice local exited with {process.returncode}:\n{server.output()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no answer to /health in {timeout:.0f} s:\n{server.output()[-4000:]}")
            time.sleep(0.2)
        yield server
    finally:
        _stop(process)
