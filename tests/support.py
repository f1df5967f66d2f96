"""Helpers shared by the test layers: booking bodies, waiting for a saga, table snapshots."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

from chalicelib import booking_view, config, db
from chalicelib.schema import TABLES
from chalicelib.vocabulary import TERMINAL_STATUSES, BookingStatus, PaymentStatus


def booking_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "flight_number": "SA101",
        "passenger": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        "cabin": "ECONOMY",
        "payment": {"card_token": "tok_visa"},
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def settled(view: dict[str, Any]) -> bool:
    """The booking's saga is over, as its view (GET /bookings/{id}) shows it: a terminal
    status, and for a CONFIRMED booking its capture settled. A booking is CONFIRMED at the
    pivot, before CapturePayment runs: its payment shows AUTHORIZED until the capture
    commits (CAPTURED, with CapturePayment's step-log outcome in the same transaction) or
    RecordCaptureFailure gives up on it (CAPTURE_FAILED, its dead letter written just
    after: wait for the execution to end before reading dead letters)."""
    capturing = (view["status"] == BookingStatus.CONFIRMED
                 and view["payment"]["status"] == PaymentStatus.AUTHORIZED)
    return view["status"] in TERMINAL_STATUSES and not capturing


def wait_for_status(booking_id: str, statuses: set[str] | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Poll the booking until its status is in ``statuses`` (default: until it is
    ``settled``)."""
    deadline = time.monotonic() + timeout
    pauses = poll_pauses()
    while True:
        view = booking_view.view(booking_id)
        if view["status"] in statuses if statuses else settled(view):
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"booking {booking_id} still {view['status']} after {timeout}s: {view}")
        time.sleep(next(pauses))


def poll_pauses(first: float = 0.05, after: float = 2.0, longest: float = 0.25) -> Iterator[float]:
    """Pauses between polls, backing off as the page does: every ``first`` s for the
    first ``after`` s, then half as often again each time up to ``longest``. A saga that
    runs long (a hang, a retry's wait) is not polled at full rate meanwhile: each poll
    takes the core from the sagas of the same process."""
    started = time.monotonic()
    pause = first
    while True:
        if time.monotonic() - started >= after:
            pause = min(longest, pause * 1.5)
        yield pause


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every item of every table, in a stable order: compare two to prove nothing was written.

    Read from moto's storage, under the lock its requests take, rather than by Scan: a
    Scan of the 1,620 seats through botocore costs about half a second, and most tests
    take two snapshots."""
    from boto3.dynamodb.types import TypeDeserializer

    from chalicelib import config
    from local import hooks
    from local.embedded import dynamodb_backend

    tables = dynamodb_backend().tables
    deserializer = TypeDeserializer()
    with hooks.dynamodb_lock():  # all_items() is in key order: a stable order to compare
        return {
            table.name: [db.plain({key: deserializer.deserialize(value)
                                   for key, value in item.to_json()["Attributes"].items()})
                         for item in tables[config.table_name(table.name)].all_items()]
            for table in TABLES
        }


def seat(flight_number: str, seat_id: str) -> dict[str, Any]:
    item = db.get("seats", db.seat_key(flight_number, seat_id))
    assert item is not None
    return item


def balance(loyalty_id: str) -> int:
    item = db.get("loyalty", db.loyalty_account_key(loyalty_id))
    assert item is not None
    return int(item["points_balance"])


def payment(booking_id: str) -> dict[str, Any] | None:
    return db.get("payments", db.payment_key(booking_id))


# --- Signed-in customers --------------------------------------------------------------------
DEMO_PASSWORD = "Demo-Passw0rd"  # the README's; chalicelib.customers.DEMO_PASSWORD must agree


def customer(username: str = "FF0001") -> Any:
    """A demo customer as the API sees one, for tests that call chalicelib.api directly
    (the route tests sign in for real)."""
    from chalicelib.customers import Customer

    return Customer(id=f"sub-of-{username}", username=username, loyalty_id=username)


def owner_of(body: dict[str, Any]) -> Any:
    """The customer who may send ``body``: the owner of its loyalty account, else FF0001."""
    return customer(body.get("loyalty_id") or "FF0001")


def owner_of_booking(booking_id: str) -> Any:
    """The customer who made the booking (for direct calls that act on it, e.g. cancel)."""
    from chalicelib import booking_record
    from chalicelib.customers import Customer

    customer_id = booking_record.get(booking_id)["customer_id"]
    username = customer_id.removeprefix("sub-of-")
    return Customer(id=customer_id, username=username, loyalty_id=username)


def id_token(client: Any, username: str = "FF0001", password: str = DEMO_PASSWORD) -> str:
    """Sign in through POST /auth/sign-in (the embedded user pool) and return the ID token."""
    response = post_json(client, "/auth/sign-in", {"username": username, "password": password})
    assert response.status_code == 200, response.body
    return str(json.loads(response.body)["id_token"])


class _SignedInHttp:
    """Chalice's test HTTP client with the customer's ``Authorization: Bearer`` on every
    request that does not bring its own (an explicit ``Authorization`` header wins)."""

    def __init__(self, http: Any, token: str) -> None:
        self._http = http
        self.token = token

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | str = b"") -> Any:
        sent = dict(headers or {})
        if not any(name.lower() == "authorization" for name in sent):
            sent["Authorization"] = f"Bearer {self.token}"
        return self._http.request(method, path, headers=sent, body=body)

    def get(self, path: str, **options: Any) -> Any:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> Any:
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> Any:
        return self.request("PUT", path, **options)

    def delete(self, path: str, **options: Any) -> Any:
        return self.request("DELETE", path, **options)


class SignedInClient:
    """A chalice.test.Client whose HTTP requests are the signed-in ``username``'s."""

    def __init__(self, client: Any, username: str = "FF0001") -> None:
        self.anonymous = client
        self.username = username
        self.http = _SignedInHttp(client.http, id_token(client, username))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.anonymous, name)


