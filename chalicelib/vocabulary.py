"""The saga's vocabulary, defined once: its steps in order, the compensation of each,
the pivot, the step after it (never compensated), where each result lands in the
execution state, the errors that prove a step changed nothing, and the statuses of a
booking and of its records.

Everything else derives from here or is checked against it by a test:

* statemachine.json and cancellation.json are generated from it
  (``python -m deploy.statemachines``) and committed; a test fails when they differ;
* app.py's handlers (tests/unit/test_vocabulary.py ties each to its entry here);
* the step runner, the step log, recovery, metrics dimensions and the alarms;
* the demo page, which gets it from ``GET /config``.

Naming: a task's ASL state, its step-log entry and its ``simulate_failure`` key are
its ``name`` (``AuthorizePayment``); its Lambda function and its domain function are
``function`` (``authorize_payment``), defined in ``chalicelib/<service>.py``.

A task that runs once per leg of the booking (``per_leg``: ReserveSeats, ReleaseSeats) is a
Map state over the legs; each leg's invocation is its own step-log entry and
``simulate_failure`` target, ``<name>#<leg>`` (``ReserveSeats#1``: ``entry_name``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import ModuleType
from typing import Any

from chalicelib.errors import ChangedNothing, TransientStepError


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class Task:
    """A Lambda task of a state machine."""

    name: str  # ASL state name, step-log entry, simulate_failure key
    service: str  # chalicelib/<service>.py holds the domain function
    summary: str  # the state's Comment in the ASL
    # Runs once per leg of the booking: a Map state over the legs, one invocation per leg.
    per_leg: bool = field(default=False, kw_only=True)

    @property
    def function(self) -> str:
        """The Lambda function and the domain function: ``ReserveSeats`` -> ``reserve_seats``."""
        return _snake(self.name)

    @property
    def error_key(self) -> str:
        """Where a Catch records this task's error in the execution state."""
        return f"{self.name}Error"


@dataclass(frozen=True)
class Compensation(Task):
    """Undoes a forward step; a no-op (leaving a marker) when there is nothing to undo."""

    @property
    def result_key(self) -> str:
        return f"{self.name}Result"


@dataclass(frozen=True)
class Step(Task):
    """A forward step of the booking saga."""

    result_key: str  # ResultPath: later steps read the result under this key
    compensation: Compensation
    # The step (and its compensation) runs only when this execution-input field is > 0.
    runs_if_positive: str | None = None
    # The pivot: once it commits the booking is sold. An unknown outcome (a timeout) is
    # retried to find out before anything is compensated.
    pivot: bool = False


@dataclass(frozen=True)
class Bookkeeping(Task):
    """Records how a saga ended; not a step, writes no step-log entry."""

    result_key: str


@dataclass(frozen=True)
class AfterPivot(Task):
    """A forward step after the pivot: the booking is sold, so it is retried and never
    compensated. When it still fails, ``on_failure`` records that for an operator (whose
    recover runs it again) and the booking stands."""

    result_key: str
    on_failure: Bookkeeping


# --- The booking saga ------------------------------------------------------------------
RELEASE_SEATS = Compensation(
    "ReleaseSeats", "seats", "Undo ReserveSeats on one leg: free every seat this booking holds or bought on it.",
    per_leg=True,
)
REFUND_POINTS = Compensation("RefundPoints", "loyalty", "Undo RedeemPoints: credit back the points it debited.")
VOID_PAYMENT = Compensation(
    "VoidPayment", "payments",
    "Undo AuthorizePayment: release the authorisation (nothing was captured, so nothing is refunded); with "
    "none, leave a tombstone so a late one is refused and released at once.",
)
REVERSE_MILES = Compensation("ReverseMiles", "loyalty", "Undo AwardMiles: take back the miles it credited.")
CANCEL_BOOKING = Compensation(
    "CancelBooking", "bookings",
    "ConfirmBooking's outcome is unknown (it timed out or crashed): ask. If it committed, the confirmation "
    "stands and the saga goes forward; if not, bar a late confirmation, then compensate the earlier steps.",
)

