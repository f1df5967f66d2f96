"""Metrics and tracing for the saga.

Metrics are CloudWatch embedded metric format (EMF) lines printed to stdout through
Powertools' ``single_metric``: on Lambda, CloudWatch Logs turns each line into a
metric in the ``BookingSaga`` namespace; locally (``chalice local``, the embedded
backend) the same JSON lines show up in the output. Each call emits and flushes its
own metric, so nothing is buffered in Powertools' ``Metrics`` singleton: no
``log_metrics`` decorator is needed, no metric is lost when a handler raises, and
the many threads of a local process cannot flush each other's metrics. A lock keeps
concurrent lines whole. Emitting never raises into the saga.

Metrics (dimensions ``service`` and ``stage`` on all):

* ``BookingsConfirmed`` / ``BookingsCancelled`` (Count)
* ``BookingsFailed`` (Count, + ``failed_step``)
* ``SagaDuration`` (Milliseconds, + ``outcome``)
* ``StepDuration`` (Milliseconds, + ``step``, ``status``)
* ``CompensationsRun`` / ``CompensationsFailed`` (Count, + ``compensation``)

Tracing: Powertools Tracer (X-Ray) when ``aws_xray_sdk`` is importable and
``POWERTOOLS_TRACE_DISABLED`` is not true; otherwise ``subsegment`` is a no-op (Lambda's
active tracing still records each invocation without the SDK).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from chalicelib import config
from chalicelib.vocabulary import BookingStatus, StepStatus, is_compensation

NAMESPACE = "BookingSaga"
SERVICE = "booking-saga"
_lock = threading.Lock()
_tracer: Any = None
_tracer_checked = False


def _dimensions(**extra: str) -> dict[str, str]:
    return {"service": os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE, "stage": config.stage(), **extra}


def emit(name: str, unit: str, value: float, **dimensions: str) -> None:
    """Print one metric as an EMF line, flushed at once. Never raises."""
    try:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled

        # Powertools' own switch (POWERTOOLS_METRICS_DISABLED), which its single_metric
        # does not consult: off by default on the local stage (local/console.py).
        if is_metrics_disabled():
            return

        with _lock, single_metric(name=name, unit=MetricUnit(unit), value=value,
                                  namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE,
                                  default_dimensions=_dimensions(**dimensions)):
            pass
    except Exception:  # metrics must never fail a saga step
        from chalicelib.logs import logger

        logger.debug("metric not emitted", extra={"metric": name}, exc_info=True)


# --- What the saga calls --------------------------------------------------------------
def step_finished(name: str, status: str, duration_ms: float) -> None:
    """Every step and compensation, after it ran (status SUCCEEDED, COMPENSATED or FAILED)."""
    emit("StepDuration", "Milliseconds", duration_ms, step=name, status=status)
    if is_compensation(name):
        if status == StepStatus.FAILED:
            compensation_failed(name)
        else:
            emit("CompensationsRun", "Count", 1, compensation=name)


def booking_confirmed(duration_ms: float) -> None:
    emit("BookingsConfirmed", "Count", 1)
    emit("SagaDuration", "Milliseconds", duration_ms, outcome=BookingStatus.CONFIRMED)


def booking_failed(failed_step: str, duration_ms: float) -> None:
    emit("BookingsFailed", "Count", 1, failed_step=failed_step or "unknown")
    emit("SagaDuration", "Milliseconds", duration_ms, outcome=BookingStatus.FAILED)


def booking_cancelled() -> None:
    emit("BookingsCancelled", "Count", 1)


def compensation_failed(name: str) -> None:
    """A compensation attempt failed (its Retry may still succeed; the dead letter of
    RecordFailure is the final word). The alarm of deploy/observability.py watches this."""
    emit("CompensationsFailed", "Count", 1, compensation=name)


def capture_failed() -> None:
    """A confirmed booking's capture failed after its retries and was dead-lettered: money
    the airline is owed until an operator recovers it."""
    emit("CapturesFailed", "Count", 1)


def milliseconds_since(iso_timestamp: str | None) -> float:
    """Saga duration from the booking's ``created_at`` (ISO 8601, ``Z``); 0 if unknown."""
    if not iso_timestamp:
        return 0.0
    from datetime import UTC, datetime

    try:
        started = datetime.fromisoformat(iso_timestamp.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max((datetime.now(UTC) - started).total_seconds() * 1000, 0.0)


# --- Tracing -------------------------------------------------------------------------
def tracing_enabled() -> bool:
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in config.TRUE_VALUES:
        return False
    if config.embedded_aws_requested():
        return False
    try:
        import aws_xray_sdk  # noqa: F401
    except ImportError:
        return False
    return True


def tracer() -> Any:
    """The Powertools Tracer, or None when tracing is off (see ``tracing_enabled``)."""
    global _tracer, _tracer_checked
    with _lock:
        if not _tracer_checked:
            _tracer_checked = True
            if tracing_enabled():
                from aws_lambda_powertools import Tracer

                _tracer = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE)
        return _tracer


@contextlib.contextmanager
def subsegment(name: str, **annotations: str) -> Iterator[None]:
    """An X-Ray subsegment around a block (annotated, e.g. booking_id), or nothing."""
    active = tracer()
    if active is None:
        yield
        return
    with active.provider.in_subsegment(name=name) as segment:
        for key, value in annotations.items():
            if value is not None:
                segment.put_annotation(key=key, value=value)
        yield


def reset() -> None:
    """Forget the tracer decision (tests)."""
    global _tracer, _tracer_checked
    with _lock:
        _tracer, _tracer_checked = None, False
