"""Each saga Lambda handler invoked directly: success, failure, and replays.

Step Functions retries tasks and Lambda may deliver an invocation twice, so running a
handler again with the same input must change nothing and return the same result. The
step log on the booking records every attempt by design; everything else must not move.

How each step is made idempotent (conditional writes, not Powertools' idempotency
utility, because every effect here is already a single conditional write or a
transaction keyed by (booking, step), so a separate idempotency table would add a write
per step and protect nothing more):
- ReserveSeats: the booking records its seat; a replay finds its own hold.
- RedeemPoints/AwardMiles/RefundPoints/ReverseMiles: ledger key (booking, kind).
- AuthorizePayment/CapturePayment/VoidPayment/RefundPayment: one payment record per booking,
  each change conditional on the status it leaves, + gateway idempotency keys.
- ConfirmBooking/CancelBooking: conditions on the booking's status.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

import app as app_module
from chalicelib import api, booking_record, booking_view, db, errors, loyalty, payments, seats, step_log, validation
from chalicelib.models import BASE_FARES, CURRENCY, execution_input, leg_event
from chalicelib.vocabulary import COMPENSATIONS, FORWARD_STEPS, TASKS, TRANSITIONS, BookingStatus
from tests.support import (
    balance,
    booking_body,
    customer,
    dynamodb_requests,
    hold_seat,
    owner_of,
    payment,
    seat,
    snapshot,
)

# Every handler, by its Lambda name, in the order the saga runs them (CapturePayment after
# the pivot; the compensations of the booking saga, then RefundPayment, a cancellation's).
FORWARD = [(step.function, step.result_key) for step in FORWARD_STEPS]
COMPENSATION_FUNCTIONS = [compensation.function for compensation in COMPENSATIONS]
BOOKING_COMPENSATIONS = [name for name in COMPENSATION_FUNCTIONS if name != "refund_payment"]


def business_state() -> dict[str, Any]:
    """Every table, minus the step log (which counts attempts on purpose)."""
    state = snapshot()
    del state["step_log"]
    state["bookings"] = [{key: value for key, value in item.items() if key != "updated_at"}
                         for item in state["bookings"]]
    return state


def new_booking(**overrides: Any) -> dict[str, Any]:
    """A PENDING booking and the execution input the state machine would pass."""
    request = validation.parse_booking_request(booking_body(**overrides), fault_injection_allowed=True)
    booking, _ = api.open_booking(request, customer=owner_of(overrides), correlation_id="corr-test",
                                  idempotency_key=None)
    return execution_input(booking, request)


PER_LEG = {task.function for task in TASKS.values() if task.per_leg}


def invoke(name: str, event: dict[str, Any]) -> dict[str, Any]:
    """The handler on ``event``; a per-leg one on the first leg, as its Map's iteration gets it."""
    handler = getattr(app_module, name)
    if name in PER_LEG and "leg" not in event:
        event = leg_event(event, 0)
    return handler(json.loads(json.dumps(event)), None)  # type: ignore[no-any-return]


def test_every_handler_replays_without_a_second_effect(aws: Any) -> None:
    """GIVEN a booking run step by step through its handlers
    WHEN each forward step, then each compensation, is invoked three times
    THEN the second and third runs return the first run's result and change nothing."""
    event = new_booking(loyalty_id="FF0001", points_to_redeem=1_000, seat="8D", cabin=None)
    for name, result_key in FORWARD:
        first = invoke(name, event)
        after_first = business_state()
        assert invoke(name, event) == first
        assert invoke(name, event) == first
        assert business_state() == after_first, f"{name} changed state when replayed"
        event[result_key] = first
    assert booking_record.get(event["booking_id"])["status"] == "CONFIRMED"
    assert seat("SA101", "8D")["status"] == "BOOKED"
    assert payment(event["booking_id"])["status"] == "CAPTURED"  # type: ignore[index]

    for name in COMPENSATION_FUNCTIONS:
        invoke(name, event)
        after_first = business_state()
        invoke(name, event)
        invoke(name, event)
        assert business_state() == after_first, f"{name} changed state when replayed"
    assert seat("SA101", "8D")["status"] == "AVAILABLE"
    assert balance("FF0001") == 50_000
    # VoidPayment, finding a capture, refunds it (a booking saga never captures before its
    # pivot); RefundPayment then has nothing left to give back.
    assert payment(event["booking_id"])["status"] == "REFUNDED"  # type: ignore[index]


