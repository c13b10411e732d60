"""Each column encoder of app/stores/cql_values.py against the driver's own serializer of its type, at every native
protocol version the driver speaks (before v3 a collection's lengths were 16 bits: the driver's way is kept there),
over values at the edges of the type and values of other Python types (left to the driver). No Cassandra needed:
tests/integration/test_cql_values.py checks whole statements as Cassandra prepared them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any

import pytest
from cassandra.cqltypes import (
    DateType,
    DecimalType,
    Int32Type,
    LongType,
    MapType,
    UTF8Type,
    UUIDType,
    VarcharType,
)

from app.stores.cql_values import column_encoder


class NoOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None


MARKS = MapType.apply_parameters((Int32Type, LongType))
AT = datetime(2026, 12, 7, 6, 40, 1, 999_999, tzinfo=UTC)
VALUES: list[tuple[Any, list[Any]]] = [
    (UUIDType, [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.uuid4()]),
    (Int32Type, [0, -1, 2**31 - 1, -(2**31), True]),
    (LongType, [0, -1, 2**63 - 1, -(2**63), 2**40]),
    (VarcharType, ["", "pear", "caf\u00e9 \U0001f600" * 50]),
    (UTF8Type, ["", "n\u00e9"]),
    (
        DateType,
        [
            AT,
            AT.astimezone(timezone(timedelta(hours=5, minutes=30))),
            AT.replace(tzinfo=None),
            AT.replace(tzinfo=NoOffset()),  # a time zone that gives no offset: naive, to the driver
            datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
            datetime(1, 1, 1, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            1_765_000_000_000,
        ],
    ),
    (MARKS, [{}, {0: 0}, {2**31 - 1: 2**63 - 1, -(2**31): -(2**63)}, {p: p * 10**12 for p in range(100)}]),
    (DecimalType, [Decimal("1.50"), Decimal("-1E+3")]),
]


@pytest.mark.parametrize("protocol_version", [2, 3, 4, 5])
@pytest.mark.parametrize("cql_type, values", VALUES, ids=[str(t.__name__) for t, _ in VALUES])
def test_an_encoder_writes_the_drivers_bytes(cql_type: Any, values: list[Any], protocol_version: int) -> None:
    encode = column_encoder(cql_type, protocol_version)
    for value in values:
        assert encode(value) == cql_type.serialize(value, protocol_version), value


def test_a_uuid_given_as_its_sixteen_bytes_is_written_as_the_uuid() -> None:
    encode = column_encoder(UUIDType, 4)
    for value in (uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.uuid4()):
        assert encode(value.bytes) == UUIDType.serialize(value, 4)


@pytest.mark.parametrize(
    "cql_type, value",
    [(UUIDType, "not a uuid"), (UUIDType, b"fifteen bytes.."), (Int32Type, "7"), (Int32Type, 2**31), (MARKS, {"p": 1})],
)
def test_what_the_driver_refuses_it_refuses_alike(cql_type: Any, value: Any) -> None:
    with pytest.raises(Exception) as driver:
        cql_type.serialize(value, 4)
    with pytest.raises(type(driver.value)):
        column_encoder(cql_type, 4)(value)
