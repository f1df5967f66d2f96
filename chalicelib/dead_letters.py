"""Dead letters: a compensation that failed after all its retries is kept here for an
operator, never lost. The only module that writes the dead-letters table."""

from __future__ import annotations

from typing import Any

from chalicelib import clock, db
from chalicelib.logs import logger
from chalicelib.vocabulary import DeadLetterState


def record(booking_id: str, compensation: str, *, error: str, cause: str, correlation_id: str,
           flight_number: str) -> None:
    now = clock.now_iso()
    db.put("dead_letters", {
        **db.dead_letter_key(booking_id, compensation, now),
        "compensation": compensation,
        "correlation_id": correlation_id,
        "flight_number": flight_number,
        "error": error,
        "cause": cause,
        "at": now,
        "state": DeadLetterState.OPEN,
    })
    logger.error("compensation failed after retries; dead-lettered", extra={"compensation": compensation})


def open_letters() -> list[dict[str, Any]]:
    return [letter for letter in db.scan("dead_letters") if letter.get("state") == DeadLetterState.OPEN]


def shown(letter: dict[str, Any]) -> dict[str, Any]:
    """A dead letter as an operator reads it: its time in the API's format, without the
    storage key (``entry``: the compensation and the stored time again)."""
    return {**{key: value for key, value in letter.items() if key != "entry"}, "at": clock.api_time(letter["at"])}


def resolve(booking_id: str) -> None:
    """Every dead letter of the booking: RESOLVED (its compensations have now run)."""
    letters = db.query("dead_letters", KeyConditionExpression="booking_id = :id",
                       ExpressionAttributeValues={":id": booking_id})
    for letter in letters:
        db.update("dead_letters", db.dead_letter_key(booking_id, letter["compensation"], letter["at"]),
                  "SET #state = :resolved, resolved_at = :now", names={"#state": "state"},
                  values={":resolved": DeadLetterState.RESOLVED, ":now": clock.now_iso()})
