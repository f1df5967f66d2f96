"""`chalice local` under a crowd, over real HTTP, with the definitions as deployed: the
load is absorbed (queued connections, queued executions), not turned into connection
resets or States.Timeout. Slow: about a minute on the 2-core machine."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from chalicelib.vocabulary import TERMINAL_STATUSES
from tests.support import DEMO_PASSWORD, local_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FLIGHT, CABIN, CABIN_SEATS = "SA501", "FIRST", 12
BUYERS = 100
DEADLINE_SECONDS = 120.0
CUSTOMERS = [f"FF{number:04d}" for number in range(1, 11)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from local_server(tmp_path_factory)


def _tokens(base: str) -> dict[str, str]:
    tokens = {}
    for username in CUSTOMERS:
        response = requests.post(f"{base}/auth/sign-in", json={"username": username, "password": DEMO_PASSWORD},
                                 timeout=30)
        assert response.status_code == 200, response.text
        tokens[username] = response.json()["id_token"]
    return tokens


def _crowd(count: int, act: Any) -> list[Any]:
    """``count`` threads released together by a barrier, each returning ``act(index)``
    or the connection error it met (never retried: a reset must show)."""
    gate = threading.Barrier(count)

    def one(index: int) -> Any:
        gate.wait(timeout=60)
        try:
            return act(index)
        except requests.RequestException as exc:
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def _until_terminal(base: str, booking_id: str, token: str, released: float) -> dict[str, Any]:
    """Poll as a patient client does: soon at first, then less and less often (a hundred
    clients polling every 200 ms would spend the server's one core on polls)."""
    pause = 0.5
    while True:
        view: dict[str, Any] = requests.get(f"{base}/bookings/{booking_id}", timeout=60,
                                            headers={"Authorization": f"Bearer {token}"}).json()
        if view["status"] in TERMINAL_STATUSES:
            return {**view, "terminal_after_s": time.monotonic() - released}
        if time.monotonic() - released > DEADLINE_SECONDS:
            return {**view, "terminal_after_s": None}
        time.sleep(pause)
        pause = min(pause * 1.5, 4.0)


def test_a_hundred_buyers_for_twelve_seats_sell_exactly_twelve(server: str) -> None:
    """GIVEN `chalice local` with statemachine.json as deployed (TimeoutSeconds 10) and
    100 signed-in buyers released together, each POSTing one FIRST seat of one flight
    WHEN every accepted booking is polled to its end
    THEN no request met a connection error, every POST was accepted, every booking is
    terminal within 120 s, exactly 12 are CONFIRMED on 12 distinct seats, the cabin is 12
    BOOKED and nothing HELD, and every other booking failed at ReserveSeats because the
    cabin was full: none in States.Timeout, none left for an operator."""
    tokens = _tokens(server)
    body: dict[str, Any] = {"flight_number": FLIGHT, "cabin": CABIN, "payment": {"card_token": "tok_visa"},
            "passenger": {"first_name": "Crowd", "last_name": "Buyer"}}

    def buy(index: int) -> tuple[int, Any, str]:
        token = tokens[CUSTOMERS[index % len(CUSTOMERS)]]
        response = requests.post(f"{server}/bookings", json=body, timeout=60,
                                 headers={"Authorization": f"Bearer {token}"})
        return response.status_code, response.json(), token

    released = time.monotonic()
    answers = _crowd(BUYERS, buy)
    errors = [repr(answer) for answer in answers if isinstance(answer, Exception)]
    assert errors == []
    assert Counter(status for status, _, _ in answers) == {202: BUYERS}
    with ThreadPoolExecutor(max_workers=BUYERS) as pool:
        views = list(pool.map(lambda answer: _until_terminal(server, answer[1]["booking_id"], answer[2], released),
                              answers))

    late = [(view["booking_id"], view["status"]) for view in views if view["terminal_after_s"] is None]
    assert late == []
    confirmed = [view["seat"] for view in views if view["status"] == "CONFIRMED"]
    assert len(confirmed) == len(set(confirmed)) == CABIN_SEATS
    failures = Counter((view["status"], view["failed_step"], (view["error"] or {}).get("error"))
                       for view in views if view["status"] != "CONFIRMED")
    assert not any("States.Timeout" in str(view["error"]) for view in views)
    assert set(failures) <= {("FAILED", "ReserveSeats", "CabinFull"), ("FAILED", "ReserveSeats", "SeatUnavailable")}
    seat_map = requests.get(f"{server}/flights/{FLIGHT}/seats", params={"cabin": CABIN}, timeout=30).json()["seats"]
    assert Counter(seat["status"] for seat in seat_map) == {"BOOKED": CABIN_SEATS}
    assert sorted(seat["seat"] for seat in seat_map) == sorted(confirmed)


def test_two_hundred_parallel_posts_are_all_answered(server: str) -> None:
    """GIVEN the server WHEN 200 signed-in POST /bookings arrive at once (for a flight that
    does not exist, so no saga starts) THEN every connection is accepted and answered
    404, none reset or refused."""
    token = _tokens(server)[CUSTOMERS[0]]
    body: dict[str, Any] = {"flight_number": "ZZ999", "cabin": "ECONOMY", "payment": {"card_token": "tok_visa"},
            "passenger": {"first_name": "Crowd", "last_name": "Buyer"}}
    answers = _crowd(200, lambda _: requests.post(f"{server}/bookings", json=body, timeout=60,
                                                  headers={"Authorization": f"Bearer {token}"}).status_code)
    assert [repr(answer) for answer in answers if isinstance(answer, Exception)] == []
    assert Counter(answers) == {404: 200}
