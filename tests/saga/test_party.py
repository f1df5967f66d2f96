"""A party of passengers over several legs, on the real statemachine.json: ReserveSeats and
ReleaseSeats are Map states over the legs (one Lambda invocation per leg), each leg's seats
for the whole party one conditional transaction. A failure at any step, or at any one leg,
compensates exactly what ran; two parties racing for the same seats never both get one;
a cancellation releases every seat of every leg."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import app as app_module
from chalicelib import api, booking_view, clock, dead_letters, invariants, recovery, validation
from chalicelib.errors import Conflict
from chalicelib.models import BASE_FARES, CURRENCY, HOLD_SECONDS, execution_input, leg_event, miles_for
from chalicelib.vocabulary import STEP_NAMES
from tests.saga.conftest import START_POINTS, compensation_names, execution, run, start, states_entered
from tests.saga.test_booking_saga import PERMANENT
from tests.saga.test_reliability import SCHEDULED_EVENT
from tests.support import (
    balance,
    booking_body,
    customer,
    items,
    owner_of,
    owner_of_booking,
    payment,
    snapshot,
    wait_for_status,
)

FLIGHTS = ["SA101", "SA102"]  # out and back: SA102 departs after SA101
FARE = BASE_FARES["ECONOMY"]
POINTS = 2_500


def party(size: int, *, flights: list[str] | None = None, seats: dict[int, dict[str, str]] | None = None,
          **overrides: Any) -> dict[str, Any]:
    """A booking body for ``size`` passengers over ``flights``, some with chosen ``seats``."""
    passengers = [{"first_name": f"Traveller{index}", "last_name": "Family",
                   **({"seats": seats[index]} if seats and index in seats else {})} for index in range(size)]
    return {"flight_number": None, "passenger": None, "flights": flights or FLIGHTS, "passengers": passengers,
            "cabin": "ECONOMY", **overrides}


def run_party(size: int, **options: Any) -> dict[str, Any]:
    return run(**party(size, **options))


def party_seats(booking_id: str) -> list[dict[str, Any]]:
    return [seat for seat in items("seats") if seat.get("booking_id") == booking_id]


def assert_nothing_left(view: dict[str, Any]) -> None:
    """No seat on any leg, no point, no money and no dead letter left behind."""
    assert party_seats(view["booking_id"]) == []
    assert balance("FF0001") == START_POINTS
    held = payment(view["booking_id"])
    assert held is None or held["status"] in ("DECLINED", "VOIDED")
    assert not dead_letters.open_letters(view["booking_id"])
    assert all(passenger.keys() <= {"first_name", "last_name", "email"} for passenger in view["passengers"])
    assert invariants.check() == []


def items_of(view: dict[str, Any], name: str, *, log: str = "steps") -> list[tuple[int, str]]:
    entry = next(entry for entry in view[log] if entry["name"] == name)
    return [(item["leg"], item["status"]) for item in entry.get("items", [])]


# --- The happy party ----------------------------------------------------------------------------
def test_a_party_of_four_over_two_legs_confirms_with_eight_distinct_booked_seats(aws: Any) -> None:
    """GIVEN four passengers out and back, one of whom chose a seat on the way out, redeeming points
    WHEN the saga runs
    THEN it is CONFIRMED with 8 distinct seats BOOKED for it (4 per leg, the chosen one
    where chosen, the others side by side), a ticket and a boarding pass per leg for each
    passenger, the fare of 8 seats less the points authorised then captured, miles for it,
    and 10 state transitions (9 for one leg, 1 per further leg)."""
    view = run_party(4, seats={0: {"SA101": "12A"}}, loyalty_id="FF0001", points_to_redeem=POINTS)

    assert view["status"] == "CONFIRMED" and view["compensations"] == []
    fare = 8 * FARE
    assert (view["fare"], view["amount_due"], view["amount_paid"]) == (fare, fare - POINTS, fare - POINTS)
    assert view["payment"] == {"status": "CAPTURED", "amount": fare - POINTS, "currency": CURRENCY}
    sold = party_seats(view["booking_id"])
    assert len(sold) == 8 and {seat["status"] for seat in sold} == {"BOOKED"}
    assert len({(seat["flight_number"], seat["seat"]) for seat in sold}) == 8
    out, back = view["legs"]
    assert [leg["flight_number"] for leg in view["legs"]] == FLIGHTS
    assert out["seats"][0] == {"passenger": 0, "seat": "12A", "cabin": "ECONOMY"}
    for leg in view["legs"]:
        assert [seat["passenger"] for seat in leg["seats"]] == [0, 1, 2, 3]
    together = [seat["seat"] for seat in back["seats"]]
    assert len({seat[:-1] for seat in together}) == 1  # one row: auto-assigned seats sit together
    assert len({seat[:-1] for seat in [seat["seat"] for seat in out["seats"][1:]]}) == 1
    tickets = [passenger["ticket_number"] for passenger in view["passengers"]]
    assert len(set(tickets)) == 4 and view["ticket_number"] == tickets[0]
    for index, passenger in enumerate(view["passengers"]):
        passes = passenger["boarding_passes"]
        assert [card["flight_number"] for card in passes] == FLIGHTS
        assert [card["seat"] for card in passes] == [leg["seats"][index]["seat"] for leg in view["legs"]]
    assert items_of(view, "ReserveSeats") == [(0, "SUCCEEDED"), (1, "SUCCEEDED")]
    assert balance("FF0001") == START_POINTS - POINTS + miles_for(fare - POINTS)
    assert len(states_entered(view["booking_id"])) == 10
    assert invariants.check() == []


@pytest.mark.parametrize(("size", "legs", "transitions"), [(1, 1, 8), (4, 2, 9), (9, 3, 10)])
def test_transitions_of_a_happy_booking_are_eight_plus_one_per_further_leg(
    aws: Any, size: int, legs: int, transitions: int,
) -> None:
    """GIVEN a happy booking without points (1x1, 4x2, 9x3: passengers x legs)
    THEN it confirms in 8 state transitions plus one per further leg (9 with points, the
    budget: at most 9 for one leg plus 1 per further leg)."""
    flights = ["SA101", "SA102", "SA201", "SA202"][:legs]
    view = run_party(size, flights=flights)
    assert view["status"] == "CONFIRMED"
    assert len(party_seats(view["booking_id"])) == size * legs
    assert len(states_entered(view["booking_id"])) == transitions


# --- A failure at every step, and at each leg ----------------------------------------------------
# The same compensations as a one-seat booking's (PERMANENT): ReleaseSeats is one Map over the legs.
@pytest.mark.parametrize("failing_step", STEP_NAMES)
def test_a_party_failing_at_any_step_compensates_exactly_what_ran(aws: Any, failing_step: str) -> None:
    """GIVEN a party of 3 over two legs and a permanent failure at one step (on every leg for
    ReserveSeats)
    WHEN the saga runs
    THEN exactly the compensations of the steps before it ran, ReleaseSeats on both legs,
    and every table is back where it started."""
    view = run_party(3, loyalty_id="FF0001", points_to_redeem=POINTS, simulate_failure={failing_step: "permanent"})

    assert (view["status"], view["failed_step"]) == ("FAILED", failing_step)
    assert compensation_names(view) == PERMANENT[failing_step]
    if failing_step == "ReserveSeats":
        assert items_of(view, "ReserveSeats") == [(0, "FAILED"), (1, "FAILED")]
    else:
        assert items_of(view, "ReleaseSeats", log="compensations") == [(0, "COMPENSATED"), (1, "COMPENSATED")]
    assert_nothing_left(view)


@pytest.mark.parametrize("leg", [0, 1])
def test_a_leg_that_fails_releases_only_the_legs_that_held_and_nothing_else(aws: Any, leg: int) -> None:
    """GIVEN a party of 4 over two legs WHEN only leg ``leg`` fails its hold
    THEN the other leg, which held, is released (and only it: the failed leg held nothing),
    no other compensation runs (nothing else ran), the booking is FAILED at ReserveSeats."""
    view = run_party(4, loyalty_id="FF0001", points_to_redeem=POINTS,
                     simulate_failure={"ReserveSeats": {"leg": leg, "mode": "permanent"}})

    assert (view["status"], view["failed_step"], view["error"]["error"]) == ("FAILED", "ReserveSeats",
                                                                             "SimulatedFailure")
    other = 1 - leg
    assert sorted(items_of(view, "ReserveSeats")) == sorted([(leg, "FAILED"), (other, "SUCCEEDED")])
    assert compensation_names(view) == ["ReleaseSeats"]
    released = next(entry for entry in view["compensations"] if entry["name"] == "ReleaseSeats")
    assert [(item["leg"], item["status"], len(item["seats"])) for item in released["items"]] == [
        (other, "COMPENSATED", 4)]
    assert "RedeemPoints" not in states_entered(view["booking_id"])
    assert_nothing_left(view)


def test_a_passenger_whose_seat_fails_fails_that_legs_transaction_as_a_whole(aws: Any) -> None:
    """GIVEN simulate_failure naming passenger 2 on leg 1 WHEN the saga runs THEN leg 1's
    transaction held none of the party's seats (not even the others'), leg 0 is released."""
    view = run_party(3, simulate_failure={"ReserveSeats": {"leg": 1, "mode": "permanent", "passenger": 2}})

    assert (view["status"], view["failed_step"]) == ("FAILED", "ReserveSeats")
    failed = next(item for item in view["steps"][0]["items"] if item["leg"] == 1)
    assert failed["status"] == "FAILED" and "passenger 2" in failed["error"]["cause"]
    assert "seats" not in failed
    assert [item["leg"] for item in view["compensations"][0]["items"]] == [0]
    assert_nothing_left(view)


def test_a_leg_that_timed_out_after_holding_is_released_too(short_timeout: Any) -> None:
    """GIVEN leg 1 holds its seats, then hangs past its TimeoutSeconds WHEN the saga runs
    THEN the leg is in doubt (States.Timeout: its hold may have landed, and did), so
    ReleaseSeats releases both legs; nothing is left."""
    short_timeout("ReserveSeats")
    view = run_party(2, simulate_failure={"ReserveSeats": {"leg": 1, "mode": "timeout"}})

    assert (view["status"], view["error"]["error"]) == ("FAILED", "States.Timeout")
    released = next(entry for entry in view["compensations"] if entry["name"] == "ReleaseSeats")
    assert sorted((item["leg"], len(item["seats"])) for item in released["items"]) == [(0, 2), (1, 2)]
    assert_nothing_left(view)


# --- Racing parties --------------------------------------------------------------------------------
def test_two_parties_racing_for_overlapping_seats_never_both_get_one(aws: Any) -> None:
    """GIVEN two parties of 3 choosing overlapping seats on the way back (14B, 14C), started at once
    WHEN both sagas run
    THEN each seat is held and sold for at most one of them; the loser (if any) fails
    cleanly at ReserveSeats with every hold it took released (its outbound leg included)."""
    chosen = [{0: {"SA102": "14A"}, 1: {"SA102": "14B"}, 2: {"SA102": "14C"}},
              {0: {"SA102": "14B"}, 1: {"SA102": "14C"}, 2: {"SA102": "14D"}}]
    booking_ids: list[str] = []
    barrier = threading.Barrier(2)

    def book(index: int) -> None:
        barrier.wait()
        booking_ids.append(start(**party(3, seats=chosen[index])))

    threads = [threading.Thread(target=book, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    views = [wait_for_status(booking_id) for booking_id in booking_ids]

    statuses = sorted(view["status"] for view in views)
    assert statuses in (["CONFIRMED", "FAILED"], ["FAILED", "FAILED"])  # never both
    for view in views:
        if view["status"] == "FAILED":
            assert (view["failed_step"], view["error"]["error"]) == ("ReserveSeats", "SeatUnavailable")
            assert compensation_names(view) in ([], ["ReleaseSeats"])
            assert party_seats(view["booking_id"]) == []
    owners = {seat["seat"]: seat["booking_id"] for seat in items("seats")
              if seat["flight_number"] == "SA102" and seat["seat"] in ("14B", "14C")}
    assert len(set(owners.values()) - {None}) <= 1
    assert invariants.check() == []


def test_a_party_asking_for_a_seat_already_taken_is_refused_before_anything_is_written(aws: Any) -> None:
    """GIVEN seat 14B on SA102 sold WHEN a party names it THEN POST is a 409, nothing written."""
    first = run_party(1, seats={0: {"SA102": "14B"}})
    assert first["status"] == "CONFIRMED"
    before = snapshot()
    body = booking_body(**party(2, seats={1: {"SA102": "14B"}}))
    with pytest.raises(Conflict):
        api.start_booking(__import__("json").dumps(body), {}, owner_of(body))
    assert snapshot() == before


# --- After the pivot, and cancelling ---------------------------------------------------------------
def test_a_party_whose_capture_fails_keeps_its_tickets_and_recover_captures(aws: Any) -> None:
    """GIVEN a party of 2 over two legs whose capture fails after its retries
    THEN it stays CONFIRMED with every ticket and seat, the payment CAPTURE_FAILED with a
    dead letter; the operator's recover captures the whole amount."""
    view = run_party(2, simulate_failure={"CapturePayment": "permanent"})

    assert view["status"] == "CONFIRMED" and view["compensations"] == []
    assert view["payment"]["status"] == "CAPTURE_FAILED" and view["payment"]["amount"] == 4 * FARE
    assert all(passenger["ticket_number"] for passenger in view["passengers"])
    assert {seat["status"] for seat in party_seats(view["booking_id"])} == {"BOOKED"}
    assert len(party_seats(view["booking_id"])) == 4
    assert [letter["task"] for letter in dead_letters.open_letters(view["booking_id"])] == ["CapturePayment"]

    recovered = recovery.recover(view["booking_id"])

    assert recovered["still_failing"] == {}
    after = booking_view.view(view["booking_id"])
    assert after["payment"] == {"status": "CAPTURED", "amount": 4 * FARE, "currency": CURRENCY}
    assert invariants.check() == []