def test_void_and_refund_replay_without_a_second_gateway_call(aws: Any, monkeypatch: Any) -> None:
    """GIVEN an authorised payment WHEN VoidPayment runs three times THEN the hold is
    released once, VOIDED with the amount it held; GIVEN a captured one WHEN RefundPayment
    runs three times THEN it is refunded once. A replay changes nothing."""
    calls: list[str] = []
    gateway = payments.gateway()
    def counted(method: str, original: Any) -> Any:
        def call(**arguments: Any) -> Any:
            calls.append(method)
            return original(**arguments)
        return call

    for method in ("void", "refund", "capture"):
        monkeypatch.setattr(gateway, method, counted(method, getattr(gateway, method)))
    held = new_booking()
    held["reservation"] = invoke("reserve_seats", held)
    held["authorization"] = invoke("authorize_payment", held)
    for _ in range(3):
        assert invoke("void_payment", held)["voided"] in (BASE_FARES["ECONOMY"], 0)
    assert payment(held["booking_id"])["status"] == "VOIDED"  # type: ignore[index]
    assert payments.seen(payment(held["booking_id"])) == {"status": "VOIDED", "amount": BASE_FARES["ECONOMY"]}

    taken = new_booking()
    taken["reservation"] = invoke("reserve_seats", taken)
    taken["authorization"] = invoke("authorize_payment", taken)
    invoke("capture_payment", taken)
    results = [invoke("refund_payment", taken) for _ in range(3)]
    assert results[0]["refunded"] == BASE_FARES["ECONOMY"] and all(r["refunded"] == 0 for r in results[1:])
    assert payment(taken["booking_id"])["status"] == "REFUNDED"  # type: ignore[index]
    assert calls == ["void", "capture", "refund"]


def test_compensations_with_nothing_to_undo_leave_only_markers_that_refuse_late_steps(aws: Any) -> None:
    """GIVEN a booking none of whose steps ran (they timed out before doing anything)
    WHEN every compensation runs
    THEN no seat, balance or money moves; each leaves a marker instead, so a forward
    step that arrives late (its Lambda was still running) is refused and does nothing."""
    event = new_booking(loyalty_id="FF0001", points_to_redeem=1_000, seat="9A", cabin=None)
    before = business_state()
    results = {name: invoke(name, event) for name in BOOKING_COMPENSATIONS}
    after = business_state()

    assert results["release_seats"]["released"] == []
    assert results["refund_points"]["points"] == results["reverse_miles"]["points"] == 0
    assert results["void_payment"]["voided"] == 0
    assert after["seats"] == before["seats"] and after["flights"] == before["flights"]
    assert balance("FF0001") == 50_000
    assert [item["status"] for item in after["payments"]] == ["VOIDED"]
    assert sorted((entry["kind"], entry["points"], entry.get("voided_by")) for entry in after["loyalty"]
                  if "kind" in entry) == [("AWARD", 0, "REVERSE"), ("REDEEM", 0, "REFUND")]
    (booking,) = after["bookings"]
    assert "released_at" in booking["legs"][0] and "confirmation_cancelled_at" in booking

    event["reservation"] = {"seat": "9A", "cabin": "ECONOMY", "fare": BASE_FARES["ECONOMY"]}
    event["authorization"] = {"amount": 11_900}
    for name, error in [
        ("reserve_seats", errors.AlreadyCompensated), ("redeem_points", errors.AlreadyCompensated),
        ("authorize_payment", errors.PaymentVoided), ("award_miles", errors.AlreadyCompensated),
    ]:
        with pytest.raises(error):
            invoke(name, event)
    assert business_state() == after
    assert seat("SA101", "9A")["status"] == "AVAILABLE"
    assert balance("FF0001") == 50_000


