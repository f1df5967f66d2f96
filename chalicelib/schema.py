"""The tables, defined once: the embedded backend creates them from here and the
deploy generator turns the same entries into CloudFormation resources.

Keys are chosen so the hot reads are single requests: one flight's seat map is one
Query (partition ``flight_number``), a loyalty account and its ledger are one Query
(partition ``loyalty_id``), a customer's bookings, newest first, are one Query of the
bookings table's ``by_customer`` index (partition ``customer_id``, sorted by
``created_at``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Index:
    """A global secondary index. ``projected``: the attributes it copies besides the keys
    (INCLUDE), so a listing reads the index alone and a write of anything else (a
    boarding pass, a step's note) costs the index nothing."""

    name: str
    hash_key: str
    range_key: str
    projected: tuple[str, ...]

    def key_schema(self) -> list[dict[str, str]]:
        return [{"AttributeName": self.hash_key, "KeyType": "HASH"},
                {"AttributeName": self.range_key, "KeyType": "RANGE"}]

    def definition(self) -> dict[str, object]:
        """As CreateTable and AWS::DynamoDB::Table's GlobalSecondaryIndexes both take it
        (on-demand billing: no throughput)."""
        return {"IndexName": self.name, "KeySchema": self.key_schema(),
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(self.projected)}}


@dataclass(frozen=True)
class Table:
    name: str  # logical name, as config.table_name() takes it
    logical_id: str  # CloudFormation logical id
    env_var: str  # where the physical name reaches the code
    hash_key: str
    range_key: str | None = None
    ttl_attribute: str | None = None
    indexes: tuple[Index, ...] = ()

    def key_schema(self) -> list[dict[str, str]]:
        schema = [{"AttributeName": self.hash_key, "KeyType": "HASH"}]
        if self.range_key:
            schema.append({"AttributeName": self.range_key, "KeyType": "RANGE"})
        return schema

    def attribute_definitions(self) -> list[dict[str, str]]:
        """Every key attribute, the table's and its indexes', once each (all strings)."""
        names = [item["AttributeName"] for item in self.key_schema()]
        names += [item["AttributeName"] for index in self.indexes for item in index.key_schema()]
        return [{"AttributeName": name, "AttributeType": "S"} for name in dict.fromkeys(names)]

    def index_definitions(self) -> list[dict[str, object]]:
        return [index.definition() for index in self.indexes]


#: GET /bookings: the customer's bookings, newest first. Sparse by nature: a booking
#: without a ``customer_id`` (none is written so) would simply not be listed.
BOOKINGS_BY_CUSTOMER = Index(
    "by_customer", "customer_id", "created_at",
    projected=("status", "flight_number", "seat", "cabin", "fare", "currency", "payment", "updated_at"),
)

TABLES = (
    Table("flights", "FlightsTable", "FLIGHTS_TABLE", "flight_number"),
    Table("seats", "SeatsTable", "SEATS_TABLE", "flight_number", "seat"),
    Table("bookings", "BookingsTable", "BOOKINGS_TABLE", "booking_id", indexes=(BOOKINGS_BY_CUSTOMER,)),
    # The saga's step log: one small item per (booking, step or compensation), so each
    # log write (on its own, or a part of the step's transaction) touches a few hundred
    # bytes, not the booking.
    Table("step_log", "StepLogTable", "STEP_LOG_TABLE", "booking_id", "entry"),
    # One item per Idempotency-Key of POST /bookings; expires after a day.
    Table("idempotency", "IdempotencyTable", "IDEMPOTENCY_TABLE", "idempotency_key", ttl_attribute="expires_at"),
    Table("payments", "PaymentsTable", "PAYMENTS_TABLE", "booking_id"),
    Table("loyalty", "LoyaltyTable", "LOYALTY_TABLE", "loyalty_id", "record"),
    Table("dead_letters", "DeadLettersTable", "DEAD_LETTERS_TABLE", "booking_id", "entry"),
)
TABLES_BY_NAME = {table.name: table for table in TABLES}