def test_cancelling_a_multi_leg_party_releases_every_seat_of_every_leg(aws: Any) -> None:
    """GIVEN a confirmed party of 3 over three legs with points
    WHEN the customer cancels
    THEN the money is refunded, miles reversed, points refunded, and ReleaseSeats frees all
    9 seats (one invocation per leg); the booking is CANCELLED."""
    view = run_party(3, flights=["SA101", "SA102", "SA201"], loyalty_id="FF0001", points_to_redeem=POINTS)
    assert view["status"] == "CONFIRMED" and len(party_seats(view["booking_id"])) == 9

    api.cancel_booking(view["booking_id"], None, owner_of_booking(view["booking_id"]))
    execution(view["booking_id"], "cancellation")
    cancelled = wait_for_status(view["booking_id"])

    assert cancelled["status"] == "CANCELLED"
    assert compensation_names(cancelled) == ["RefundPayment", "ReverseMiles", "RefundPoints", "ReleaseSeats"]
    released = next(entry for entry in cancelled["compensations"] if entry["name"] == "ReleaseSeats")
    assert [(item["leg"], item["status"], len(item["seats"])) for item in released["items"]] == [
        (0, "COMPENSATED", 3), (1, "COMPENSATED", 3), (2, "COMPENSATED", 3)]
    assert party_seats(view["booking_id"]) == []
    assert (payment(view["booking_id"]) or {})["status"] == "REFUNDED"
    assert balance("FF0001") == START_POINTS
    assert invariants.check() == []