RESERVE_SEATS = Step(
    "ReserveSeats", "seats",
    "Hold one seat per passenger on one leg for 15 minutes, in one transaction: the seats chosen, and free "
    "seats of the cabin, together where the cabin allows, for the others; all of them or none.",
    result_key="reservation", compensation=RELEASE_SEATS, per_leg=True,
)
REDEEM_POINTS = Step(
    "RedeemPoints", "loyalty", "Debit the loyalty account: 100 points = 1 unit of currency off the fare.",
    result_key="redemption", compensation=REFUND_POINTS, runs_if_positive="points_to_redeem",
)
AUTHORIZE_PAYMENT = Step(
    "AuthorizePayment", "payments",
    "Authorise the amount due (the fare after discount) on the card through the payment gateway: the money "
    "is held, not taken, until CapturePayment.",
    result_key="authorization", compensation=VOID_PAYMENT,
)
AWARD_MILES = Step(
    "AwardMiles", "loyalty", "Credit 1 mile per currency unit paid to the loyalty account, if any.",
    result_key="miles", compensation=REVERSE_MILES,
)
CONFIRM_BOOKING = Step(
    "ConfirmBooking", "bookings",
    "Sell the seat, issue the ticket and the boarding pass. This is the saga's pivot: once it commits the "
    "booking is sold, and a timeout says nothing about whether it did, so it is retried (it is idempotent: a "
    "retry after a commit returns the confirmation) before anything is compensated.",
    result_key="confirmation", compensation=CANCEL_BOOKING, pivot=True,
)

#: The forward steps in the order they run; a failure compensates in reverse order.
BOOKING_STEPS: tuple[Step, ...] = (RESERVE_SEATS, REDEEM_POINTS, AUTHORIZE_PAYMENT, AWARD_MILES, CONFIRM_BOOKING)
#: The compensations in the order the booking saga runs them.
COMPENSATION_ORDER: tuple[Compensation, ...] = tuple(step.compensation for step in reversed(BOOKING_STEPS))

RECORD_CAPTURE_FAILURE = Bookkeeping(
    "RecordCaptureFailure", "outcomes",
    "CapturePayment still failed after its retries: the booking stays CONFIRMED with its tickets, the payment "
    "becomes CAPTURE_FAILED and a dead letter asks an operator to recover (capture again).",
    result_key="capture_failure",
)
CAPTURE_PAYMENT = AfterPivot(
    "CapturePayment", "payments",
    "Capture the authorised amount, now that the tickets are issued. After the pivot: retried, never "
    "compensated; a capture that still fails is recorded for an operator and the booking stands.",
    result_key="capture", on_failure=RECORD_CAPTURE_FAILURE,
)
#: The steps after the pivot, in the order they run.
AFTER_PIVOT: tuple[AfterPivot, ...] = (CAPTURE_PAYMENT,)
#: Every forward task of the booking saga, in order: the compensable steps, then those after the pivot.
FORWARD_STEPS: tuple[Step | AfterPivot, ...] = (*BOOKING_STEPS, *AFTER_PIVOT)

REFUND_PAYMENT = Compensation(
    "RefundPayment", "payments",
    "Undo the payment of a confirmed booking: refund what CapturePayment captured; an authorisation never "
    "captured (still AUTHORIZED, or CAPTURE_FAILED) is released instead.",
)
#: Cancelling a confirmed booking: the money goes back first, the seats are freed last.
#: (No CancelBooking: the booking ends CANCELLED, not back at PENDING.)
CANCELLATION_STEPS: tuple[Compensation, ...] = (REFUND_PAYMENT, REVERSE_MILES, REFUND_POINTS, RELEASE_SEATS)

RECORD_FAILURE = Bookkeeping(
    "RecordFailure", "outcomes",
    "Mark the booking FAILED, or NEEDS_ATTENTION and dead-letter the compensations that failed.",
    result_key="failure",
)
RECORD_CANCELLATION = Bookkeeping(
    "RecordCancellation", "outcomes",
    "Mark the booking CANCELLED, or NEEDS_ATTENTION and dead-letter the compensations that failed.",
    result_key="outcome",
)
BOOKKEEPING: tuple[Bookkeeping, ...] = (RECORD_FAILURE, RECORD_CAPTURE_FAILURE, RECORD_CANCELLATION)

