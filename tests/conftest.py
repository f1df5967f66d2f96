"""Fixtures: the whole stack in moto, started fresh for each test that asks for it.

The stage variables of the "local" stage in .chalice/config.json are the test
environment, except that the test starts the embedded backend itself (EMBEDDED_AWS
off), so each test gets empty tables and can shorten moto's retry sleeps.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
_stage = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())["stages"]["local"]
for _key, _value in _stage["environment_variables"].items():
    os.environ.setdefault(_key, _value)
os.environ["EMBEDDED_AWS"] = "false"
os.environ["SIMULATED_HANG_SECONDS"] = "2"
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
for _leak in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_leak, None)

import app as app_module  # noqa: E402  (after the environment is set)
from chalicelib import clock  # noqa: E402
from local import hooks  # noqa: E402
from local.embedded import EmbeddedAws, dynamodb_backend  # noqa: E402
from ops.seed import seed_demo, seed_demo_customers  # noqa: E402
from tests.support import SignedInClient, join_execution_threads  # noqa: E402

RETRY_WAIT_FACTOR = 0.01  # 1 s IntervalSeconds -> 10 ms


def _expected_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("slow")
    return 0.0 if marker is None else float(marker.kwargs.get("seconds", 10))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest tests first (``@pytest.mark.slow(seconds=...)``; stable otherwise): with
    `make test`'s workers (pytest-xdist, whole files per worker, in this order) the longest
    files start at once on different workers instead of one of them ending the run alone."""
    items.sort(key=lambda item: -_expected_seconds(item))


@pytest.fixture
def app() -> Any:
    return app_module.app


# The demo data as the first seed_demo() of the session wrote it: moto's items of each
# table it filled. Seeding writes 1,620 seats through botocore (about 1 s a test); a deep
# copy of the same items is about 30 ms. The user pool is seeded for real every time (its
# users are new in each stack).
_seeded_items: dict[str, Any] = {}


def _seed() -> None:
    tables = dynamodb_backend().tables
    if not _seeded_items:
        seed_demo()
        _seeded_items.update({name: copy.deepcopy(table.items) for name, table in tables.items() if table.items})
        return
    for name, items in _seeded_items.items():
        tables[name].items = copy.deepcopy(items)
    seed_demo_customers()


def _start(definitions: dict[str, str] | None = None) -> EmbeddedAws:
    aws = EmbeddedAws(app_module.app, definitions=definitions).start()
    hooks.scale_retry_waits(RETRY_WAIT_FACTOR)
    _seed()
    return aws


def _stop(aws: EmbeddedAws) -> None:
    clock.reset()
    aws.stop()


@pytest.fixture
def aws() -> Iterator[EmbeddedAws]:
    """Tables, functions and state machines in moto, with the demo data."""
    stack = _start()
    yield stack
    join_execution_threads()
    _stop(stack)


@pytest.fixture
def aws_factory() -> Iterator[Any]:
    """Start the stack with replaced definitions (e.g. a 1-second TimeoutSeconds)."""
    started: list[EmbeddedAws] = []

    def start(definitions: dict[str, str]) -> EmbeddedAws:
        started.append(_start(definitions))
        return started[-1]

    yield start
    join_execution_threads()
    for stack in started:
        _stop(stack)


@pytest.fixture
def anonymous_client(aws: EmbeddedAws) -> Iterator[Any]:
    """Chalice's test client, signed in as nobody."""
    from chalice.test import Client

    with Client(app_module.app) as test_client:
        yield test_client


@pytest.fixture
def client(anonymous_client: Any) -> Any:
    """The test client signed in as the demo customer FF0001 (owner of loyalty account
    FF0001): every request carries FF0001's ID token unless it sends its own."""
    return SignedInClient(anonymous_client, "FF0001")
