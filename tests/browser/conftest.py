"""Fixtures of the browser tests: `chalice local` as a subprocess, Debian's Chromium via Playwright.

The whole module is skipped, with the reason, when Chromium or Playwright is missing;
CI installs both (see docs/screenshots/README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT_DIR / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
STARTUP_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env() -> dict[str, str]:
    """The environment of this process minus anything that would point chalice local
    elsewhere: AWS credentials and profile, and what tests/conftest.py set for the
    in-process stack (the local stage's variables, table names, state machine ARNs)."""
    stage = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())["stages"]["local"]
    drop = set(stage.get("environment_variables", {})) | {"EMBEDDED_AWS", "SIMULATED_HANG_SECONDS"}
    env = {}
    for key, value in os.environ.items():
        if key.startswith(("AWS_", "POWERTOOLS_")) or key in drop:
            continue
        if key.endswith(("_STATE_MACHINE_ARN", "_TABLE")):
            continue
        env[key] = value
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_for_health(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chalice local exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"chalice local did not answer /health in {STARTUP_TIMEOUT}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`chalice local --stage local` on a free port: moto in the process, demo data seeded."""
    chalice = Path(sys.executable).with_name("chalice")
    if not chalice.exists():
        found = shutil.which("chalice")
        if found is None:
            pytest.fail("the chalice executable is not next to the Python running the tests")
        chalice = Path(found)
    port = _free_port()
    log = tmp_path_factory.mktemp("chalice") / "chalice-local.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(chalice), "local", "--stage", "local", "--no-autoreload", "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_DIR, env=_server_env(), stdout=out, stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(base_url, process, log)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    """A fresh page on the demo, loaded; JavaScript errors fail the test."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    context.set_default_timeout(20_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.goto(f"{server}/")
    opened.wait_for_selector("body[data-ready='true']")
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def screenshot() -> Any:
    """Save a full-page screenshot to docs/screenshots/<name>.png."""

    def save(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.wait_for_timeout(150)  # let the last paint settle (CSS transitions)
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        return path

    return save
