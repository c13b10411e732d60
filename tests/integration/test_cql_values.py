"""`bound` (app/stores/cql_values.py) serializes a prepared statement's values byte for byte as the driver's `bind`
does, for every write statement the read models and the journal prepare, over values at the edges of their types;
and what the driver refuses, it refuses too."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from cassandra.cqltypes import (
    BooleanType,
    DateType,
    DecimalType,
    Int32Type,
    LongType,
    MapType,
    UTF8Type,
    UUIDType,
    VarcharType,
)
from cassandra.query import PreparedStatement

from app.command_side.journal import CassandraJournal
from app.query_side.read_models import CassandraReadModels
from app.settings import Settings
from app.stores.cassandra import connect_async
from app.stores.cql_values import bound

INT32 = [0, 1, -1, 2**31 - 1, -(2**31), 2026]
INT64 = [0, -1, 2**63 - 1, -(2**63), 12 * 10**15]
NAMES = ["", "pear", "caf\u00e9 \U0001f600" * 40]


def a_value(cql_type: Any, rng: random.Random) -> Any:
    if cql_type is UUIDType:
        return uuid.UUID(int=rng.getrandbits(128))
    if cql_type is Int32Type:
        return rng.choice(INT32)
    if cql_type is LongType:
        return rng.choice(INT64)
    if cql_type in (VarcharType, UTF8Type):
        return rng.choice(NAMES)
    if cql_type is DateType:
        at = datetime(2026, 12, 7, tzinfo=UTC) + timedelta(microseconds=rng.getrandbits(40))
        return rng.choice(
            [
                at,
                at.astimezone(timezone(timedelta(hours=-5))),  # another offset: the same instant
                at.replace(tzinfo=None),  # naive: the driver reads it as UTC
                datetime(1969, 12, 31, 23, 59, 59, rng.randrange(10**6), tzinfo=UTC),  # before the epoch
                datetime(2026, 12, 7, 0, 0, 0, rng.choice([0, 999, 1000, 999_999]), tzinfo=UTC),
            ]
        )
    if cql_type is DecimalType:
        return Decimal(rng.choice(["0", "-1.5", "123456789.123456789", "1E+3"]))
    if cql_type is BooleanType:
        return rng.random() < 0.5
    if issubclass(cql_type, MapType):
        keys = rng.sample(range(-(2**31), 2**31), rng.choice([0, 1, 12, 100]))
        return {**{k: rng.choice(INT64) for k in keys}, **({2**31 - 1: 2**63 - 1} if rng.random() < 0.5 else {})}
    raise AssertionError(f"a type the read models do not write: {cql_type}")


@pytest.fixture()
async def writes(settings: Settings) -> AsyncIterator[list[PreparedStatement]]:
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    try:
        models = CassandraReadModels(session, settings.cassandra_keyspace)
        journal = CassandraJournal(session, settings.cassandra_keyspace)
        statements = [*vars(models).values(), *vars(journal).values()]
        yield [s for s in statements if isinstance(s, PreparedStatement) and "INSERT" in s.query_string]
    finally:
        cluster.shutdown()


async def test_the_values_are_the_drivers_bytes_for_every_write_of_the_read_models_and_the_journal(
    writes: list[PreparedStatement],
) -> None:
    prepared = " ".join(s.query_string for s in writes)
    # The read models' rows, the journal's rows and its members.
    for table in (
        "item_quantity_by_vendor_month ",
        "popular_items_by_day ",
        "balance_by_vendor ",
        "journal (",
        "members ",
    ):
        assert f".{table}" in prepared
    rng = random.Random(7)
    for statement in writes:
        types = [c.type for c in statement.column_metadata]
        for _ in range(200):
            values = [a_value(t, rng) for t in types]
            if rng.random() < 0.2:  # a null where the key allows one
                values[-2] = None
            assert bound(statement, values).values == statement.bind(values).values, statement.query_string


async def test_what_the_driver_refuses_it_refuses_and_what_it_takes_it_takes_as_the_driver_does(
    writes: list[PreparedStatement],
) -> None:
    statement = writes[0]
    good = [a_value(c.type, random.Random(1)) for c in statement.column_metadata]
    refused = 0
    for position, other in [(0, "not a uuid"), (0, str(uuid.uuid4())), (1, "2026"), (1, 2**40), (1, True), (1, 7.0)]:
        values = list(good)
        values[position] = other
        try:
            expected = statement.bind(values).values
        except Exception as error:
            refused += 1
            with pytest.raises(type(error)):
                bound(statement, values)
        else:
            assert bound(statement, values).values == expected
    assert refused >= 3
    with pytest.raises(ValueError):
        bound(statement, good[:-1] + good)  # too many values: the driver's own message