def test_a_release_that_fails_on_one_leg_needs_attention_and_recover_releases_it(aws: Any) -> None:
    """GIVEN a party over two legs failing at AuthorizePayment, and ReleaseSeats failing for
    good on leg 1 WHEN the saga runs THEN leg 0 is released, leg 1 is dead-lettered
    (ReleaseSeats#1) and the booking NEEDS_ATTENTION; recover re-runs that leg only and the
    booking is FAILED with nothing left."""
    view = run_party(2, simulate_failure={"AuthorizePayment": "permanent",
                                          "ReleaseSeats": {"leg": 1, "mode": "permanent"}})

    assert view["status"] == "NEEDS_ATTENTION"
    assert items_of(view, "ReleaseSeats", log="compensations") == [(0, "COMPENSATED"), (1, "FAILED")]
    assert [letter["compensation"] for letter in dead_letters.open_letters(view["booking_id"])] == ["ReleaseSeats#1"]
    assert len(party_seats(view["booking_id"])) == 2  # leg 1's, still held

    recovered = recovery.recover(view["booking_id"])

    assert (recovered["status"], recovered["rerun"]) == ("FAILED", ["ReleaseSeats#1"])
    assert_nothing_left(booking_view.view(view["booking_id"]))


def test_the_sweeper_releases_a_lost_partys_expired_holds_on_every_leg(aws: Any) -> None:
    """GIVEN a party of 3 whose saga died after both legs held (no execution to finish it)
    WHEN its holds are older than 15 minutes and the sweeper runs
    THEN all 6 seats are AVAILABLE again, the booking is FAILED (HoldExpired) once, with
    ReleaseSeats recorded for each leg, and nothing is left behind."""
    request = validation.parse_booking_request(booking_body(**party(3)), fault_injection_allowed=True)
    booking, _ = api.open_booking(request, customer=customer(), correlation_id="lost-party", idempotency_key=None)
    event = execution_input(booking, request)
    for leg in range(len(FLIGHTS)):
        app_module.reserve_seats(leg_event(event, leg), None)
    assert [seat["status"] for seat in party_seats(booking["booking_id"])] == ["HELD"] * 6
    clock.advance(HOLD_SECONDS + 1)

    result = app_module.sweep_expired_holds(SCHEDULED_EVENT, None)

    # The first expired seat fails the booking, whose ReleaseSeats frees the other five: the
    # sweep then finds them released already (it counts only the seats it freed itself).
    assert result == {"expired": 6, "released": 1, "bookings_failed": 1}
    view = booking_view.view(booking["booking_id"])
    assert view["status"] == "FAILED" and view["error"]["error"] == "HoldExpired"
    assert items_of(view, "ReleaseSeats", log="compensations") == [(0, "COMPENSATED"), (1, "COMPENSATED")]
    assert_nothing_left(view)
