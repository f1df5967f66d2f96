"""Dead letters: a compensation that failed after all its retries, or a capture that did
after the pivot, is kept here for an operator, never lost. The only module that writes
the dead-letters table.

A letter names its task under ``compensation`` (the field and key it has always had;
CapturePayment is the one task there that is not a compensation) and under ``task``.
"""

from __future__ import annotations

from typing import Any

from chalicelib import clock, db
from chalicelib.logs import logger
from chalicelib.vocabulary import DeadLetterState


def record(booking_id: str, task: str, *, error: str, cause: str, correlation_id: str,
           flight_number: str) -> None:
    now = clock.now_iso()
    db.put("dead_letters", {
        **db.dead_letter_key(booking_id, task, now),
        "compensation": task,
        "task": task,
        "correlation_id": correlation_id,
        "flight_number": flight_number,
        "error": error,
        "cause": cause,
        "at": now,
        "state": DeadLetterState.OPEN,
    })
    logger.error("task failed after retries; dead-lettered", extra={"task": task})


def open_letters(booking_id: str | None = None) -> list[dict[str, Any]]:
    """Every open letter, or one booking's (a Query of its partition)."""
    letters = db.scan("dead_letters") if booking_id is None else _of(booking_id)
    return [letter for letter in letters if letter.get("state") == DeadLetterState.OPEN]


def shown(letter: dict[str, Any]) -> dict[str, Any]:
    """A dead letter as an operator reads it: its time in the API's format, without the
    storage key (``entry``: the task and the stored time again)."""
    return {**{key: value for key, value in letter.items() if key != "entry"}, "at": clock.api_time(letter["at"])}


def _of(booking_id: str) -> list[dict[str, Any]]:
    return db.query("dead_letters", KeyConditionExpression="booking_id = :id",
                    ExpressionAttributeValues={":id": booking_id})


def resolve(booking_id: str, *, task: str | None = None, resolution: str | None = None) -> None:
    """The booking's open dead letters (only ``task``'s, when named): RESOLVED, with how."""
    for letter in _of(booking_id):
        if letter.get("state") != DeadLetterState.OPEN or (task is not None and letter["compensation"] != task):
            continue
        db.update("dead_letters", db.dead_letter_key(booking_id, letter["compensation"], letter["at"]),
                  "SET #state = :resolved, resolved_at = :now" + (", resolution = :how" if resolution else ""),
                  names={"#state": "state"},
                  values={":resolved": DeadLetterState.RESOLVED, ":now": clock.now_iso(),
                          **({":how": resolution} if resolution else {})})
