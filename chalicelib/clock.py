"""The time, in one place, so tests can move it instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime

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