@pytest.mark.parametrize(("forward", "compensation", "kind"), [
    ("redeem_points", "refund_points", "REFUND"), ("award_miles", "reverse_miles", "REVERSE"),
])
def test_a_posting_that_commits_between_its_reversals_read_and_tombstone_is_undone(
    aws: Any, monkeypatch: pytest.MonkeyPatch, forward: str, compensation: str, kind: str,
) -> None:
    """GIVEN a loyalty posting whose Lambda commits just after its reversal read nothing
    WHEN the reversal tries to leave its tombstone at the posting's key
    THEN the tombstone is refused by the posting it would hide, and the reversal undoes
    that posting instead: the balance is back where it was and no tombstone is left."""
    event = new_booking(loyalty_id="FF0001", points_to_redeem=1_000, seat="9A", cabin=None)
    event["reservation"] = {"seat": "9A", "cabin": "ECONOMY", "fare": BASE_FARES["ECONOMY"]}
    event["authorization"] = {"amount": 11_900}
    read_entry = loyalty._entry

    def the_posting_lands_after_the_read(*args: Any) -> Any:
        seen = read_entry(*args)
        invoke(forward, event)
        return seen

    monkeypatch.setattr(loyalty, "_entry", the_posting_lands_after_the_read)
    result = invoke(compensation, event)

    assert result["points"] != 0 and balance("FF0001") == 50_000
    entries = {entry["kind"]: entry for entry in loyalty.records_of("FF0001") if "kind" in entry}
    assert set(entries) == {kind, {"REFUND": "REDEEM", "REVERSE": "AWARD"}[kind]}
    assert entries[kind]["points"] == result["points"] and not any("voided_by" in e for e in entries.values())


@pytest.mark.parametrize(("name", "overrides", "prepare", "error"), [
    ("reserve_seats", {"seat": "2A", "cabin": None}, "take_2A", errors.SeatUnavailable),
    ("redeem_points", {"loyalty_id": "FF0001", "points_to_redeem": 60_000, "cabin": "FIRST"}, None,
     errors.InsufficientPoints),
    ("authorize_payment", {"payment": {"card_token": "tok_decline"}}, None, errors.PaymentDeclined),
])
def test_failing_handler_raises_its_error_every_time_and_writes_once(
    aws: Any, name: str, overrides: dict[str, Any], prepare: str | None, error: type[Exception],
) -> None:
    """GIVEN a step bound to fail for a business reason WHEN invoked twice THEN it raises
    the error the state machine catches by name, and the second run changes nothing."""
    if prepare == "take_2A":
        invoke("reserve_seats", new_booking(seat="2A", cabin=None))
    event = new_booking(**overrides)
    event["reservation"] = {"fare": BASE_FARES["FIRST" if "FIRST" in json.dumps(overrides) else "ECONOMY"]}
    with pytest.raises(error):
        invoke(name, event)
    after_first = business_state()
    with pytest.raises(error):
        invoke(name, event)
    assert business_state() == after_first
    log = step_log.read(event["booking_id"])["steps"]
    step_name = {"reserve_seats": "ReserveSeats#0", "redeem_points": "RedeemPoints",
                 "authorize_payment": "AuthorizePayment"}[name]
    assert log[step_name]["status"] == "FAILED" and log[step_name]["attempts"] == 2
    assert log[step_name]["error"]["error"] == error.__name__


@pytest.mark.parametrize("name", ["redeem_points", "authorize_payment", "award_miles"])
def test_concurrent_duplicate_invocations_have_one_effect(aws: Any, name: str) -> None:
    """GIVEN the same invocation delivered three times at once (Lambda may do that)
    THEN there is one debit, one charge, one credit."""
    event = new_booking(loyalty_id="FF0001", points_to_redeem=1_000)
    event["reservation"] = invoke("reserve_seats", event)
    event["redemption"] = {"points_redeemed": 1_000} if name != "redeem_points" else None
    event["authorization"] = {"amount": 11_900} if name == "award_miles" else None
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(invoke(name, event))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and all(result == results[0] for result in results)
    if name == "redeem_points":
        assert balance("FF0001") == 50_000 - 1_000
    if name == "award_miles":
        assert balance("FF0001") == 50_000 + 119
    if name == "authorize_payment":
        assert payment(event["booking_id"])["amount"] == 11_900  # type: ignore[index]


