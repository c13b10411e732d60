"""The query side's table keys and values: JSON bytes that Faust's json codec reads and writes the same way, so
changelogs written before `JsonTable` (by Faust's codec) restore into it, and the other way round."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from faust.serializers import codecs

from app.query_side.projections import RowState
from tables.hydrators import JsonTable

ROW = RowState(Decimal("12.30"), "Teapot", 3, {0: 17, 11: 4}, datetime(2026, 12, 2, tzinfo=UTC).isoformat())


@pytest.mark.parametrize("value", [ROW.to_dict(), 41, None], ids=["row", "seq_nr", "none"])
@pytest.mark.parametrize("key", ["3f0c8e1a-51a4-4c1e-9d0b-6a3f5e2b7c11", "@offset/11", "v/p/2026/12/3"])
def test_what_faust_wrote_reads_back_and_faust_reads_what_is_written(value: Any, key: str) -> None:
    old: dict[bytes, bytes] = {codecs.dumps("json", key): codecs.dumps("json", value)}  # a key_type=str table's
    assert JsonTable(old).get(key) == value

    new: dict[bytes, bytes] = {}
    JsonTable(new)[key] = value
    ((written_key, written),) = new.items()
    assert codecs.loads("json", written_key) == key
    assert codecs.loads("json", written) == value


def test_a_row_state_survives_the_table() -> None:
    table = JsonTable({})
    table["vendor/product/2026/12/2"] = ROW.to_dict()
    assert RowState.from_dict(table.get("vendor/product/2026/12/2")) == ROW
    assert table.get("absent") is None


def test_the_tables_store_and_changelog_pass_the_bytes_through() -> None:
    from tables.hydrators import absorbed_events

    table = absorbed_events.table
    assert table.key_serializer == table.value_serializer == "raw"
    assert table.changelog_topic.key_serializer == table.changelog_topic.value_serializer == "raw"
    assert table.changelog_topic.key_type is table.changelog_topic.value_type is bytes
