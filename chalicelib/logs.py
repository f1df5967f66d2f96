"""Structured JSON logs (Powertools Logger) with the booking's ids on every line.

Keys are bound per thread: the embedded backend runs many handlers at once in one
process, and on Lambda each invocation clears what the previous one bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger

logger = Logger(service="booking-saga")


@contextmanager
def bound(**keys: object) -> Iterator[None]:
    """Add ``keys`` (booking_id, correlation_id, step...) to every line logged inside."""
    previous = dict(logger.thread_safe_get_current_keys())
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(**{key: value for key, value in keys.items() if value is not None})
    try:
        yield
    finally:
        logger.thread_safe_clear_keys()
        if previous:  # nested: an operator's recovery runs steps inside its own context
            logger.thread_safe_append_keys(**previous)


def bound_value(key: str) -> str | None:
    """A key bound to this thread's log lines (the request's correlation id)."""
    value = logger.thread_safe_get_current_keys().get(key)
    return str(value) if value is not None else None