#: The steps a booking can fail at (and be compensated for): before and at the pivot.
STEP_NAMES = tuple(step.name for step in BOOKING_STEPS)
#: Every forward step with a step-log entry, the ones after the pivot included.
FORWARD_STEP_NAMES = tuple(step.name for step in FORWARD_STEPS)
#: Every compensation: the booking saga's, then those only a cancellation runs.
COMPENSATIONS: tuple[Compensation, ...] = (
    *COMPENSATION_ORDER, *(item for item in CANCELLATION_STEPS if item not in COMPENSATION_ORDER),
)
COMPENSATION_NAMES = tuple(compensation.name for compensation in COMPENSATIONS)
#: What the booking saga runs that ``simulate_failure`` may target: every forward step,
#: then its compensations in the order they run.
BOOKING_SAGA_TASK_NAMES = FORWARD_STEP_NAMES + tuple(compensation.name for compensation in COMPENSATION_ORDER)
TASKS: dict[str, Task] = {task.name: task for task in (*FORWARD_STEPS, *COMPENSATIONS, *BOOKKEEPING)}
#: The forward step whose effect each compensation undoes (recovery re-runs a compensation
#: only where its step may have acted). RefundPayment undoes the payment of a confirmed
#: booking: whatever AuthorizePayment held, captured since or not.
STEP_OF_COMPENSATION: dict[str, Step] = {
    **{step.compensation.name: step for step in BOOKING_STEPS}, REFUND_PAYMENT.name: AUTHORIZE_PAYMENT,
}


LEG_SEPARATOR = "#"
#: A per-leg Map's outcome of each leg, as data (deploy/statemachines.py writes the Map,
#: models.StepInput reads it): whether the leg holds seats (or may: release it) and whether
#: it failed; and, over the legs, whether any failed.
LEG_HELD, LEG_FAILED, ANY_LEG_FAILED = "held", "failed", "any_failed"


def entry_name(task: Task, leg: int | None = None) -> str:
    """The step-log entry (and ``simulate_failure`` target) of one invocation: the task's
    name, and for a task that runs per leg, its leg (``ReserveSeats#0``)."""
    return f"{task.name}{LEG_SEPARATOR}{leg}" if task.per_leg and leg is not None else task.name


def split_entry(name: str) -> tuple[str, int | None]:
    """``ReserveSeats#1`` -> ``("ReserveSeats", 1)``; ``AwardMiles`` -> ``("AwardMiles", None)``."""
    task, separator, leg = name.partition(LEG_SEPARATOR)
    return (task, int(leg)) if separator and leg.isdigit() else (name, None)


def task_name(name: str) -> str:
    """The task an entry belongs to (``ReserveSeats#1`` -> ``ReserveSeats``)."""
    return split_entry(name)[0]


def is_compensation(name: str) -> bool:
    return task_name(name) in STEP_OF_COMPENSATION


def service_module(task: Task) -> ModuleType:
    """``chalicelib/<service>.py``, which holds the task's domain function (imported on
    demand: the services import this module)."""
    return importlib.import_module(f"chalicelib.{task.service}")


def domain_function(task: Task) -> Callable[..., dict[str, Any]]:
    """What the task's Lambda runs: ``<service>.<function>`` (``seats.reserve_seats``)."""
    return getattr(service_module(task), task.function)  # type: ignore[no-any-return]


# --- Errors ----------------------------------------------------------------------------
#: The error a task gets when it outlasts its TimeoutSeconds: its outcome is unknown.
STATES_TIMEOUT = "States.Timeout"
#: Errors worth retrying: the Lambda service's own, and ours (throttling, conflicts).
RETRYABLE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    TransientStepError.__name__,
)


def _subclasses(error: type[Exception]) -> list[type[Exception]]:
    return [sub for direct in error.__subclasses__() for sub in (direct, *_subclasses(direct))]


#: Errors after which the failed step provably changed nothing (every subclass of
#: errors.ChangedNothing): the booking saga compensates only the steps before it. Any
#: other error (a timeout, a crash, exhausted retries) compensates the step itself too.
NOTHING_HAPPENED = tuple(error.__name__ for error in _subclasses(ChangedNothing))


class FailureMode(StrEnum):
    """What ``simulate_failure`` can ask of a step or compensation."""

    PERMANENT = "permanent"  # every attempt fails
    TRANSIENT = "transient"  # the first attempt fails; Retry absorbs it
    TIMEOUT = "timeout"  # the work is done, then the task hangs past its TimeoutSeconds
    HANG = "hang"  # the task hangs past its TimeoutSeconds before its call reaches the service


FAILURE_MODES = tuple(mode.value for mode in FailureMode)


# --- Statuses --------------------------------------------------------------------------
class BookingStatus(StrEnum):
    PENDING = "PENDING"  # the booking saga is running
    CONFIRMED = "CONFIRMED"  # ticketed
    FAILED = "FAILED"  # every completed step was undone
    CANCELLING = "CANCELLING"  # the cancellation saga is running
    CANCELLED = "CANCELLED"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"  # a compensation failed: an operator recovers it