def post_json(client: Any, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.http.post(path, body=raw, headers={"content-type": "application/json", **(headers or {})})


# --- Added for the HTTP route tests -------------------------------------------------------
def wait_until(predicate: Any, description: str, timeout: float = 30.0) -> Any:
    """Poll ``predicate()`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    pauses = poll_pauses()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout}s for {description}")
        time.sleep(next(pauses))


def hold_seat(flight_number: str, seat_id: str, booking_id: str, seconds: int) -> None:
    """Put a hold of ``seconds`` on a seat for ``booking_id``, as ReserveSeats leaves it."""
    from chalicelib import clock

    db.update(
        "seats", db.seat_key(flight_number, seat_id),
        "SET #status = :held, booking_id = :booking, hold_expires_at = :expires, held_at = :now",
        names={"#status": "status"},
        values={":held": "HELD", ":booking": booking_id, ":expires": clock.now_epoch() + seconds,
                ":now": clock.now_epoch()},
    )


def items(table_name: str) -> list[dict[str, Any]]:
    return list(db.scan(table_name))


def executions(kind: str = "booking") -> list[dict[str, Any]]:
    """Every execution of the booking (or cancellation) state machine."""
    from chalicelib import config, saga

    arn = config.booking_state_machine_arn() if kind == "booking" else config.cancellation_state_machine_arn()
    return list(saga.client().list_executions(stateMachineArn=arn, maxResults=1000)["executions"])


def entered_states(events: list[dict[str, Any]]) -> list[str]:
    """The states an execution entered, in order, from a readable history."""
    return [event["state"] for event in events if event["type"].endswith("StateEntered")]


#: A test server's retry sleeps, scaled: a compensation that fails for good sleeps 2.3 s
#: before its dead letter, not 23 s; a page still sees each retry's poll go by.
SERVER_RETRY_WAIT_FACTOR = 0.1


def local_server(tmp_path_factory: Any) -> Iterator[str]:
    """For a fixture: `chalice local --stage local` on a free port (no AWS_* variable),
    its base URL yielded; the test fails with the server's output if it cannot start.
    Its retry sleeps are scaled by SERVER_RETRY_WAIT_FACTOR (the definitions are not)."""
    import pytest

    from local.server import chalice_local

    stack = contextlib.ExitStack()
    try:
        running = stack.enter_context(chalice_local(tmp_path_factory.mktemp("chalice-local") / "server.log",
                                                    retry_wait_factor=SERVER_RETRY_WAIT_FACTOR))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    with stack:
        yield running.url


# --- One stack for many refused requests --------------------------------------------------
def changed_tables(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [table for table in before if before[table] != after[table]]


class TableWatch:
    """The tables as the previous request left them: which did the next one change?"""

    def __init__(self) -> None:
        self.last = snapshot()

    def changed(self) -> list[str]:
        now = snapshot()
        changed = changed_tables(self.last, now)
        self.last = now
        return changed


def join_execution_threads(timeout: float = 15.0) -> None:
    """Let moto's execution threads finish (a request that started a saga), so their
    writes land now and are counted against it."""
    from moto.stepfunctions.parser.utils import TMP_THREADS

    for thread in list(TMP_THREADS):
        thread.join(timeout=timeout)
    TMP_THREADS.clear()


@contextlib.contextmanager
def refusal_stack() -> Iterator[tuple[Any, TableWatch]]:
    """An embedded stack shared by many requests that should each write nothing: SA101
    (162 seats, so each snapshot is ten times cheaper than with all 1,620) and the loyalty
    accounts; yields a chalice.test.Client signed in as FF0001 and a TableWatch."""
    from chalice.test import Client

    import app as app_module
    from chalicelib import clock
    from local import hooks
    from local.embedded import EmbeddedAws
    from ops.seed import demo_flights, loyalty_accounts, seed_demo_customers, seed_flights

    aws = EmbeddedAws(app_module.app).start()
    hooks.scale_retry_waits(0.01)
    seed_flights([flight for flight in demo_flights() if flight["flight_number"] == "SA101"])
    db.batch_put("loyalty", loyalty_accounts())
    seed_demo_customers()
    try:
        with Client(app_module.app) as client:
            yield SignedInClient(client), TableWatch()
    finally:
        join_execution_threads(timeout=30)
        clock.reset()
        aws.stop()



# --- Counting DynamoDB requests ---------------------------------------------------------------
class DynamoRequests:
    """Every DynamoDB request chalicelib.db's client makes while it is installed, as
    (operation, tables): a TransactWriteItems lists the table of each part in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[str, ...]]] = []

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params.get("body") or b"{}")
        physical = {config.table_name(table.name): table.name for table in TABLES}
        if model.name == "TransactWriteItems":
            tables = tuple(physical[part["TableName"]] for entry in body["TransactItems"] for part in entry.values())
        elif model.name == "BatchGetItem":
            tables = tuple(sorted(physical[name] for name in body["RequestItems"]))
        else:
            tables = (physical[body["TableName"]],)
        self.seen.append((model.name, tables))

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.seen]

    def clear(self) -> None:
        self.seen.clear()


@contextlib.contextmanager
def dynamodb_requests() -> Iterator[DynamoRequests]:
    """Record the DynamoDB requests made meanwhile (any thread: run one thing at a time)."""
    recorder = DynamoRequests()
    events = db.client().meta.events
    events.register("before-call.dynamodb", recorder._record)
    try:
        yield recorder
    finally:
        events.unregister("before-call.dynamodb", recorder._record)
