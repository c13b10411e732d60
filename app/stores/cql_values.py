"""A prepared statement's values serialized faster than the driver binds them, byte for byte as it would.

The read-model rows are written many to a request (app/stores/cassandra.py, `unlogged_batches`), and the driver
binds each row's values one by one through its type classes: 25 us for a popular item's two rows, most of it the
marks (a map of up to twelve source partitions) and the time, the largest single cost of the projection worker
left in a catch-up (docs/benchmarks.md, 2026-12-07, morning). Here each column of a statement gets an encoder once,
from the types the statement was prepared with: the types the read models write (uuid, int, bigint, text,
timestamp, map<int, bigint>) are packed with `struct` directly (11 us for the same two rows); anything else, and
any value of another Python type than the one packed, is left to the driver's own serializer. The journal's
batched writes (its index, the bulk loader) use it too. tests/integration/test_cql_values.py checks the bytes
against the driver's for every write the read models and the journal prepare, tests/unit/test_cql_values.py each
encoder against the driver's serializer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any
from uuid import UUID

from cassandra.cqltypes import DateType, Int32Type, LongType, MapType, UTF8Type, UUIDType, VarcharType
from cassandra.query import BoundStatement, PreparedStatement

Encoder = Callable[[Any], bytes | None]

_int32 = struct.Struct(">i").pack
_int64 = struct.Struct(">q").pack
_INT_SIZE, _LONG_SIZE, _UUID_SIZE = 4, 8, 16
MARKS = (Int32Type, LongType)  # the read models' marks: source partition -> position
_EPOCH, _SECOND = datetime(1970, 1, 1, tzinfo=UTC), timedelta(seconds=1)


def _by_driver(cql_type: Any, protocol_version: int) -> Encoder:
    def encode(value: Any) -> bytes:
        return cql_type.serialize(value, protocol_version)  # type: ignore[no-any-return]

    return encode


def _of_type(kind: type, pack: Callable[[Any], bytes], fallback: Encoder) -> Encoder:
    """`pack` for a value of exactly `kind` (not a subclass: a bool is no int here), the driver for anything else."""

    def encode(value: Any) -> bytes | None:
        return pack(value) if type(value) is kind else fallback(value)

    return encode


def _timestamp(fallback: Encoder) -> Encoder:
    """A timestamp: milliseconds since the epoch, computed with the driver's own arithmetic (float, truncated), from
    the whole seconds it gets with `calendar.timegm(v.utctimetuple())`, here by a timedelta's floor division."""

    def encode(value: Any) -> bytes | None:
        if type(value) is not datetime or value.utcoffset() is None:  # naive: the driver takes it as UTC
            return fallback(value)
        seconds = (value - _EPOCH) // _SECOND
        return _int64(int(seconds * 1e3 + value.microsecond / 1e3))

    return encode


def _uuid(fallback: Encoder) -> Encoder:
    """A uuid: its 16 bytes. Also taken as those 16 bytes already (which the driver refuses): how the command
    worker keeps the rows it has yet to index, as plain values the garbage collector need not walk
    (app/command_side/indexer.py)."""
    as_bytes = attrgetter("bytes")

    def encode(value: Any) -> bytes | None:
        kind = type(value)
        if kind is UUID:
            return as_bytes(value)  # type: ignore[no-any-return]
        if kind is bytes and len(value) == _UUID_SIZE:
            return value  # type: ignore[no-any-return]
        return fallback(value)

    return encode


def _int_to_bigint_map(fallback: Encoder) -> Encoder:
    """map<int, bigint>: the entry count, then each key and value as [bytes] (a length, then the number)."""

    def encode(value: Any) -> bytes | None:
        if type(value) is not dict:
            return fallback(value)
        fields: list[int] = [len(value)]
        for key, number in value.items():
            fields += (_INT_SIZE, key, _LONG_SIZE, number)
        return struct.pack(">i" + "iiiq" * len(value), *fields)

    return encode


def column_encoder(cql_type: Any, protocol_version: int) -> Encoder:
    """How a value of `cql_type` is serialized at `protocol_version`: packed here, or by the driver."""
    fallback = _by_driver(cql_type, protocol_version)
    if protocol_version < 3:  # collections' lengths were 16 bits before protocol v3: nothing of that here
        return fallback
    if cql_type is UUIDType:
        return _uuid(fallback)
    if cql_type is Int32Type:
        return _of_type(int, _int32, fallback)
    if cql_type is LongType:
        return _of_type(int, _int64, fallback)
    if cql_type in (VarcharType, UTF8Type):
        return _of_type(str, str.encode, fallback)
    if cql_type is DateType:
        return _timestamp(fallback)
    if isinstance(cql_type, type) and issubclass(cql_type, MapType) and getattr(cql_type, "subtypes", ()) == MARKS:
        return _int_to_bigint_map(fallback)
    return fallback


_encoders: dict[tuple[bytes, int], list[Encoder]] = {}  # per prepared statement and protocol, one per column


def encoders(statement: PreparedStatement) -> list[Encoder]:
    key = statement.query_id, statement.protocol_version
    found = _encoders.get(key)
    if found is None:
        found = _encoders[key] = [column_encoder(c.type, key[1]) for c in statement.column_metadata]
    return found


def bound(statement: PreparedStatement, values: Sequence[Any] | Mapping[str, Any]) -> BoundStatement:
    """`statement.bind(values)`: the same values, serialized the same way, faster (the module's docstring). A
    value None is a null, as the driver makes it; values by name, and values it cannot take, are left to the
    driver (its checks, and its errors)."""
    columns = encoders(statement)
    if isinstance(values, Mapping) or len(values) != len(columns):
        return statement.bind(values)
    statement_bound = BoundStatement(statement)
    try:
        statement_bound.values = [None if v is None else encode(v) for encode, v in zip(columns, values, strict=True)]
    except Exception:  # e.g. a number out of its column's range: the driver says which column, and why
        return statement.bind(values)
    return statement_bound
