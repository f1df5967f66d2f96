"""The shape of statemachine.json and cancellation.json: the rules the saga relies on,
checked statically so a careless edit fails here before it fails in production."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.vocabulary import BOOKING_SAGA_TASK_NAMES, COMPENSATION_NAMES, STEP_NAMES, STEP_OF_COMPENSATION, TASKS
from deploy import asl, statemachines

BOOKING = asl.load("booking")
CANCELLATION = asl.load("cancellation")
TRANSIENT = {
    "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException", "TransientStepError",
}
# Spelled out here, not derived: which errors prove a step did nothing decides whether
# its compensation runs.
CHANGED_NOTHING = {
    "SeatUnavailable", "CabinFull", "SeatHoldLost", "InsufficientPoints", "PaymentDeclined", "PaymentVoided",
    "AlreadyCompensated", "SimulatedFailure",
}
# Where a failure of each step goes when it provably did nothing (previous step's
# compensation) and when it may have half-happened (its own compensation).
EXPECTED_CATCH = {
    "ReserveSeats": ("RecordFailure", "ReleaseSeats"),
    "RedeemPoints": ("ReleaseSeats", "RefundPoints"),
    "AuthorizePayment": ("ShouldRefundPoints", "VoidPayment"),
    "AwardMiles": ("VoidPayment", "ReverseMiles"),
    "ConfirmBooking": ("ReverseMiles", "CancelBooking"),
}


def state(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return definition["States"][name]  # type: ignore[no-any-return]


def task_of(definition: dict[str, Any], name: str) -> dict[str, Any]:
    """The Task state that invokes ``name``'s Lambda: the state itself, or for a task that
    runs per leg, the one inside its Map's item processor."""
    found = state(definition, name)
    if found["Type"] == "Map":
        return found["ItemProcessor"]["States"][f"{name}Leg"]  # type: ignore[no-any-return]
    return found


def test_state_names_are_the_step_names() -> None:
    for name in BOOKING_SAGA_TASK_NAMES:
        assert state(BOOKING, name)["Type"] == ("Map" if TASKS[name].per_leg else "Task")
        assert task_of(BOOKING, name)["Type"] == "Task"
    assert BOOKING["StartAt"] == "ReserveSeats"


@pytest.mark.parametrize("step", [name for name in STEP_NAMES if not TASKS[name].per_leg])
def test_forward_task_retries_transient_errors_and_catches_everything(step: str) -> None:
    task = state(BOOKING, step)
    retry, *pivot = task["Retry"]
    assert set(retry["ErrorEquals"]) == TRANSIENT
    # Only the pivot retries a timeout: its commit may have happened, and a retry finds out.
    assert [clause["ErrorEquals"] for clause in pivot] == ([["States.Timeout"]] if step == "ConfirmBooking" else [])
    assert retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 2
    assert task["TimeoutSeconds"] > 0
    nothing_happened, anything = task["Catch"]
    assert set(nothing_happened["ErrorEquals"]) == CHANGED_NOTHING
    assert anything["ErrorEquals"] == ["States.ALL"]
    # Both keep the input and record the error where RecordFailure looks for it.
    assert nothing_happened["ResultPath"] == anything["ResultPath"] == f"$.{step}Error"
    assert (nothing_happened["Next"], anything["Next"]) == EXPECTED_CATCH[step]
    assert STEP_OF_COMPENSATION[anything["Next"]].name == step


