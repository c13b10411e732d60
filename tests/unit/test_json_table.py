"""The query side's table keys and values: JSON bytes that Faust's json codec reads and writes the same way, so
changelogs written before `JsonTable` (by Faust's codec) restore into it, and the other way round. Over a worker's
store, its writes: to the store at once, to the changelog in the order made, and what Kafka did not take stops a
commit. (The real worker, Kafka and RocksDB: tests/integration/test_table_changelog.py.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError
from faust.serializers import codecs
from faust.stores.base import SerializedStore
from faust.streams import current_event

from app.query_side.projections import RowState
from app.streams.batches import attributed_to
from app.streams.following import OwnedPartition
from tables.hydrators import ChangelogWriteFailed, JsonTable
from tests.unit.kafka_stand_in import Producer

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


class Store(SerializedStore):  # type: ignore[misc]
    """What JsonTable uses of a worker's RocksDB store (one dict per partition; made without Faust's app)."""

    def __init__(self) -> None:  # not Faust's: no app, no files
        self.partitions: dict[int, dict[bytes, bytes | None]] = {}
        self.persisted: dict[int, int] = {}

    def _get(self, key: bytes) -> bytes | None:
        return self.partitions.get(current_event().message.partition, {}).get(key)

    def _set(self, key: bytes, value: bytes | None) -> None:
        self.partitions.setdefault(current_event().message.partition, {})[key] = value

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted[tp.partition] = offset


Store.__abstractmethods__ = frozenset()  # the rest of a store's interface is not used here


def direct_table() -> tuple[JsonTable, Store, Producer]:
    changelog = SimpleNamespace(get_topic_name=lambda: "t-rows-changelog")
    store, producer = Store(), Producer()
    return JsonTable(SimpleNamespace(data=store, changelog_topic=changelog, name="rows")), store, producer


async def test_a_worker_table_writes_its_store_at_once_and_its_changelog_in_order_when_sent() -> None:
    table, store, producer = direct_table()
    with patch("tables.hydrators.kafka_producer", lambda: producer):
        with attributed_to(OwnedPartition("o", 3)):
            table["a"] = 1
            table["b"] = 2
        with attributed_to(OwnedPartition("o", 5)):
            table["a"] = 9  # another partition's key of the same name
        with attributed_to(OwnedPartition("o", 3)):
            table["a"] = 3
            assert table.get("a") == 3 and table.get("b") == 2  # read back before anything is sent
        assert producer.sent == []
        await table.send_writes()
    sent = [(s.topic, s.partition, [(orjson.loads(k), orjson.loads(v)) for k, v in s.messages]) for s in producer.sent]
    # A batch per changelog partition, each in the order written.
    assert sent == [("t-rows-changelog", 3, [("a", 1), ("b", 2), ("a", 3)]), ("t-rows-changelog", 5, [("a", 9)])]
    producer.sent[0].acknowledge(40)
    producer.sent[1].acknowledge(7)
    await asyncio.sleep(0)
    table.persist_offsets()  # once flushed: the highest acknowledged offset of each changelog partition
    assert store.persisted == {3: 42, 5: 7}


async def test_a_changelog_write_kafka_did_not_take_stops_anything_from_being_committed() -> None:
    table, store, producer = direct_table()
    with patch("tables.hydrators.kafka_producer", lambda: producer):
        with attributed_to(OwnedPartition("o", 0)):
            table["a"] = 1
        with attributed_to(OwnedPartition("o", 1)):
            table["b"] = 2
        await table.send_writes()
    producer.sent[0].acknowledged.set_exception(KafkaTimeoutError())
    producer.sent[1].acknowledge(8)
    await asyncio.sleep(0)
    with pytest.raises(ChangelogWriteFailed):
        table.persist_offsets()
    assert store.persisted == {}


async def test_writes_not_handed_over_when_the_producer_fails_go_first_next_time() -> None:
    table, _, producer = direct_table()
    refusing = Producer(capacity=1, refuse_after=1)
    with attributed_to(OwnedPartition("o", 0)):
        for key in "abc":
            table[key] = key
    with patch("tables.hydrators.kafka_producer", lambda: refusing), pytest.raises(KafkaTimeoutError):
        await table.send_writes()  # "a" handed over, then the producer refuses "b"
    with attributed_to(OwnedPartition("o", 0)):
        table["d"] = "d"
    with patch("tables.hydrators.kafka_producer", lambda: producer):
        await table.send_writes()
    assert [orjson.loads(k) for _, _, k, _ in refusing.messages()] == ["a"]
    assert [orjson.loads(k) for _, _, k, _ in producer.messages()] == ["b", "c", "d"]  # the rest, still in order


async def test_a_batch_handed_over_before_the_producer_refused_one_is_still_watched() -> None:
    table, store, _ = direct_table()
    refusing = Producer(refuse_after=1)
    with attributed_to(OwnedPartition("o", 0)):
        table["a"] = "a"
    with attributed_to(OwnedPartition("o", 1)):
        table["b"] = "b"
    with patch("tables.hydrators.kafka_producer", lambda: refusing), pytest.raises(KafkaTimeoutError):
        await table.send_writes()  # partition 0's batch handed over, partition 1's refused
    refusing.sent[0].acknowledged.set_exception(KafkaTimeoutError())  # and Kafka does not take it
    await asyncio.sleep(0)
    with pytest.raises(ChangelogWriteFailed):
        table.persist_offsets()
    assert store.persisted == {}
