"""Shared by the benchmarks: the machine, percentiles, the local stage's environment,
an embedded stack in this process, and `chalice local` as a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.vocabulary import STEP_NAMES, TERMINAL_STATUSES
from local import server
from local.server import LocalServer

PROJECT_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = PROJECT_DIR / "build" / "bench"
CHALICE = Path(sys.executable).parent / "chalice"
TERMINAL = TERMINAL_STATUSES
FORWARD_STEPS = STEP_NAMES  # the simulate_failure keys of the forward steps a booking can fail at


def machine() -> dict[str, Any]:
    ram_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_kb = int(line.split()[1])
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(ram_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def clean_env() -> dict[str, str]:
    return server.clean_environment()


def local_stage_env() -> dict[str, str]:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"]["local"]["environment_variables"])
    return env


def use_local_stage_in_process(log_level: str = "ERROR") -> None:
    """Set this process up like tests/conftest.py: the local stage's variables, but the
    embedded stack started by the benchmark itself (EMBEDDED_AWS off)."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            del os.environ[key]
    for key, value in local_stage_env().items():
        os.environ[key] = value
    os.environ["EMBEDDED_AWS"] = "false"
    os.environ["POWERTOOLS_LOG_LEVEL"] = log_level
    import logging

    logging.getLogger("moto").setLevel(logging.CRITICAL)  # each failed execution logs its Fail state
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "BookingSaga")
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))


@contextlib.contextmanager
def embedded_stack(seed: bool = True, definitions: dict[str, str] | None = None) -> Iterator[Any]:
    """The whole stack in moto in this process (as the tests' ``aws`` fixture);
    ``definitions`` may replace a state machine's definition text."""
    use_local_stage_in_process()
    import app as app_module
    from local.embedded import EmbeddedAws
    from ops.seed import seed_demo

    aws = EmbeddedAws(app_module.app, definitions=definitions).start()
    if seed:
        seed_demo()
    try:
        yield aws
    finally:
        wait_for_execution_threads()
        aws.stop()


def demo_customer(loyalty_id: str | None = None) -> Any:
    """The caller of an in-process booking: the demo customer owning ``loyalty_id`` (else FF0001)."""
    from chalicelib.customers import DEMO_USERNAMES, Customer

    username = loyalty_id or DEMO_USERNAMES[0]
    return Customer(id=f"bench-{username}", username=username, loyalty_id=username)


def wait_for_execution_threads(timeout: float = 30.0) -> None:
    from moto.stepfunctions.parser.utils import TMP_THREADS

    for thread in list(TMP_THREADS):
        thread.join(timeout=timeout)
    TMP_THREADS.clear()


def chalice_local(timeout: float = 90.0,
                  project_dir: Path = PROJECT_DIR) -> contextlib.AbstractContextManager[LocalServer]:
    """`chalice local --stage local` on a free port (local/server.py), its
    output in build/bench/; ``project_dir`` serves another tree (``unpacked_commit``)."""
    return server.chalice_local(OUT_DIR / f"chalice-local-{time.time_ns()}.log", timeout=timeout,
                                project_dir=project_dir)


@contextlib.contextmanager
def unpacked_commit(commit: str) -> Iterator[Path]:
    """``commit``'s tree in a temporary directory (``git archive``: the repository and
    its worktrees are left alone), removed afterwards: to run that code with this
    interpreter and compare it with this code in one run."""
    import io
    import subprocess
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f"bench-{commit}-") as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(PROJECT_DIR), "archive", "--format=tar", commit],
                                 capture_output=True, check=True, timeout=120).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
        yield tree


def booking_body(flight_number: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "flight_number": flight_number,
        "passenger": {"first_name": "Bench", "last_name": "Mark"},
        "cabin": "ECONOMY",
        "payment": {"card_token": "tok_visa"},
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}
