"""Every place that names the saga's steps agrees with chalicelib/vocabulary.py.

The ASL files are checked in tests/saga/test_definition.py (they are generated); here:
app.py's handlers, the domain functions they run, and a scan of the code that must not
spell a step, compensation or status itself.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib import steps, vocabulary
from chalicelib.models import BookingRequest, Passenger, every_leg_held, execution_input
from chalicelib.vocabulary import (
    AFTER_PIVOT,
    BOOKING_STEPS,
    BOOKKEEPING,
    CANCEL_BOOKING,
    CANCELLATION_STEPS,
    COMPENSATION_ORDER,
    COMPENSATIONS,
    FORWARD_STEPS,
    REFUND_PAYMENT,
    RESERVE_SEATS,
    STEP_OF_COMPENSATION,
    TASKS,
    VOID_PAYMENT,
    BookingStatus,
    ExecutionStatus,
    PaymentStatus,
    SeatStatus,
    StepStatus,
    Task,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Lambda functions that are not saga tasks: invoked by operators, or on a schedule.
NOT_SAGA_TASKS = {"operator", "sweep_expired_holds"}


def test_the_vocabulary_is_consistent() -> None:
    """GIVEN the vocabulary THEN task names are unique, ConfirmBooking is the one pivot and
    CapturePayment the one step after it (with its own bookkeeping on failure), the
    cancellation runs the booking saga's compensations but VoidPayment and CancelBooking,
    plus RefundPayment (the payment's, captured by then), and no step's result lands on
    another's result or error, or on a field of the execution input."""
    names = [task.name for task in (*FORWARD_STEPS, *COMPENSATIONS, *BOOKKEEPING)]
    assert len(names) == len(set(names)) == len(TASKS)
    assert len({step.compensation for step in BOOKING_STEPS}) == len(BOOKING_STEPS)
    assert [step.name for step in BOOKING_STEPS if step.pivot] == ["ConfirmBooking"]
    assert [(step.name, step.on_failure.name) for step in AFTER_PIVOT] == [("CapturePayment", "RecordCaptureFailure")]
    assert set(CANCELLATION_STEPS) - set(COMPENSATION_ORDER) == {REFUND_PAYMENT}
    assert set(COMPENSATION_ORDER) - set(CANCELLATION_STEPS) == {VOID_PAYMENT, CANCEL_BOOKING}
    assert STEP_OF_COMPENSATION[REFUND_PAYMENT.name] is STEP_OF_COMPENSATION[VOID_PAYMENT.name]
    state_keys = [task.result_key for task in TASKS.values() if hasattr(task, "result_key")]
    state_keys += [task.error_key for task in TASKS.values()]
    assert len(set(state_keys)) == len(state_keys)
    booking = {"booking_id": "b", "correlation_id": "c", "flight_number": "SA101", "seat": None, "cabin": None,
               "loyalty_id": None, "points_to_redeem": 0}
    given = execution_input(booking, BookingRequest(flight_number="SA101", cabin="ECONOMY", card_token="t",
                                                    passengers=(Passenger("A", "B"),)))
    # ReserveSeats's result is registered before it runs: until it says otherwise, every leg
    # may hold seats (what ReleaseSeats iterates over if ReserveSeats fails as a whole).
    assert given[RESERVE_SEATS.result_key] == every_leg_held(given["legs"])
    assert (set(given) - {RESERVE_SEATS.result_key}).isdisjoint(state_keys)


def test_the_statuses_pollers_wait_for() -> None:
    """The page, the tests and the invariant checker rely on which statuses end a saga."""
    assert {"CONFIRMED", "FAILED", "CANCELLED", "NEEDS_ATTENTION"} == vocabulary.TERMINAL_STATUSES
    assert {"PENDING", "CANCELLING"} == vocabulary.IN_FLIGHT_STATUSES


def _handler_call(monkeypatch: pytest.MonkeyPatch, function: str) -> tuple[Task, Any]:
    """Invoke app.py's handler ``function`` with the step runner replaced by a recorder."""
    calls: list[tuple[Task, Any]] = []

    def record(task: Task, work: Any, event: dict[str, Any]) -> dict[str, Any]:
        calls.append((task, work))
        return {}

    monkeypatch.setattr(steps, "run", record)
    monkeypatch.setattr(steps, "run_bookkeeping", record)
    getattr(app_module, function)({}, None)
    (call,) = calls
    return call


@pytest.mark.parametrize("task", list(TASKS.values()), ids=list(TASKS))
def test_each_task_has_its_handler_running_its_domain_function(monkeypatch: pytest.MonkeyPatch, task: Task) -> None:
    """GIVEN a task of the vocabulary THEN app.py has a Lambda of its function name whose
    handler runs that very task with ``chalicelib.<service>.<function>``."""
    registered = {function.name for function in app_module.app.pure_lambda_functions}
    assert task.function in registered, f"app.py has no @app.lambda_function(name={task.function!r})"
    ran, work = _handler_call(monkeypatch, task.function)
    assert ran is task
    assert work is getattr(importlib.import_module(f"chalicelib.{task.service}"), task.function)


def test_app_has_no_lambda_the_vocabulary_does_not_know() -> None:
    registered = {function.name for function in app_module.app.pure_lambda_functions}
    assert registered - NOT_SAGA_TASKS == {task.function for task in TASKS.values()}


# --- Nobody else spells the vocabulary ------------------------------------------------------
STATUS_WORDS = {
    status.value
    for enum in (BookingStatus, StepStatus, SeatStatus, PaymentStatus, ExecutionStatus)
    for status in enum
    # "NONE" is also DynamoDB's ReturnValues; only the view says it of a payment.
    if status.value != PaymentStatus.NONE
}
TASK_WORDS = set(TASKS)
# The source of the vocabulary (the scan reads Python only: the ASL files are generated).
ALLOWED = {"chalicelib/vocabulary.py"}


def _python_sources() -> list[Path]:
    roots = [PROJECT_DIR / "app.py", *sorted((PROJECT_DIR / "chalicelib").rglob("*.py"))]
    for directory in ("deploy", "bench", "local", "ops"):
        roots += sorted((PROJECT_DIR / directory).rglob("*.py"))
    return [path for path in roots if str(path.relative_to(PROJECT_DIR)) not in ALLOWED]


def _literals(path: Path) -> list[tuple[int, str]]:
    """String constants of the module, docstrings excepted (prose may name a step)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_python_module_spells_a_step_or_a_status_itself() -> None:
    """GIVEN the code outside the vocabulary (app, chalicelib, deploy, bench, local, ops)
    THEN no string literal is exactly a task name or a status: each comes from the
    vocabulary, so renaming or adding one cannot miss a place."""
    found = [
        f"{path.relative_to(PROJECT_DIR)}:{line}: {value!r}"
        for path in _python_sources()
        for line, value in _literals(path)
        if value in TASK_WORDS or value in STATUS_WORDS
    ]
    assert found == []


def test_the_page_takes_the_step_names_from_the_server() -> None:
    """GIVEN the demo page's scripts THEN none spells a task name: the page reads the
    vocabulary from GET /config and draws the machine from GET /statemachines."""
    quoted = re.compile("[\"'`](" + "|".join(sorted(TASK_WORDS)) + ")[\"'`]")
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted((PROJECT_DIR / "chalicelib" / "web").glob("*.js"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if quoted.search(line)
    ]
    assert found == []


# Capitalised words the page uses that are not saga statuses: HTTP, time zone, currency,
# and the page's own "could not reach the server".
PAGE_WORDS = {"GET", "POST", "UTC", "USD", "ERROR"}


def test_every_status_the_page_branches_on_is_one_the_server_sends() -> None:
    """GIVEN the page's scripts THEN every capitalised string literal is a status of the
    vocabulary (or one of PAGE_WORDS): a status renamed on the server fails here instead
    of silently never matching on the page."""
    literal = re.compile(r"""["'`]([A-Z][A-Z_]{2,})["'`]""")
    found = {
        f"{path.name}:{number}: {word}"
        for path in sorted((PROJECT_DIR / "chalicelib" / "web").glob("*.js"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        for word in literal.findall(line)
        if word not in STATUS_WORDS | PAGE_WORDS
    }
    assert found == set()