# --- The booking's status: only along TRANSITIONS ---------------------------------------------
STATUS_WRITERS = {
    # writer -> (the status it writes, how)
    "confirmation": (BookingStatus.CONFIRMED, lambda booking_id: db.transact(
        booking=booking_record.confirmation(booking_id, passengers=[
            {"first_name": "A", "last_name": "B", "ticket_number": "1760000000000", "boarding_passes": [{}]}]))),
    "mark_failed": (BookingStatus.FAILED, lambda booking_id: booking_record.mark_failed(
        booking_id, BookingStatus.FAILED, failed_step="AuthorizePayment", error={"error": "E", "cause": "c"})),
    "mark_failed_attention": (BookingStatus.NEEDS_ATTENTION, lambda booking_id: booking_record.mark_failed(
        booking_id, BookingStatus.NEEDS_ATTENTION, failed_step="AuthorizePayment", error={"error": "E", "cause": "c"})),
    "mark_not_started": (BookingStatus.FAILED, lambda booking_id: booking_record.mark_not_started(booking_id, "x")),
    "begin_cancellation": (BookingStatus.CANCELLING, lambda booking_id: booking_record.begin_cancellation(
        booking_id, booking_record.get(booking_id)["customer_id"])),
    "mark_cancelled": (BookingStatus.CANCELLED,
                       lambda booking_id: booking_record.mark_cancelled(booking_id, BookingStatus.CANCELLED)),
    "mark_cancelled_attention": (BookingStatus.NEEDS_ATTENTION, lambda booking_id: booking_record.mark_cancelled(
        booking_id, BookingStatus.NEEDS_ATTENTION)),
    "mark_recovered": (BookingStatus.FAILED,
                       lambda booking_id: booking_record.mark_recovered(booking_id, BookingStatus.FAILED)),
    "mark_recovered_cancelled": (BookingStatus.CANCELLED, lambda booking_id: booking_record.mark_recovered(
        booking_id, BookingStatus.CANCELLED)),
}


@pytest.mark.parametrize("writer", list(STATUS_WRITERS))
def test_every_status_writer_moves_only_along_the_transition_table(aws: Any, writer: str) -> None:
    """Issue 12, part 2. GIVEN a booking in each status in turn WHEN a writer of the booking's
    status runs THEN it succeeds exactly when TRANSITIONS allows that change, and otherwise
    changes nothing: a late writer never overwrites a status that moved on (a terminal one
    least of all)."""
    writes, write = STATUS_WRITERS[writer]
    for status in BookingStatus:
        booking_id = new_booking()["booking_id"]
        db.update("bookings", db.booking_key(booking_id), "SET #s = :s", names={"#s": "status"},
                  values={":s": status})
        before = booking_record.get(booking_id)
        allowed = writes in TRANSITIONS[status] and _writer_starts_from(writer, status)
        try:
            write(booking_id)
        except (errors.ConditionFailed, errors.Conflict):
            assert not allowed, f"{writer} refused {status} -> {writes}"
            assert booking_record.get(booking_id) == before
        else:
            assert allowed, f"{writer} moved a {status} booking to {writes}"
            assert booking_record.get(booking_id)["status"] == writes


def _writer_starts_from(writer: str, status: BookingStatus) -> bool:
    """Each writer owns one edge of the table: the saga that calls it knows where it starts."""
    starts = {"confirmation": "PENDING", "mark_failed": "PENDING", "mark_failed_attention": "PENDING",
              "mark_not_started": "PENDING", "begin_cancellation": "CONFIRMED", "mark_cancelled": "CANCELLING",
              "mark_cancelled_attention": "CANCELLING", "mark_recovered": "NEEDS_ATTENTION",
              "mark_recovered_cancelled": "NEEDS_ATTENTION"}
    return starts[writer] == status


