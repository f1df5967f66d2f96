"""Every failure the saga knows by name.

A class name is also the Step Functions error name: a Lambda that raises
``SeatUnavailable`` fails its task with ``Error: "SeatUnavailable"``, which is what
the Retry and Catch clauses of statemachine.json match. Renaming a class here means
regenerating the state machines (``python -m deploy.statemachines``; the drift test in
tests/saga/test_definition.py fails until then). A subclass of ChangedNothing, at any
depth, joins the errors the saga treats as "the step did nothing" (chalicelib/vocabulary.py).
"""

from __future__ import annotations

from typing import Any


class BookingError(Exception):
    """Base class of every error raised on purpose by this project."""


# --- Business outcomes: the step did nothing, so only earlier steps need undoing.
class ChangedNothing(BookingError):
    """Base of the errors that prove the failed step changed nothing. The booking saga
    routes them to the compensation of the *previous* step (never raised itself)."""


class SeatUnavailable(ChangedNothing):
    """The seat is held (unexpired) or booked by another booking."""


class CabinFull(ChangedNothing):
    """No free seat is left in the requested cabin."""


class SeatHoldLost(ChangedNothing):
    """The hold expired and another booking took the seat before confirmation."""


class InsufficientPoints(ChangedNothing):
    """The loyalty account has fewer points than the booking redeems."""


class PaymentDeclined(ChangedNothing):
    """The payment gateway declined the card."""


class PaymentVoided(ChangedNothing):
    """The payment was compensated before the authorisation landed; the authorisation was released."""


class AlreadyCompensated(ChangedNothing):
    """The step arrived after its own compensation ran (it was late); it did nothing."""


class SimulatedFailure(ChangedNothing):
    """A permanent failure injected through ``simulate_failure`` (demo and tests)."""


class SimulatedHang(BookingError):
    """An injected ``hang`` that ended: the task timed out long before, so the state machine
    never sees this; the call it stands for never reached the service."""


class AuthorizationExpired(BookingError):
    """The card's authorisation lapsed before the capture: nothing can be captured on it
    (the card token is long gone, so it cannot be re-authorised here either)."""


class CaptureRefused(BookingError):
    """The payment gateway refused to capture the authorisation."""


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
        #: Every invalid field of the request, as ``{"field", "message"}``; empty when
        #: the refusal is about the state of things (404, 409), not the input.
        self.problems: list[dict[str, str | None]] = []


class InvalidRequest(RequestError):
    """The request body, path or query is malformed or breaks a rule.

    Raised with one message, it is one problem; ``InvalidRequest.listing`` makes one
    refusal of every problem a request has, so the caller fixes them all in one go.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field)
        self.problems = [{"field": field, "message": message}]

    @classmethod
    def listing(cls, problems: list[dict[str, str | None]]) -> InvalidRequest:
        """One refusal for ``problems`` (at least one): with one, exactly that problem;
        with several, a message naming each field, and ``field`` the first one named."""
        if len(problems) == 1:
            return cls(str(problems[0]["message"]), problems[0]["field"])
        summary = "; ".join(cls._naming_its_field(problem) for problem in problems)
        first_field = next((problem["field"] for problem in problems if problem["field"]), None)
        refusal = cls(f"{len(problems)} fields are invalid: {summary}", first_field)
        refusal.problems = list(problems)
        return refusal

    @staticmethod
    def _naming_its_field(problem: dict[str, str | None]) -> str:
        field, message = problem["field"], str(problem["message"])
        return message if field is None or field in message else f"{field}: {message}"


class UnsupportedMediaType(RequestError):
    """The body is sent as a content type the route does not read."""

    status = 415


class Unauthorized(RequestError):
    """No valid sign-in: no token, or one that is not the user pool's, or expired."""

    status = 401


class SignInFailed(Unauthorized):
    """Wrong username or password (which of the two is never said)."""


class Forbidden(RequestError):
    """Signed in, but asking to act for someone else (another customer's loyalty account)."""

    status = 403


class TooManyRequests(RequestError):
    """The identity provider asks the caller to slow down."""

    status = 429


class NotFound(RequestError):
    """The flight, booking or loyalty account does not exist."""

    status = 404


class Conflict(RequestError):
    """The request conflicts with the current state (seat taken, booking not cancellable, key reused)."""

    status = 409


# --- Storage outcomes: raised by db.py, handled by the service that made the write.
class ConditionFailed(BookingError):
    """A condition expression was false.

    ``current`` holds the items as DynamoDB returned them when the condition failed,
    by label: the part names of a transaction (``db.transact(seat=..., booking=...)``),
    or ``"item"`` for a single write. ``failed`` names the parts whose condition was
    false. Callers ask by name (``exc.failed_on("booking")``), never by position.
    """

    SINGLE = "item"

    def __init__(self, current: dict[str, dict[str, Any] | None], failed: frozenset[str]) -> None:
        super().__init__(f"condition failed: {', '.join(sorted(failed)) or 'unknown part'}")
        self.current = current
        self.failed = failed

    @property
    def item(self) -> dict[str, Any] | None:
        """The item of a single write, as it was (None when it did not exist)."""
        return self.current.get(self.SINGLE)

    def failed_on(self, label: str) -> bool:
        return label in self.failed

    def current_of(self, label: str) -> dict[str, Any] | None:
        return self.current.get(label)

