"""The metrics are CloudWatch embedded metric format lines on stdout: one JSON object
per metric, with the namespace, the dimensions and the value where CloudWatch reads them."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from chalicelib import observability


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def metric(blob: dict[str, Any]) -> tuple[str, str, list[str]]:
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    (definition,) = directive["Metrics"]
    (dimensions,) = directive["Dimensions"]
    assert directive["Namespace"] == "BookingSaga"
    assert isinstance(blob["_aws"]["Timestamp"], int)
    for name in dimensions:
        assert name in blob, f"dimension {name} has no value"
    return definition["Name"], definition["Unit"], dimensions


def test_booking_confirmed_emits_a_count_and_the_saga_duration(capsys: pytest.CaptureFixture[str]) -> None:
    observability.booking_confirmed(321.5)
    count, duration = emitted(capsys)
    assert metric(count) == ("BookingsConfirmed", "Count", ["service", "stage"])
    assert count["BookingsConfirmed"] == [1.0]
    assert metric(duration) == ("SagaDuration", "Milliseconds", ["service", "stage", "outcome"])
    assert duration["outcome"] == "CONFIRMED" and duration["SagaDuration"] == [321.5]
    assert count["service"] == "booking-saga"


def test_booking_failed_carries_the_failed_step(capsys: pytest.CaptureFixture[str]) -> None:
    observability.booking_failed("AuthorizePayment", 12.0)
    failed, duration = emitted(capsys)
    assert metric(failed) == ("BookingsFailed", "Count", ["service", "stage", "failed_step"])
    assert failed["failed_step"] == "AuthorizePayment"
    assert duration["outcome"] == "FAILED"


def test_step_and_compensation_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    observability.step_finished("ReserveSeats", "SUCCEEDED", 40)
    observability.step_finished("ReleaseSeats", "COMPENSATED", 7)
    observability.step_finished("RefundPayment", "FAILED", 9)
    observability.booking_cancelled()
    blobs = emitted(capsys)
    names = [metric(blob)[0] for blob in blobs]
    assert names == ["StepDuration", "StepDuration", "CompensationsRun", "StepDuration", "CompensationsFailed",
                     "BookingsCancelled"]
    assert blobs[0]["step"] == "ReserveSeats" and blobs[0]["status"] == "SUCCEEDED" and blobs[0]["StepDuration"] == [40]
    assert blobs[2]["compensation"] == "ReleaseSeats"
    assert metric(blobs[4])[2] == ["service", "stage", "compensation"] and blobs[4]["compensation"] == "RefundPayment"


def test_many_threads_each_line_is_whole_json(capsys: pytest.CaptureFixture[str]) -> None:
    threads = [threading.Thread(target=observability.step_finished, args=("ReserveSeats", "SUCCEEDED", i))
               for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    values = sorted(blob["StepDuration"][0] for blob in emitted(capsys))
    assert values == list(range(20))


def test_a_bad_metric_never_raises(capsys: pytest.CaptureFixture[str]) -> None:
    observability.emit("Broken", "NotAUnit", 1)
    assert emitted(capsys) == []


def test_tracing_off_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    observability.reset()
    assert observability.tracer() is None
    with observability.subsegment("ReserveSeats", booking_id="b-1"):
        pass
    observability.reset()


def test_saga_duration_from_created_at() -> None:
    assert observability.milliseconds_since(None) == 0.0
    assert observability.milliseconds_since("not a date") == 0.0
    assert observability.milliseconds_since("2000-01-01T00:00:00Z") > 0


def test_subsegment_with_the_tracer_outside_lambda_is_harmless(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("aws_xray_sdk")
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.setenv("EMBEDDED_AWS", "false")
    observability.reset()
    try:
        assert observability.tracer() is not None
        with observability.subsegment("ReserveSeats", booking_id="b-1"):
            pass
    finally:
        observability.reset()


def test_powertools_metrics_switch_turns_the_lines_off(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN POWERTOOLS_METRICS_DISABLED=true (the local stage's default) WHEN the saga
    emits THEN no EMF line is printed; with it false, the line is there."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    observability.booking_cancelled()
    assert emitted(capsys) == []
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    observability.booking_cancelled()
    assert [metric(line)[0] for line in emitted(capsys)] == ["BookingsCancelled"]
