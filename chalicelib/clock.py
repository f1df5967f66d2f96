"""The time, in one place, so tests can move it instead of sleeping; and the one format
every time in the API is shown in (``api_time``).

What is stored keeps its own precision (microseconds, the order of a booking's steps and
of a customer's listing); what is shown is rounded down to milliseconds by ``api_time``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

#: Every time the API answers: ISO 8601, UTC, milliseconds, ``Z``, as JavaScript's
#: ``Date.prototype.toISOString`` writes it, e.g. ``2026-12-02T07:35:50.123Z``.
API_TIME_FORMAT = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
_API_TIME = re.compile(API_TIME_FORMAT)
#: A stored time, as ``now_iso`` writes it (older items may hold fewer digits).
STORED_TIME_FORMAT = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z"

_offset_seconds = 0.0


def now_epoch() -> int:
    """Seconds since the epoch, as stored in hold expiry times."""
    return int(time.time() + _offset_seconds)


def now_iso() -> str:
    """An ISO 8601 UTC timestamp with microseconds, as stored in step logs."""
    moment = datetime.fromtimestamp(time.time() + _offset_seconds, tz=UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def advance(seconds: float) -> None:
    """Move the clock forward (tests: expire a hold without waiting 15 minutes)."""
    global _offset_seconds
    _offset_seconds += seconds


def reset() -> None:
    global _offset_seconds
    _offset_seconds = 0.0


def api_time(value: str | int | float | datetime) -> str:
    """``value`` in the API's one format (API_TIME_FORMAT): a stored ISO 8601 time (any
    precision, ``Z`` or an offset), epoch seconds (a hold's expiry) or a datetime (Step
    Functions' dates; a naive one is UTC)."""
    if isinstance(value, str):
        if _API_TIME.fullmatch(value):
            return value
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromtimestamp(value, tz=UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
