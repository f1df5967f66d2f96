"""The demo page's files (chalicelib/web/), served by the app itself: no CDN, no build."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chalicelib import saga
from chalicelib.errors import NotFound
from chalicelib.vocabulary import SagaKind

WEB_DIR = Path(__file__).resolve().parent / "web"
_ASSET_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\.[a-z]{2,4}")  # no path, no hidden file
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def asset(name: str) -> tuple[bytes, str]:
    """A file of chalicelib/web by bare name (no paths: nothing outside it is served)."""
    # A plain file name, checked before the file system sees it (a 300-character name
    # makes the operating system raise, not answer no).
    if not _ASSET_NAME.fullmatch(name):
        raise NotFound("no such asset")
    path = WEB_DIR / name
    if path.suffix not in CONTENT_TYPES or not path.is_file():
        raise NotFound(f"no asset named {name}")
    return path.read_bytes(), CONTENT_TYPES[path.suffix]


def state_machines() -> dict[str, Any]:
    """The definitions as the engine runs them (DescribeStateMachine), so the page's
    drawing is of the deployed machine itself and cannot drift from statemachine.json.
    For signed-in customers only."""
    result: dict[str, Any] = {}
    for kind in SagaKind:
        arn = saga.state_machine_arn(kind)
        described = saga.client().describe_state_machine(stateMachineArn=arn)
        # Its name, not its ARN: the page needs no account id.
        result[kind] = {"name": described["name"], "definition": json.loads(described["definition"])}
    return result
