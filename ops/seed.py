"""Demo data: flights with every seat free, loyalty accounts FF0001-FF0010, and on the
stages with demo users (local, dev) their owners in the user pool (password Demo-Passw0rd).

``python -m ops.seed --demo`` loads them, ``python -m ops.seed --flights 453`` a large
inventory, with batch writes into the tables the environment names (the embedded
ones, or deployed ones when run with AWS credentials and the stack's table names
exported by ``python -m deploy.outputs``). The embedded stack seeds itself with
``seed_demo()``.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import config, customers, db
from chalicelib.models import all_seats
from chalicelib.vocabulary import SeatStatus

DEMO_ROUTES = [
    ("SA101", "SFO", "JFK"), ("SA102", "JFK", "SFO"), ("SA201", "SEA", "LAX"), ("SA202", "LAX", "SEA"),
    ("SA301", "BOS", "ORD"), ("SA302", "ORD", "BOS"), ("SA401", "LHR", "JFK"), ("SA402", "JFK", "LHR"),
    ("SA501", "CDG", "FRA"), ("SA502", "FRA", "CDG"),
]
AIRPORTS = ["SFO", "JFK", "SEA", "LAX", "BOS", "ORD", "LHR", "CDG", "FRA", "AMS", "MAD", "NRT"]
LOYALTY_NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov",
                 "Donald Knuth", "Margaret Hamilton", "Ken Thompson", "Frances Allen", "John Backus"]
OPENING_POINTS = 50_000


def _departure(days_ahead: int, hour: int) -> str:
    day = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return (day + timedelta(days=days_ahead)).isoformat().replace("+00:00", "Z")


def flight_item(flight_number: str, origin: str, destination: str, departure: str) -> dict[str, Any]:
    return {**db.flight_key(flight_number), "origin": origin, "destination": destination,
            "departure": departure, "aircraft": "A320-162"}


def seat_items(flight_number: str) -> list[dict[str, Any]]:
    return [{**db.seat_key(flight_number, seat), "cabin": cabin, "status": SeatStatus.AVAILABLE.value}
            for seat, cabin in all_seats()]


def seed_flights(flights: list[dict[str, Any]]) -> None:
    db.batch_put("flights", flights)
    db.batch_put("seats", [seat for flight in flights for seat in seat_items(flight["flight_number"])])


def demo_flights() -> list[dict[str, Any]]:
    return [
        flight_item(number, origin, destination, _departure(1 + index // 2, 7 + (index * 3) % 14))
        for index, (number, origin, destination) in enumerate(DEMO_ROUTES)
    ]


def inventory_flights(count: int) -> list[dict[str, Any]]:
    """``count`` generated flights (LX0001...), for load and benchmark work."""
    flights = []
    for index in range(count):
        origin = AIRPORTS[index % len(AIRPORTS)]
        destination = AIRPORTS[(index * 5 + 1) % len(AIRPORTS)]
        if destination == origin:
            destination = AIRPORTS[(index + 1) % len(AIRPORTS)]
        flights.append(flight_item(f"LX{index + 1:04d}", origin, destination, _departure(1 + index % 30, index % 24)))
    return flights


def loyalty_accounts() -> list[dict[str, Any]]:
    return [
        {**db.loyalty_account_key(f"FF{number:04d}"), "name": name,
         "points_balance": OPENING_POINTS, "opening_balance": OPENING_POINTS}
        for number, name in enumerate(LOYALTY_NAMES, start=1)
    ]


def seed_demo_customers() -> list[str]:
    """The demo customers in the user pool: username = loyalty id, the one demo password,
    each owning their account (custom:loyalty_id). Again on a re-seed: the password is
    set anew. Only where the stage has demo users (local, dev); returns who was seeded."""
    if not config.demo_users_enabled() or config.USER_POOL_ID_ENV not in os.environ:
        return []
    from botocore.exceptions import ClientError

    cognito = customers.cognito()
    pool_id = config.user_pool_id()
    names = dict(zip(customers.DEMO_USERNAMES, LOYALTY_NAMES, strict=True))
    for username, name in names.items():
        try:
            cognito.admin_create_user(
                UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS",
                UserAttributes=[{"Name": customers.LOYALTY_ID_CLAIM, "Value": username},
                                {"Name": "name", "Value": name}],
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "UsernameExistsException":
                raise
        cognito.admin_set_user_password(UserPoolId=pool_id, Username=username,
                                        Password=customers.DEMO_PASSWORD, Permanent=True)
    return list(names)


def seed_demo() -> None:
    seed_flights(demo_flights())
    db.batch_put("loyalty", loyalty_accounts())
    seed_demo_customers()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flights", type=int, default=0, help="also load this many generated flights")
    parser.add_argument("--demo", action="store_true", help="load the 10 demo flights and loyalty accounts")
    args = parser.parse_args()
    missing = [name for name in ("FLIGHTS_TABLE", "SEATS_TABLE", "LOYALTY_TABLE") if name not in os.environ]
    if missing:
        parser.error(f"set {', '.join(missing)} to the tables to seed")
    started = time.perf_counter()
    if args.demo:
        seed_demo()
    if args.flights:
        seed_flights(inventory_flights(args.flights))
    print(f"seeded in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