# --- Requests: one write per step where it can be, no read before a write ---------------------
def test_a_forward_step_is_one_transaction_carrying_its_own_outcome(aws: Any) -> None:
    """GIVEN a booking that redeems points
    WHEN ReserveSeats, RedeemPoints and AwardMiles run through their handlers
    THEN each makes exactly one DynamoDB request, its transaction, whose last part is its
    own step-log entry: no RUNNING write before the work, no read, no separate outcome;
    each entry says SUCCEEDED, one attempt, with the result the step returned."""
    event = new_booking(loyalty_id="FF0001", points_to_redeem=1_000)
    expected_tables = {
        "reserve_seats": ("seats", "bookings", "step_log"),
        "redeem_points": ("loyalty", "loyalty", "step_log"),
        "award_miles": ("loyalty", "loyalty", "step_log"),
    }
    event["authorization"] = {"amount": 11_900}
    for name, result_key in [("reserve_seats", "reservation"), ("redeem_points", "redemption"),
                             ("award_miles", "miles")]:
        with dynamodb_requests() as requests:
            event[result_key] = invoke(name, event)
        assert requests.seen == [("TransactWriteItems", expected_tables[name])], name
    log = step_log.read(event["booking_id"])["steps"]
    for step_name, result_key in [("ReserveSeats#0", "reservation"), ("RedeemPoints", "redemption"),
                                  ("AwardMiles", "miles")]:
        entry = log[step_name]
        assert (entry["status"], entry["attempts"], entry["result"]) == ("SUCCEEDED", 1, event[result_key])
        assert entry["started_at"] <= entry["finished_at"]


@pytest.mark.parametrize(("name", "overrides", "after_first"), [
    ("reserve_seats", {"seat": "8D", "cabin": None}, ["TransactWriteItems", "UpdateItem"]),
    # An auto-assigned replay tries another seat: the refusal names the booking's seats,
    # whose holds are read (one request) to see they are still this booking's.
    ("reserve_seats", {"cabin": "ECONOMY"}, ["TransactWriteItems", "BatchGetItem", "UpdateItem"]),
    ("redeem_points", {"loyalty_id": "FF0001", "points_to_redeem": 1_000}, ["TransactWriteItems", "UpdateItem"]),
    ("award_miles", {"loyalty_id": "FF0001"}, ["TransactWriteItems", "UpdateItem"]),
])
def test_a_replay_learns_its_first_result_from_the_refusal_and_changes_nothing(
    aws: Any, monkeypatch: pytest.MonkeyPatch, name: str, overrides: dict[str, Any], after_first: list[str],
) -> None:
    """GIVEN a step that ran once
    WHEN it is invoked again with the same input (a Retry, a duplicate delivery)
    THEN it returns the first run's result and changes nothing but its step-log entry
    (one more attempt), with no read before its write: its refused transaction brings
    back what the first run wrote, and its outcome is one write of its own."""
    event = new_booking(**overrides)
    event["reservation"] = invoke("reserve_seats", event) if name != "reserve_seats" else None
    event["authorization"] = {"amount": 11_900}
    first = invoke(name, event)
    before = business_state()
    if "cabin" in overrides:  # the replay's random pick is another seat, as it nearly always is
        held = {item["seat"] for item in first["seats"]}
        monkeypatch.setattr(seats, "seats_together", lambda free, count, rng=None: [
            seat for seat in free if seat not in held][:count])

    with dynamodb_requests() as requests:
        again = invoke(name, event)

    assert again == first
    assert requests.operations() == after_first
    assert business_state() == before
    step_name = {"reserve_seats": "ReserveSeats#0", "redeem_points": "RedeemPoints", "award_miles": "AwardMiles"}[name]
    entry = step_log.read(event["booking_id"])["steps"][step_name]
    assert (entry["status"], entry["attempts"], entry["result"]) == ("SUCCEEDED", 2, first)


def test_an_auto_assigned_replay_never_holds_a_second_seat(aws: Any) -> None:
    """GIVEN ReserveSeats for any ECONOMY seat, run once
    WHEN it runs five more times
    THEN every run answers the first seat, and that is the only seat held for the booking."""
    event = new_booking(cabin="ECONOMY")
    first = invoke("reserve_seats", event)
    answers = {invoke("reserve_seats", event)["seats"][0]["seat"] for _ in range(5)}
    held = [item["seat"] for item in db.scan("seats") if item.get("booking_id") == event["booking_id"]]
    assert answers == {first["seats"][0]["seat"]} and held == [first["seats"][0]["seat"]]