#: The only status changes a booking makes, each a conditional write (booking_record.py):
#: a late writer finds the status moved on and changes nothing. A confirmation is never
#: taken back: CONFIRMED leads only to a cancellation the customer asked for.
TRANSITIONS: dict[BookingStatus, frozenset[BookingStatus]] = {
    BookingStatus.PENDING: frozenset({BookingStatus.CONFIRMED, BookingStatus.FAILED, BookingStatus.NEEDS_ATTENTION}),
    BookingStatus.CONFIRMED: frozenset({BookingStatus.CANCELLING}),
    BookingStatus.CANCELLING: frozenset({BookingStatus.CANCELLED, BookingStatus.NEEDS_ATTENTION}),
    BookingStatus.NEEDS_ATTENTION: frozenset({BookingStatus.FAILED, BookingStatus.CANCELLED}),
    BookingStatus.FAILED: frozenset(),
    BookingStatus.CANCELLED: frozenset(),
}

#: No saga is running for a booking in these statuses: what a caller polls for.
TERMINAL_STATUSES = frozenset({
    BookingStatus.CONFIRMED, BookingStatus.FAILED, BookingStatus.CANCELLED, BookingStatus.NEEDS_ATTENTION,
})
#: A saga is (or should be) running for a booking in these statuses.
IN_FLIGHT_STATUSES = frozenset(BookingStatus) - TERMINAL_STATUSES
#: The statuses in which a booking owns its seat and its money.
OWNING_STATUSES = frozenset({BookingStatus.CONFIRMED, BookingStatus.CANCELLING})


class StepStatus(StrEnum):
    """A step-log entry: RUNNING, then SUCCEEDED (a step), COMPENSATED (a compensation),
    FAILED, or TIMED_OUT. None stays RUNNING once its execution has ended."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    COMPENSATED = "COMPENSATED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"  # the saga gave up waiting (States.Timeout): it may or may not have acted
    NOT_STARTED = "NOT_STARTED"  # only in the API's view
    SKIPPED = "SKIPPED"  # only in the API's view: a step whose condition was false


class SeatStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    HELD = "HELD"  # by a booking, until hold_expires_at
    BOOKED = "BOOKED"


class PaymentStatus(StrEnum):
    REQUESTED = "REQUESTED"  # the booking asked for a payment: its card token waits here, and only here
    AUTHORIZED = "AUTHORIZED"  # the amount is held on the card, not yet taken
    CAPTURED = "CAPTURED"  # the held amount is taken
    CAPTURE_FAILED = "CAPTURE_FAILED"  # confirmed, but the capture failed after its retries: an operator recovers
    DECLINED = "DECLINED"
    REFUNDED = "REFUNDED"
    # The authorisation was released; with no authorisation (a tombstone VoidPayment left),
    # one landing later is refused and released at once.
    VOIDED = "VOIDED"
    NONE = "NONE"  # only in the API's view: nothing was authorised


class DeadLetterState(StrEnum):
    OPEN = "OPEN"  # a compensation (or a capture) failed after its retries: an operator must recover it
    RESOLVED = "RESOLVED"  # recovery has run it since (or written the capture off as lost revenue)


class SagaKind(StrEnum):
    """The state machines; a booking has at most one execution of each."""

    BOOKING = "booking"  # statemachine.json
    CANCELLATION = "cancellation"  # cancellation.json


class ExecutionStatus(StrEnum):
    """Step Functions' own status of an execution (DescribeExecution)."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"


def describe() -> dict[str, Any]:
    """The vocabulary as JSON, for the demo page (``GET /config``)."""
    return {
        "steps": [
            *({"name": step.name, "compensation": step.compensation.name, "result_key": step.result_key,
               "pivot": step.pivot, "runs_if_positive": step.runs_if_positive, "per_leg": step.per_leg}
              for step in BOOKING_STEPS),
            # After the pivot: no compensation, never the failed step of a booking.
            *({"name": step.name, "compensation": None, "result_key": step.result_key, "pivot": False,
               "runs_if_positive": None, "after_pivot": True} for step in AFTER_PIVOT),
        ],
        "compensation_order": [compensation.name for compensation in COMPENSATION_ORDER],
        "cancellation_steps": [compensation.name for compensation in CANCELLATION_STEPS],
        "failure_modes": list(FAILURE_MODES),
        "booking_statuses": [status.value for status in BookingStatus],
        "terminal_statuses": sorted(TERMINAL_STATUSES),
        "seat_statuses": [status.value for status in SeatStatus],
    }
