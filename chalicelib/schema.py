"""The tables, defined once: the embedded backend creates them from here and the
deploy generator turns the same entries into CloudFormation resources.

Keys are chosen so the hot reads are single requests: one flight's seat map is one
Query (partition ``flight_number``), a loyalty account and its ledger are one Query
(partition ``loyalty_id``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    name: str  # logical name, as config.table_name() takes it
    logical_id: str  # CloudFormation logical id
    env_var: str  # where the physical name reaches the code
    hash_key: str
    range_key: str | None = None
    ttl_attribute: str | None = None

    def key_schema(self) -> list[dict[str, str]]:
        schema = [{"AttributeName": self.hash_key, "KeyType": "HASH"}]
        if self.range_key:
            schema.append({"AttributeName": self.range_key, "KeyType": "RANGE"})
        return schema

    def attribute_definitions(self) -> list[dict[str, str]]:
        return [{"AttributeName": item["AttributeName"], "AttributeType": "S"} for item in self.key_schema()]


TABLES = (
    Table("flights", "FlightsTable", "FLIGHTS_TABLE", "flight_number"),
    Table("seats", "SeatsTable", "SEATS_TABLE", "flight_number", "seat"),
    Table("bookings", "BookingsTable", "BOOKINGS_TABLE", "booking_id"),
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