def test_concurrent_duplicates_of_an_auto_assigned_reserve_seats_hold_one_seat(aws: Any) -> None:
    """GIVEN ReserveSeats for any ECONOMY seat delivered three times at once
    THEN all three answer the same seat and only that seat is held for the booking: the
    duplicates that lost are refused by the booking's note and answer the winner's hold."""
    event = new_booking(cabin="ECONOMY")
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(invoke("reserve_seats", event))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = [item["seat"] for item in db.scan("seats") if item.get("booking_id") == event["booking_id"]]
    assert len(results) == 3 and all(result == results[0] for result in results)
    assert held == [results[0]["seats"][0]["seat"]]


def test_a_replay_whose_hold_was_lost_says_so_and_takes_nothing(aws: Any) -> None:
    """GIVEN a booking whose hold expired and was taken by another booking
    WHEN its ReserveSeats is replayed
    THEN it fails with SeatHoldLost (the step changed nothing this time) and holds no
    other seat; the other booking keeps the seat."""
    event = new_booking(seat="9C", cabin=None)
    invoke("reserve_seats", event)
    hold_seat("SA101", "9C", "another-booking", seconds=600)
    before = business_state()

    with pytest.raises(errors.SeatHoldLost):
        invoke("reserve_seats", event)

    assert business_state() == before
    assert seat("SA101", "9C")["booking_id"] == "another-booking"


# --- The step log: the saga's verdict and late attempts ------------------------------------------
def test_a_late_attempt_never_overwrites_the_sagas_verdict_but_a_later_one_records_its_own(aws: Any) -> None:
    """GIVEN an attempt of RefundPayment that began before the saga gave up on it (the saga's
    verdict TIMED_OUT), and one that begins after (recovery re-running it)
    WHEN each records its outcome
    THEN the late one is refused and the verdict stands; the later one is recorded."""
    booking_id = new_booking()["booking_id"]
    late = step_log.begin(booking_id, "RefundPayment")
    step_log.mark_ended(booking_id, "RefundPayment", "States.Timeout", "too slow", only_if_unfinished=False)

    assert step_log.mark_finished(late, {"refunded": 0}) is False
    step_log.mark_failed(late, "Boom", "late failure")
    assert step_log.read(booking_id)["compensations"]["RefundPayment"]["status"] == "TIMED_OUT"

    rerun = step_log.begin(booking_id, "RefundPayment")
    assert step_log.mark_finished(rerun, {"refunded": 0}) is True
    entry = step_log.read(booking_id)["compensations"]["RefundPayment"]
    assert (entry["status"], entry["result"], entry.get("error")) == ("COMPENSATED", {"refunded": 0}, None)


def test_the_verdict_on_a_task_that_left_no_entry_creates_one(aws: Any) -> None:
    """GIVEN a compensation that timed out without writing anything (no RUNNING write is
    made before an ordinary attempt), and one that recorded its own failure
    WHEN the saga records its verdict on both
    THEN the first gets a TIMED_OUT entry, the second keeps its own FAILED entry."""
    booking_id = new_booking()["booking_id"]
    failed = step_log.begin(booking_id, "ReleaseSeats")
    step_log.mark_failed(failed, "SimulatedFailure", "its own words")

    step_log.mark_ended(booking_id, "RefundPayment", "States.Timeout", "no answer")
    step_log.mark_ended(booking_id, "ReleaseSeats", "States.Timeout", "no answer")

    log = step_log.read(booking_id)["compensations"]
    assert log["RefundPayment"]["status"] == "TIMED_OUT"
    assert (log["ReleaseSeats"]["status"], log["ReleaseSeats"]["error"]["cause"]) == ("FAILED", "its own words")


