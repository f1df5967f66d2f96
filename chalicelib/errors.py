"""Every failure the saga knows by name.

A class name is also the Step Functions error name: a Lambda that raises
``SeatUnavailable`` fails its task with ``Error: "SeatUnavailable"``, which is what
the Retry and Catch clauses of statemachine.json match. Renaming a class here
means changing the state machine too (tests/saga/test_definition.py checks).
"""

from __future__ import annotations


class BookingError(Exception):
    """Base class of every error raised on purpose by this project."""


# --- Business outcomes: the step did nothing, so only earlier steps need undoing.
class SeatUnavailable(BookingError):
    """The seat is held (unexpired) or booked by another booking."""


class CabinFull(BookingError):
    """No free seat is left in the requested cabin."""


class SeatHoldLost(BookingError):
    """The hold expired and another booking took the seat before confirmation."""


class InsufficientPoints(BookingError):
    """The loyalty account has fewer points than the booking redeems."""


class PaymentDeclined(BookingError):
    """The payment gateway declined the card."""


class PaymentVoided(BookingError):
    """The payment was compensated before the charge landed; the charge was undone."""


class AlreadyCompensated(BookingError):
    """The step arrived after its own compensation ran (it was late); it did nothing."""


class SimulatedFailure(BookingError):
    """A permanent failure injected through ``simulate_failure`` (demo and tests)."""


# --- Errors that may leave an effect behind or that are worth retrying.
class TransientStepError(BookingError):
    """A failure worth retrying: throttling, a transaction conflict, an injected transient error."""


# --- Request errors: mapped to HTTP statuses by the API, never seen by the state machine.
class RequestError(BookingError):
    """A request the API refuses; ``status`` is the HTTP status code."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequest(RequestError):
    """The request body, path or query is malformed or breaks a rule."""


class NotFound(RequestError):
    """The flight, booking or loyalty account does not exist."""

    status = 404


class Conflict(RequestError):
    """The request conflicts with the current state (seat taken, booking not cancellable, key reused)."""

    status = 409


#: Errors after which the failed step provably changed nothing. statemachine.json
#: routes these to the compensation of the *previous* step; anything else (a timeout,
#: a crash, an exhausted retry) also compensates the failed step itself, because its
#: effect may have happened.
NOTHING_HAPPENED_ERRORS = (
    "SeatUnavailable",
    "CabinFull",
    "SeatHoldLost",
    "InsufficientPoints",
    "PaymentDeclined",
    "PaymentVoided",
    "AlreadyCompensated",
    "SimulatedFailure",
)
