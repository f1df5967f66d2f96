"""local/persistence.py: the embedded stack's state on disk, in process.

Each test starts the stack on a temporary state directory, changes things, stops it
without any shutdown step (the journal is all there is, as after kill -9), and starts a
new stack on the same directory. tests/e2e/test_restart.py kills a real server.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib import clock, config, customers, db
from chalicelib.errors import ConditionFailed
from chalicelib.vocabulary import SeatStatus
from deploy import identity
from local import auth, persistence
from local.embedded import EmbeddedAws
from local.persistence import StateCorrupt, StateInUse, StateStore
from ops.seed import demo_flights, loyalty_accounts, seed_demo_customers, seed_flights
from tests.support import join_execution_threads, snapshot

SEEDED: list[str] = []


def _seed_small() -> None:
    """SA101 and the loyalty accounts: the demo data, a tenth of the seats."""
    SEEDED.append("seeded")
    seed_flights([flight for flight in demo_flights() if flight["flight_number"] == "SA101"])
    db.batch_put("loyalty", loyalty_accounts())
    seed_demo_customers()


@contextlib.contextmanager
def stack_on(directory: Path, **options: Any) -> Iterator[StateStore]:
    """The embedded stack on ``directory``, as `make run` starts it; stopped afterwards
    with no flush or compaction of any kind (the store's lock is let go, as the kernel
    lets go of a killed process's)."""
    fresh = options.pop("fresh", False)
    stack = EmbeddedAws(app_module.app)
    store = StateStore(directory, **options)
    persistence.start_with_state(stack, store, fresh=fresh, seed=_seed_small)
    try:
        yield store
    finally:
        join_execution_threads()
        if store._lock_file is not None:
            store._lock_file.close()
        stack.stop()
        persistence.uninstall_stable_identities()
        clock.reset()


@pytest.fixture(autouse=True)
def _count_seeding() -> Iterator[None]:
    SEEDED.clear()
    yield


def _sign_in(username: str = "FF0001") -> str:
    tokens = customers.sign_in(json.dumps({"username": username, "password": customers.DEMO_PASSWORD}))
    return str(tokens["id_token"])


def _resource() -> Any:
    """boto3's resource (Python values in and out), for the writes chalicelib.db has no verb for."""
    import boto3

    return boto3.resource("dynamodb", region_name=config.region())


def _writes_of_every_kind() -> None:
    """A put, an update, a delete, a batch, a transaction, and writes that are refused."""
    db.put("payments", {"booking_id": "b-1", "status": "CAPTURED", "amount": 100})
    db.put("payments", {"booking_id": "b-gone", "status": "CAPTURED", "amount": 1})
    db.update("loyalty", db.loyalty_account_key("FF0002"), "SET points_balance = points_balance - :p",
              values={":p": 250})
    _resource().meta.client.delete_item(TableName=config.table_name("payments"), Key={"booking_id": "b-gone"})
    with _resource().Table(config.table_name("step_log")).batch_writer() as batch:
        batch.put_item(Item={"booking_id": "b-1", "entry": "steps#ReserveSeats#0", "n": 1})
        batch.put_item(Item={"booking_id": "b-1", "entry": "steps#AuthorizePayment", "n": 2})
    with _resource().Table(config.table_name("step_log")).batch_writer() as batch:
        batch.delete_item(Key={"booking_id": "b-1", "entry": "steps#AuthorizePayment"})
    db.transact(
        seat=db.Update("seats", db.seat_key("SA101", "1A"), "SET #s = :b, booking_id = :id",
                       names={"#s": "status"}, values={":b": SeatStatus.BOOKED.value, ":id": "b-1"}),
        check=db.Check("payments", db.payment_key("b-1"), condition="attribute_exists(booking_id)"),
        idempotency=db.Put("idempotency", {"idempotency_key": "sub/k", "booking_id": "b-1"}),
    )
    with pytest.raises(ConditionFailed):  # refused: changes nothing, journals nothing
        db.put("payments", {"booking_id": "b-1", "status": "VOIDED"}, condition="attribute_not_exists(booking_id)")
    with pytest.raises(ConditionFailed):
        db.transact(
            seat=db.Update("seats", db.seat_key("SA101", "1B"), "SET #s = :b", names={"#s": "status"},
                           values={":b": SeatStatus.BOOKED.value}),
            check=db.Check("payments", db.payment_key("nobody"), condition="attribute_exists(booking_id)"),
        )


def test_every_acknowledged_write_survives_a_restart(tmp_path: Path) -> None:
    """GIVEN the stack on a state directory, and writes of every kind DynamoDB answered
    200 (put, update, delete, batch puts and deletes, a transaction), and two it refused
    WHEN the stack stops with no shutdown step and a new one starts on the directory
    THEN every table is item for item what it was, and the refused writes wrote no line."""
    with stack_on(tmp_path) as store:
        _writes_of_every_kind()
        lines = store.lines_written
        with pytest.raises(ConditionFailed):
            db.put("payments", {"booking_id": "b-1"}, condition="attribute_not_exists(booking_id)")
        assert store.lines_written == lines
        before = snapshot()

    with stack_on(tmp_path):
        assert snapshot() == before
        assert db.get("payments", db.payment_key("b-gone")) is None
        assert db.get("seats", db.seat_key("SA101", "1B"))["status"] == SeatStatus.AVAILABLE  # type: ignore[index]


def test_a_batch_moto_applied_only_in_part_is_restored_as_it_was_left(tmp_path: Path) -> None:
    """GIVEN a batch whose second put is refused (an item over 400 KB) after moto applied
    the first, one by one, and answered 400
    WHEN the stack restarts on its state
    THEN the tables are what they were: the first item is there, as it was in memory; and
    the 400 KB limit, which a restore skips for items that passed it, holds again."""
    from botocore.exceptions import ClientError

    def batch(*items: dict[str, Any]) -> None:
        _resource().meta.client.batch_write_item(
            RequestItems={config.table_name("payments"): [{"PutRequest": {"Item": item}} for item in items]})

    with stack_on(tmp_path):
        with pytest.raises(ClientError, match="Item size"):
            batch({"booking_id": "b-small", "status": "CAPTURED"}, {"booking_id": "b-huge", "blob": "x" * 410_000})
        assert db.get("payments", db.payment_key("b-small")) is not None  # moto's partial batch
        before = snapshot()

    with stack_on(tmp_path):
        assert snapshot() == before
        with pytest.raises(ClientError, match="Item size"):
            batch({"booking_id": "b-huge", "blob": "x" * 410_000})


def test_a_restart_seeds_nothing_again_and_the_customers_sign_in(tmp_path: Path) -> None:
    """GIVEN a first start, which seeds the demo data, then a seat sold and points spent
    WHEN the stack restarts on the same state
    THEN the demo data is not seeded again (the seat stays sold, the balance spent), and
    the demo customers, whose pool is new, sign in with the demo password."""
    with stack_on(tmp_path):
        assert SEEDED == ["seeded"]
        db.update("seats", db.seat_key("SA101", "2C"), "SET #s = :b", names={"#s": "status"},
                  values={":b": SeatStatus.BOOKED.value})
        db.update("loyalty", db.loyalty_account_key("FF0001"), "SET points_balance = :p", values={":p": 1})

    with stack_on(tmp_path):
        assert SEEDED == ["seeded"]
        assert db.get("seats", db.seat_key("SA101", "2C"))["status"] == SeatStatus.BOOKED  # type: ignore[index]
        assert db.get("loyalty", db.loyalty_account_key("FF0001"))["points_balance"] == 1  # type: ignore[index]
        assert _sign_in("FF0003")


def test_fresh_forgets_the_state(tmp_path: Path) -> None:
    """GIVEN a state with a sold seat WHEN the stack starts fresh (FRESH=1 make run) THEN
    the demo data is seeded anew and the seat is free; a file of someone else's in the
    directory is left alone."""
    (tmp_path / "notes.txt").write_text("mine")
    with stack_on(tmp_path):
        db.update("seats", db.seat_key("SA101", "2C"), "SET #s = :b", names={"#s": "status"},
                  values={":b": SeatStatus.BOOKED.value})

    with stack_on(tmp_path, fresh=True):
        assert SEEDED == ["seeded", "seeded"]
        assert db.get("seats", db.seat_key("SA101", "2C"))["status"] == SeatStatus.AVAILABLE  # type: ignore[index]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_customers_keep_their_identity_and_their_tokens(tmp_path: Path) -> None:
    """GIVEN FF0001 signed in on the first start (bookings belong to the token's sub)
    WHEN the stack restarts with a new user pool
    THEN the pool and client ids are the same, FF0001's sub is the same (a function of
    the pool's name and the username, not moto's random one), and the token issued before
    the restart still passes the authorizer with that sub."""
    with stack_on(tmp_path):
        token = _sign_in("FF0001")
        first = auth.verified_claims(token)
        ids = (config.user_pool_id(), config.user_pool_client_id())
        expected = persistence.stable_sub(identity.pool_name("booking-saga-local"), "FF0001")
        assert first["sub"] == expected
        shown = customers.cognito().admin_get_user(UserPoolId=ids[0], Username="FF0001")["UserAttributes"]
        assert {"Name": "sub", "Value": expected} in shown

    with stack_on(tmp_path):
        assert (config.user_pool_id(), config.user_pool_client_id()) == ids
        assert auth.verified_claims(token)["sub"] == expected
        assert auth.verified_claims(_sign_in("FF0001"))["sub"] == expected
        assert auth.verified_claims(_sign_in("FF0002"))["sub"] != expected


def test_a_customers_listing_survives_a_restart_newest_first(tmp_path: Path) -> None:
    """GIVEN three bookings of FF0001 (by the stable sub), a second apart, and one of FF0002
    WHEN the stack restarts (restored items go into the table without a request)
    THEN the by_customer index of the new table lists FF0001's three, newest first, and
    not FF0002's: the index is the table's, rebuilt from the restored items."""
    from chalicelib import api, booking_record, validation
    from chalicelib.customers import Customer
    from tests.support import booking_body

    pool = identity.pool_name("booking-saga-local")
    ada, alan = (Customer(persistence.stable_sub(pool, name), name, name) for name in ("FF0001", "FF0002"))
    made: dict[str, list[str]] = {ada.id: [], alan.id: []}
    with stack_on(tmp_path):
        for customer in (ada, alan, ada, ada):
            clock.advance(1)
            request = validation.parse_booking_request(booking_body(), fault_injection_allowed=False)
            booking, _ = api.open_booking(request, customer=customer, correlation_id=None, idempotency_key=None)
            made[customer.id].append(booking["booking_id"])

    with stack_on(tmp_path):
        listed = booking_record.list_owned(ada.id, limit=10)
        assert [booking["booking_id"] for booking in listed] == made[ada.id][::-1]
        assert [booking["booking_id"] for booking in booking_record.list_owned(alan.id, limit=10)] == made[alan.id]


def test_a_full_segment_is_folded_into_the_snapshot_in_the_background(tmp_path: Path) -> None:
    """GIVEN segments of 4 KB (every few writes close one)
    WHEN many writes go through
    THEN closed segments are folded into the snapshot and deleted, and a restart finds
    every write; at start-up the journal is folded whole: a snapshot and one new segment."""
    with stack_on(tmp_path, segment_bytes=4096) as store:
        for number in range(150):
            db.put("payments", {"booking_id": f"b-{number}", "status": "CAPTURED", "amount": number})
            db.update("payments", db.payment_key(f"b-{number // 2}"), "SET amount = amount + :one",
                      values={":one": 1})
        store.wait_for_compaction()
        assert json.loads((tmp_path / "snapshot.json").read_text())["through"] > 1
        assert len(list(tmp_path.glob("journal-*.jsonl"))) < store._segment
        before = snapshot()

    with stack_on(tmp_path, segment_bytes=4096):
        assert snapshot() == before
        assert [path.name for path in tmp_path.glob("journal-*.jsonl")] == [f"journal-{store._segment + 1:06d}.jsonl"]


def test_an_incomplete_last_line_is_dropped_and_a_broken_one_refused(tmp_path: Path) -> None:
    """GIVEN a journal whose last line was cut off (a machine that died mid-write) THEN it
    loads without that line, which was never acknowledged; GIVEN a line in the middle that
    is not JSON THEN loading refuses and names the file and line, rather than guessing."""
    image = {"booking_id": {"S": "b-1"}, "amount": {"N": "5"}}
    good = json.dumps([["payments", '{"booking_id":{"S":"b-1"}}', image]])
    (tmp_path / "journal-000001.jsonl").write_text(good + "\n" + good[:20])
    assert StateStore(tmp_path).load().tables == {"payments": {'{"booking_id":{"S":"b-1"}}': image}}

    (tmp_path / "journal-000001.jsonl").write_text(good + "\n{not json\n" + good + "\n")
    with pytest.raises(StateCorrupt, match=r"journal-000001\.jsonl:2"):
        StateStore(tmp_path).load()


def test_two_servers_cannot_share_a_state_directory(tmp_path: Path) -> None:
    """GIVEN one process holding the state directory WHEN a second one asks for it THEN it
    is refused, naming the holder (it would fold and delete the first one's journal)."""
    first = StateStore(tmp_path)
    first.acquire()
    try:
        with pytest.raises(StateInUse, match="in use by pid"):
            StateStore(tmp_path).acquire()
    finally:
        first.close()
    second = StateStore(tmp_path)
    second.acquire()
    second.close()


def test_the_moto_targets_the_journal_relies_on() -> None:
    """If a moto upgrade moves one, these fail before state is silently not restored."""
    from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPool
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    assert "overwrite" in inspect.signature(Table.put_item).parameters
    source = inspect.getsource(Item.__init__)  # an item's attributes go in through the checking dict
    assert "self.attrs = LimitedSizeDict()" in source and "self.attrs[key] = DynamoType(value)" in source
    assert "ItemSizeTooLarge" in inspect.getsource(LimitedSizeDict.__setitem__)
    assert callable(DynamoHandler.get_endpoint_name)
    assert "self.body = getattr(self, \"params\", {})" in inspect.getsource(DynamoHandler.call_action)
    assert list(inspect.signature(CognitoIdpBackend.admin_create_user).parameters)[:3] == [
        "self", "user_pool_id", "username"]
    assert '"sub": self._get_user(username).id' in inspect.getsource(CognitoIdpUserPool.create_jwt)
