"""Issue 15 point 9: GET /bookings, the signed-in customer's bookings, newest first, a page
at a time, through one Query of the bookings table's by_customer index.

Through chalice.test.Client on the embedded stack, signed in for real (the demo pool).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, urljoin

import pytest

from chalicelib import api, clock, validation
from chalicelib.customers import Customer
from chalicelib.vocabulary import BookingStatus
from tests.support import (
    SignedInClient,
    booking_body,
    changed_tables,
    dynamodb_requests,
    post_json,
    snapshot,
    wait_for_status,
)

SUMMARY_FIELDS = {"booking_id", "status", "flight_number", "seat", "cabin", "fare", "amount_paid", "currency",
                  "created_at", "updated_at", "href"}


def signed_in_customer(client: SignedInClient) -> Customer:
    """The customer behind the client's ID token, as the route reads it (the token's sub)."""
    payload = client.http.token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return Customer(id=claims["sub"], username=client.username, loyalty_id=client.username)


def pending_bookings(customer: Customer, count: int) -> list[str]:
    """``count`` PENDING bookings of ``customer``, a second apart (no saga: the listing is
    about the rows), oldest first."""
    made = []
    for _ in range(count):
        clock.advance(1)
        request = validation.parse_booking_request(booking_body(), fault_injection_allowed=False)
        booking, _ = api.open_booking(request, customer=customer, correlation_id=None, idempotency_key=None)
        made.append(str(booking["booking_id"]))
    return made


def listed(client: Any, query: str = "") -> Any:
    response = client.http.get(f"/bookings{query}")
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def test_a_customer_lists_their_own_bookings_newest_first_page_by_page(client: SignedInClient) -> None:
    """GIVEN FF0001's confirmed booking, then six more of theirs a second apart, and one of FF0002's
    WHEN FF0001 lists 3 at a time, following next_token
    THEN the pages hold 3, 3 and 1 of FF0001's seven bookings, newest first, each once; the last
    page has no next_token; each line is the summary (with the fare and what was paid, in the
    currency) and its href, resolved against the listing's URL, is the booking; FF0002 sees only
    their own; without a limit, all seven come in one page."""
    confirmed = post_json(client, "/bookings", booking_body(seat="12A", cabin=None)).json_body["booking_id"]
    assert wait_for_status(confirmed)["status"] == BookingStatus.CONFIRMED
    ada = signed_in_customer(client)
    newest_first = [*reversed(pending_bookings(ada, 6)), confirmed]
    alan = SignedInClient(client.anonymous, "FF0002")
    alans = pending_bookings(signed_in_customer(alan), 1)

    pages, token = [], None
    while True:
        page = listed(client, "?limit=3" + (f"&next_token={quote(token)}" if token else ""))
        pages.append(page["bookings"])
        token = page["next_token"]
        if token is None:
            break
    assert [len(page) for page in pages] == [3, 3, 1]
    lines = [line for page in pages for line in page]
    assert [line["booking_id"] for line in lines] == newest_first
    assert all(set(line) == SUMMARY_FIELDS for line in lines)
    oldest = lines[-1]
    assert oldest["status"] == BookingStatus.CONFIRMED and oldest["seat"] == "12A"
    assert oldest["fare"] > 0 and oldest["amount_paid"] == oldest["fare"] and oldest["currency"] == "USD"
    assert lines[0]["status"] == BookingStatus.PENDING and lines[0]["amount_paid"] == 0
    for line in (lines[0], oldest):
        target = urljoin("http://localhost/bookings?limit=3", line["href"]).removeprefix("http://localhost")
        assert target == f"/bookings/{line['booking_id']}"
        shown = client.http.get(target)
        assert shown.status_code == 200 and json.loads(shown.body)["booking_id"] == line["booking_id"]

    assert [line["booking_id"] for line in listed(alan)["bookings"]] == alans
    everything = listed(client)
    assert [line["booking_id"] for line in everything["bookings"]] == newest_first
    assert everything["next_token"] is None


def test_a_page_is_one_query_of_the_customer_index(client: SignedInClient) -> None:
    """GIVEN three bookings of FF0001 WHEN FF0001 lists them, two at a time THEN each page is
    one DynamoDB Query (of the bookings table), never a scan, and nothing is written."""
    pending_bookings(signed_in_customer(client), 3)
    before = snapshot()
    with dynamodb_requests() as requests:
        first = listed(client, "?limit=2")
        second = listed(client, f"?limit=2&next_token={first['next_token']}")
    assert requests.seen == [("Query", ("bookings",)), ("Query", ("bookings",))]
    assert len(first["bookings"]) == 2 and len(second["bookings"]) == 1 and second["next_token"] is None
    assert changed_tables(before, snapshot()) == []


def _token_with(**changes: Any) -> str:
    fields = {"v": 1, "c": "someone", "t": "2026-12-02T07:35:50.123456Z", "b": "0" * 8 + "-0000-0000-0000-" + "0" * 12}
    fields.update(changes)
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


BAD_QUERIES = {
    "?limit=0": "limit", "?limit=101": "limit", "?limit=abc": "limit", "?limit=-1": "limit",
    "?limit=1.5": "limit", "?limit=%201": "limit", "?limit=0020": "limit", "?limit=1&limit=2": "limit",
    "?page=2": "page", "?next_token=not*a*token": "next_token", "?next_token=bm90IGpzb24": "next_token",
    "?next_token=" + "A" * 600: "next_token", "?next_token=W10": "next_token",  # "[]"
    "?next_token=" + _token_with(v=2): "next_token", "?next_token=" + _token_with(v=True): "next_token",
    "?next_token=" + _token_with(t="yesterday"): "next_token", "?next_token=" + _token_with(b="../x"): "next_token",
    "?next_token=" + _token_with(extra=1): "next_token",
}


@pytest.mark.parametrize("query", list(BAD_QUERIES))
def test_a_bad_limit_or_next_token_is_a_400_that_reads_and_writes_nothing(client: SignedInClient, query: str) -> None:
    """GIVEN a limit that is not a whole number 1-100, an unknown or repeated parameter, or a
    next_token this API never gave (garbage, tampered, another version, a bad field)
    WHEN FF0001 lists with it THEN 400 InvalidRequest naming the parameter, in JSON; no
    DynamoDB request was made."""
    with dynamodb_requests() as requests:
        response = client.http.get(f"/bookings{query}")
    assert response.status_code == 400, response.body
    body = json.loads(response.body)
    assert body["error"] == "InvalidRequest" and body["field"] == BAD_QUERIES[query], body
    assert requests.seen == []


def test_another_customers_next_token_is_refused_not_followed(client: SignedInClient) -> None:
    """GIVEN FF0002's two bookings and the next_token of their first page
    WHEN FF0001 sends that token, as it is or with its customer changed to FF0001 but the
    rest tampered THEN FF0001 gets a 400 (next_token), never a page of FF0002's; FF0002
    following the same token gets their second booking."""
    alan = SignedInClient(client.anonymous, "FF0002")
    alans = pending_bookings(signed_in_customer(alan), 2)
    pending_bookings(signed_in_customer(client), 1)
    token = listed(alan, "?limit=1")["next_token"]
    refused = client.http.get(f"/bookings?limit=1&next_token={token}")
    assert refused.status_code == 400, refused.body
    assert json.loads(refused.body)["field"] == "next_token"
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert client.http.get(f"/bookings?next_token={tampered}").status_code == 400
    assert [line["booking_id"] for line in listed(alan, f"?limit=1&next_token={token}")["bookings"]] == [alans[0]]
