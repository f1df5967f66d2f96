"""The step log: one small item per (booking, step or compensation), written by the step
runner around every attempt (RUNNING, then SUCCEEDED / COMPENSATED / FAILED, with
timestamps, attempt count, result or error). The only module that writes it.

It sits below the services: the step runner, the bookings service (whose pivot records
its own outcome in its transaction), the terminal bookkeeping and recovery all call it.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from chalicelib import clock, db
from chalicelib.errors import ConditionFailed
from chalicelib.logs import logger
from chalicelib.vocabulary import STATES_TIMEOUT, StepStatus, is_compensation

STEPS, COMPENSATIONS = "steps", "compensations"  # the two logs of a booking


def _log_of(name: str) -> str:
    return COMPENSATIONS if is_compensation(name) else STEPS


def _key(booking_id: str, name: str) -> dict[str, str]:
    return db.step_log_key(booking_id, _log_of(name), name)


def finished_status(name: str) -> StepStatus:
    return StepStatus.COMPENSATED if is_compensation(name) else StepStatus.SUCCEEDED


def mark_running(booking_id: str, name: str) -> int:
    """Record an attempt of a step; returns the attempt number (1 for the first)."""
    updated = db.update(
        "step_log", _key(booking_id, name),
        "SET #status = :running, started_at = if_not_exists(started_at, :now), attempt_started_at = :now "
        "ADD attempts :one REMOVE finished_at, #error",
        names={"#status": "status", "#error": "error"},
        values={":running": StepStatus.RUNNING, ":now": clock.now_iso(), ":one": 1},
        returning="UPDATED_NEW",  # just the attempt count
    )
    return int(updated["attempts"])


def finished(booking_id: str, name: str, result: dict[str, Any]) -> db.Update:
    """The write that records success: for a step that records its own outcome in its
    transaction (ConfirmBooking), or through ``mark_finished``."""
    return db.Update(
        "step_log", _key(booking_id, name),
        "SET #status = :status, finished_at = :now, #result = :result",
        names={"#status": "status", "#result": "result"},
        values={":status": finished_status(name), ":now": clock.now_iso(), ":result": result},
    )


def mark_finished(booking_id: str, name: str, result: dict[str, Any]) -> bool:
    """Record success. Returns False when the saga already gave up on this attempt
    (it timed out and RecordFailure recorded it TIMED_OUT): the late result is not kept."""
    write = finished(booking_id, name, result)
    try:
        db.apply(replace(
            write,
            # RUNNING, or already this outcome (ConfirmBooking records its own atomically).
            condition="#status = :running OR #status = :status",
            values={**(write.values or {}), ":running": StepStatus.RUNNING},
        ), returning="NONE")
    except ConditionFailed:
        logger.warning("step finished after the saga moved on; its result is not recorded")
        return False
    return True


def mark_ended(booking_id: str, name: str, error: str, cause: str, *, only_if_running: bool = True) -> None:
    """The saga's verdict on a task that ended in ``error``: TIMED_OUT for States.Timeout,
    else FAILED. Only over RUNNING unless told otherwise: a task that recorded its own
    failure keeps it, and a timed-out one is never left RUNNING."""
    status = StepStatus.TIMED_OUT if error == STATES_TIMEOUT else StepStatus.FAILED
    with contextlib.suppress(ConditionFailed):  # it ended by itself, and said so
        db.update(
            "step_log", _key(booking_id, name),
            "SET #status = :status, finished_at = :now, #error = :error",
            condition="#status = :running" if only_if_running else None,
            names={"#status": "status", "#error": "error"},
            values={":status": status, ":now": clock.now_iso(), ":error": {"error": error, "cause": cause},
                    **({":running": StepStatus.RUNNING} if only_if_running else {})},
            returning="NONE",
        )


def read(booking_id: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"steps": {name: entry}, "compensations": {name: entry}}``, in one Query."""
    log: dict[str, dict[str, dict[str, Any]]] = {STEPS: {}, COMPENSATIONS: {}}
    for item in db.query("step_log", KeyConditionExpression="booking_id = :id",
                         ExpressionAttributeValues={":id": booking_id}):
        kind, name = item["entry"].split("#", 1)
        log.setdefault(kind, {})[name] = item
    return log