def test_reserve_seats_is_a_map_whose_legs_report_their_outcome_as_data() -> None:
    """ReserveSeats is an inline Map over the legs; each leg's task retries transient errors
    and catches everything inside the item processor: provably nothing held (a
    changed-nothing error) or in doubt (anything else: release it). A Choice after the Map
    sends any failed leg to ReleaseSeats, which then RecordFailure; the Map failing as a
    whole goes to ReleaseSeats too (every leg, as the execution input registers)."""
    reserve = state(BOOKING, "ReserveSeats")
    assert (reserve["Type"], reserve["ItemsPath"], reserve["ResultPath"]) == ("Map", "$.legs", "$.reservation")
    assert reserve["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    assert reserve["ItemSelector"]["leg.$"] == "$$.Map.Item.Value.leg"
    task = task_of(BOOKING, "ReserveSeats")
    (retry,) = task["Retry"]
    assert set(retry["ErrorEquals"]) == TRANSIENT and task["TimeoutSeconds"] > 0 and task["End"]
    nothing_happened, anything = task["Catch"]
    assert set(nothing_happened["ErrorEquals"]) == CHANGED_NOTHING and anything["ErrorEquals"] == ["States.ALL"]
    inner = reserve["ItemProcessor"]["States"]
    assert inner[nothing_happened["Next"]]["Parameters"]["held"] is False
    assert inner[anything["Next"]]["Parameters"]["held"] is True
    assert all(inner[clause["Next"]]["Parameters"]["failed"] is True for clause in task["Catch"])
    assert task["ResultSelector"]["failed"] is False
    (whole,) = reserve["Catch"]
    assert (whole["ErrorEquals"], whole["Next"]) == (["States.ALL"], "ReleaseSeats")
    held = state(BOOKING, reserve["Next"])
    failed, points = held["Choices"]
    assert (failed["Variable"], failed["BooleanEquals"], failed["Next"]) == (
        "$.reservation.any_failed", True, "ReleaseSeats")
    assert (points["Variable"], points["Next"], held["Default"]) == ("$.points_to_redeem", "RedeemPoints",
                                                                     "AuthorizePayment")
    assert state(BOOKING, "ReleaseSeats")["Next"] == "RecordFailure"


def test_release_seats_is_a_map_over_what_the_legs_reported() -> None:
    """ReleaseSeats iterates over ReserveSeats's legs (every leg until it reports) and
    releases only a leg that held or may have; a leg whose release still fails reports its
    error and the chain goes on."""
    for definition in (BOOKING, CANCELLATION):
        release = state(definition, "ReleaseSeats")
        assert (release["Type"], release["ItemsPath"]) == ("Map", "$.reservation.legs")
        inner = release["ItemProcessor"]["States"]
        held = inner[release["ItemProcessor"]["StartAt"]]
        (skip,) = held["Choices"]
        assert (skip["Variable"], skip["BooleanEquals"], held["Default"]) == ("$.held", False, "ReleaseSeatsLeg")
        assert "Resource" not in inner[skip["Next"]]


@pytest.mark.parametrize("definition", [BOOKING, CANCELLATION], ids=["booking", "cancellation"])
def test_compensations_retry_more_and_never_stop_the_chain(definition: dict[str, Any]) -> None:
    forward_attempts = task_of(BOOKING, "ReserveSeats")["Retry"][0]["MaxAttempts"]
    for name, task in definition["States"].items():
        if name not in COMPENSATION_NAMES:
            continue
        if TASKS[name].per_leg:
            (catch,) = task["Catch"]
            assert catch["Next"] == task["Next"] and catch["ResultPath"] == f"$.{name}Error"
            leg = task_of(definition, name)
            (retry,) = leg["Retry"]
            assert retry["ErrorEquals"] == ["States.ALL"] and retry["MaxAttempts"] > forward_attempts
            (caught,) = leg["Catch"]
            assert caught["ErrorEquals"] == ["States.ALL"] and leg["End"]
            continue
        (retry,) = task["Retry"]
        assert retry["ErrorEquals"] == ["States.ALL"] and retry["MaxAttempts"] > forward_attempts
        (catch,) = task["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
        assert catch["ResultPath"] == f"$.{name}Error"
        if name == "CancelBooking":
            continue  # the pivot's: see test_the_pivot_is_settled_by_asking_never_undone
        assert catch["Next"] == task["Next"], "a failed compensation must not skip the ones after it"


def test_the_pivot_is_settled_by_asking_never_undone() -> None:
    """After ConfirmBooking timed out or crashed, CancelBooking asks whether it committed: a
    confirmation that did goes forward to CapturePayment, one that did not lets the
    earlier steps be compensated; and when even the asking fails, nothing is compensated
    (RecordFailure, NEEDS_ATTENTION) while the outcome is unknown."""
    cancel = state(BOOKING, "CancelBooking")
    assert cancel["Catch"][0]["Next"] == "RecordFailure"
    committed = state(BOOKING, cancel["Next"])
    (choice,) = committed["Choices"]
    assert committed["Type"] == "Choice" and choice["Variable"] == "$.CancelBookingResult.confirmed"
    assert (choice["BooleanEquals"], choice["Next"], committed["Default"]) == (True, "CapturePayment", "ReverseMiles")


def test_the_capture_comes_after_the_pivot_retried_and_never_compensated() -> None:
    """ConfirmBooking goes on to CapturePayment, which retries as the pivot does (transient
    errors, then a timeout: the capture is idempotent), and whose one Catch records the
    failure (RecordCaptureFailure) and confirms the booking all the same: no compensation
    is reachable from it."""
    assert state(BOOKING, "ConfirmBooking")["Next"] == "CapturePayment"
    capture = state(BOOKING, "CapturePayment")
    retry, timeout = capture["Retry"]
    assert set(retry["ErrorEquals"]) == TRANSIENT and timeout["ErrorEquals"] == ["States.Timeout"]
    (catch,) = capture["Catch"]
    assert (catch["ErrorEquals"], catch["ResultPath"], catch["Next"]) == (
        ["States.ALL"], "$.CapturePaymentError", "RecordCaptureFailure")
    assert capture["Next"] == state(BOOKING, "RecordCaptureFailure")["Next"] == "BookingConfirmed"
    assert state(BOOKING, "RecordCaptureFailure")["Catch"][0]["Next"] == "CaptureFailureUnrecorded"
    reachable, todo = set(), ["CapturePayment"]
    while todo:
        name = todo.pop()
        if name in reachable:
            continue
        reachable.add(name)
        current = BOOKING["States"][name]
        todo += [current[key] for key in ("Next", "Default") if key in current]
        todo += [clause["Next"] for clause in (*current.get("Catch", []), *current.get("Choices", []))]
    assert reachable.isdisjoint(COMPENSATION_NAMES)


def _walk(definition: dict[str, Any], start: str, choose: str) -> list[str]:
    """The states visited from ``start`` when each points Choice takes branch ``choose``
    ('points' = the points branch, else Default), the pivot not having committed."""
    path, name = [], start
    while name:
        path.append(name)
        current = definition["States"][name]
        if current["Type"] == "Choice" and "BooleanEquals" in current["Choices"][0]:
            name = current["Default"]  # the pivot did not commit: compensate
        elif current["Type"] == "Choice":
            name = current["Choices"][0]["Next"] if choose == "points" else current["Default"]
        else:
            name = current.get("Next")
    return path


def test_compensation_chain_is_the_reverse_of_the_forward_steps() -> None:
    chain = [name for name in _walk(BOOKING, "CancelBooking", "points") if name in COMPENSATION_NAMES]
    assert [STEP_OF_COMPENSATION[name].name for name in chain] == list(reversed(STEP_NAMES))
    assert _walk(BOOKING, "CancelBooking", "none")[-2:] == ["RecordFailure", "BookingFailed"]
    assert "RefundPoints" not in _walk(BOOKING, "CancelBooking", "none")


def test_cancellation_runs_refunds_then_frees_the_seat() -> None:
    chain = [name for name in _walk(CANCELLATION, CANCELLATION["StartAt"], "points") if name in COMPENSATION_NAMES]
    assert chain == ["RefundPayment", "ReverseMiles", "RefundPoints", "ReleaseSeats"]


def test_every_error_the_definition_names_is_an_exception_class() -> None:
    classes = {name for name, value in inspect.getmembers(errors, inspect.isclass)}
    named = {
        error
        for definition in (BOOKING, CANCELLATION)
        for task in definition["States"].values()
        for clause in task.get("Retry", []) + task.get("Catch", [])
        for error in clause["ErrorEquals"]
        if not error.startswith(("States.", "Lambda."))
    }
    assert named <= classes


def test_failed_booking_ends_in_fail_with_error_and_cause() -> None:
    fail = state(BOOKING, "BookingFailed")
    assert fail["Type"] == "Fail" and fail["ErrorPath"] and fail["CausePath"]
    assert state(BOOKING, "BookingConfirmed")["Type"] == "Succeed"


def test_committed_definitions_are_what_the_generator_writes() -> None:
    """statemachine.json, cancellation.json and the README's drawing are generated from
    chalicelib/vocabulary.py: an edit to one by hand, or to the vocabulary without
    regenerating, fails here (python -m deploy.statemachines rewrites them)."""
    assert statemachines.out_of_date() == [], "run python -m deploy.statemachines"


def test_a_changed_nothing_error_at_any_depth_is_one() -> None:
    """GIVEN a subclass of a subclass of ChangedNothing WHEN the vocabulary lists the
    changed-nothing errors THEN it is among them (the saga must not compensate a step
    that provably did nothing, nor skip one that may have done something)."""
    from chalicelib import vocabulary

    class SeatGone(errors.SeatUnavailable):
        """A made-up refinement of SeatUnavailable."""

    found = [error.__name__ for error in vocabulary._subclasses(errors.ChangedNothing)]
    assert "SeatGone" in found and set(vocabulary.NOTHING_HAPPENED) == CHANGED_NOTHING