def test_confirm_booking_reads_the_booking_and_the_flight_in_one_request(aws: Any) -> None:
    """GIVEN a booking whose earlier steps ran
    WHEN ConfirmBooking runs, then runs again
    THEN the first run is one BatchGetItem (booking and flight) and one transaction (seat,
    booking, its own step-log entry); the replay reads once, finds the commit and only
    records its attempt."""
    event = new_booking(seat="10B", cabin=None)
    event["reservation"] = invoke("reserve_seats", event)
    event["authorization"] = invoke("authorize_payment", event)

    with dynamodb_requests() as requests:
        first = invoke("confirm_booking", event)
    assert requests.seen == [("BatchGetItem", ("bookings", "flights")),
                             ("TransactWriteItems", ("seats", "bookings", "step_log"))]
    with dynamodb_requests() as requests:
        assert invoke("confirm_booking", event) == first
    assert requests.operations() == ["BatchGetItem", "UpdateItem"]
    assert booking_record.get(event["booking_id"])["status"] == "CONFIRMED"


def _post(body: dict[str, Any], key: str | None) -> tuple[dict[str, Any], bool]:
    return api.start_booking(json.dumps(body), {"Idempotency-Key": key} if key else {}, owner_of(body))


def test_post_bookings_reads_everything_it_checks_in_one_request(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN a booking for a named seat with a loyalty account and an Idempotency-Key
    WHEN it is posted, then posted again with the same key
    THEN the first POST is two DynamoDB requests: one BatchGetItem (the key's record, the
    flight, the account, the seat) and the transaction that writes the booking, its key
    and its payment request; the replay reads the same way, then the booking, and writes
    nothing (no saga starts)."""
    started: list[str] = []
    monkeypatch.setattr(api.saga, "start", lambda booking_id, kind, event: started.append(booking_id))
    body = booking_body(seat="11A", cabin=None, loyalty_id="FF0001", points_to_redeem=500)

    with dynamodb_requests() as requests:
        first, created = _post(body, "key-11A")
    assert created and started == [first["booking_id"]]
    assert requests.seen == [("BatchGetItem", ("flights", "idempotency", "loyalty", "seats")),
                             ("TransactWriteItems", ("bookings", "idempotency", "payments"))]
    with dynamodb_requests() as requests:
        again, created = _post(body, "key-11A")
    assert (again, created) == (first, False) and started == [first["booking_id"]]
    assert requests.operations() == ["BatchGetItem", "GetItem"]


@pytest.mark.parametrize(("overrides", "error", "field"), [
    ({"flight_number": "ZZ999"}, errors.NotFound, "flight_number"),
    ({"loyalty_id": "FF9999"}, errors.NotFound, "loyalty_id"),
    ({"seat": "3C", "cabin": None}, errors.Conflict, "seat"),
])
def test_post_bookings_refuses_from_its_one_read_and_writes_nothing(
    aws: Any, overrides: dict[str, Any], error: type[errors.RequestError], field: str,
) -> None:
    """GIVEN an unknown flight, an unknown loyalty account, or a seat another booking holds
    WHEN the booking is posted
    THEN the one BatchGetItem is all it asks of DynamoDB: it is refused (404 / 409) with
    nothing written."""
    hold_seat("SA101", "3C", "another-booking", seconds=600)
    before = snapshot()
    body = booking_body(**overrides)
    with dynamodb_requests() as requests, pytest.raises(error) as refused:
        api.start_booking(json.dumps(body), {}, customer("FF9999" if overrides.get("loyalty_id") else "FF0001"))
    assert refused.value.field == field
    assert requests.operations() == ["BatchGetItem"]
    assert snapshot() == before


# --- The payment as the customer sees it, noted on the booking --------------------------------
def _seen_on_the_booking(booking_id: str) -> dict[str, Any]:
    return dict(booking_record.get(booking_id)["payment"])


def test_every_payment_change_a_customer_sees_is_noted_on_the_booking_in_its_transaction(aws: Any) -> None:
    """GIVEN a booking run step by step, then refunded
    WHEN AuthorizePayment authorises, CapturePayment captures and RefundPayment refunds
    THEN each is three requests (the payment read, one transaction of the payment and the
    booking's note, its step-log outcome; the capture one, reading nothing: its outcome is a
    part of its transaction, as the booking shows CONFIRMED already), and after each
    the booking shows exactly what the payment record says: NONE before, AUTHORIZED,
    CAPTURED, then REFUNDED, with the amount."""
    event = new_booking(loyalty_id="FF0001", points_to_redeem=1_000)
    event["reservation"] = invoke("reserve_seats", event)
    event["redemption"] = invoke("redeem_points", event)
    booking_id = event["booking_id"]
    assert _seen_on_the_booking(booking_id) == {"status": "NONE", "amount": 0}

    with dynamodb_requests() as requests:
        event["authorization"] = invoke("authorize_payment", event)
    assert requests.seen == [("GetItem", ("payments",)), ("TransactWriteItems", ("payments", "bookings")),
                             ("UpdateItem", ("step_log",))]
    assert _seen_on_the_booking(booking_id) == {"status": "AUTHORIZED", "amount": 11_900}
    assert payments.seen(payment(booking_id)) == _seen_on_the_booking(booking_id)

    with dynamodb_requests() as requests:
        event["capture"] = invoke("capture_payment", event)
    # No read first: AuthorizePayment's result travels to it; the outcome commits with the capture.
    assert requests.seen == [("TransactWriteItems", ("payments", "bookings", "step_log"))]
    assert _seen_on_the_booking(booking_id) == {"status": "CAPTURED", "amount": 11_900}
    assert payments.seen(payment(booking_id)) == _seen_on_the_booking(booking_id)

    with dynamodb_requests() as requests:
        invoke("refund_payment", event)
    assert requests.operations() == ["GetItem", "TransactWriteItems", "UpdateItem"]
    assert _seen_on_the_booking(booking_id) == {"status": "REFUNDED", "amount": 11_900}
    assert payments.seen(payment(booking_id)) == _seen_on_the_booking(booking_id)


def test_a_declined_card_is_noted_and_a_voided_request_needs_no_note(aws: Any) -> None:
    """GIVEN one booking whose card is declined, and one whose request VoidPayment voids
    THEN the first shows DECLINED (the decision and the note in one transaction); the
    second is one write of the payment alone (VOIDED shows as NONE, as the request did)."""
    declined = new_booking(payment={"card_token": "tok_decline"})
    declined["reservation"] = {"fare": BASE_FARES["ECONOMY"]}
    with pytest.raises(errors.PaymentDeclined):
        invoke("authorize_payment", declined)
    assert _seen_on_the_booking(declined["booking_id"]) == {"status": "DECLINED", "amount": 0}

    voided = new_booking()
    with dynamodb_requests() as requests:
        invoke("void_payment", voided)
    assert requests.seen == [("GetItem", ("payments",)), ("UpdateItem", ("payments",)), ("UpdateItem", ("step_log",))]
    assert payment(voided["booking_id"])["status"] == "VOIDED"  # type: ignore[index]
    assert _seen_on_the_booking(voided["booking_id"]) == {"status": "NONE", "amount": 0}


def test_a_status_poll_reads_the_booking_and_its_step_log_only(aws: Any) -> None:
    """GIVEN a booking whose payment is captured
    WHEN the customer polls it (GET /bookings/{id})
    THEN that is one GetItem of the booking and one Query of its step log, no read of
    the payment, and the view shows the captured money."""
    event = new_booking()
    event["reservation"] = invoke("reserve_seats", event)
    event["authorization"] = invoke("authorize_payment", event)
    invoke("capture_payment", event)

    with dynamodb_requests() as requests:
        view = api.view_booking(event["booking_id"], owner_of({}))

    assert requests.seen == [("GetItem", ("bookings",)), ("Query", ("step_log",))]
    assert view["payment"] == {"status": "CAPTURED", "amount": BASE_FARES["ECONOMY"], "currency": CURRENCY}
    assert view["amount_paid"] == BASE_FARES["ECONOMY"]


def test_a_booking_written_before_the_note_shows_its_payment_record(aws: Any) -> None:
    """GIVEN a booking without a payment note (written by the code before it) whose money
    was captured
    WHEN it is viewed
    THEN the view reads its payment record instead and shows the money, not NONE."""
    event = new_booking()
    event["reservation"] = invoke("reserve_seats", event)
    event["authorization"] = invoke("authorize_payment", event)
    invoke("capture_payment", event)
    db.update("bookings", db.booking_key(event["booking_id"]), "REMOVE payment")

    view = booking_view.view(event["booking_id"])

    assert view["payment"] == {"status": "CAPTURED", "amount": BASE_FARES["ECONOMY"], "currency": CURRENCY}
