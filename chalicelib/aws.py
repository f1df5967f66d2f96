"""AWS clients built on first use and shared by every thread of the process.

Lazy for two reasons: importing boto3 is most of a cold start, so a handler that never
calls AWS never pays it; and tests and the embedded backend start moto before the first
client is made (``reset`` forgets it when moto restarts).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Lazy:
    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._value: Any = None
        self._lock = threading.Lock()
        _every.append(self)

    def __call__(self) -> Any:
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value

    def reset(self) -> None:
        with self._lock:
            self._value = None


_every: list[Lazy] = []


def reset_all(keep: tuple[Any, ...] = ()) -> None:
    """Forget every client (tests and the embedded backend: after moto starts or stops),
    but those in ``keep``."""
    for lazy in _every:
        with lazy._lock:
            if not any(lazy._value is kept for kept in keep):
                lazy._value = None


def built() -> tuple[Any, ...]:
    """Every client built so far."""
    return tuple(lazy._value for lazy in _every if lazy._value is not None)
