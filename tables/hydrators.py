"""The tables of the query side, each co-partitioned with the topic that feeds it (RocksDB, Kafka changelog).

- `absorbed_events`: member id -> the highest seq_nr the `purchases` agent has absorbed (drops duplicates).
- `popular_items_rows`: "vendor/product/year/month/day" -> `app.query_side.projections.RowState` (quantity and marks).
- `vendor_balance_rows`: "vendor/year/month" -> `RowState` (balance and marks).

Each also holds its agent's last processed offset per partition, under `@offset/<partition>`. Values are JSON
(`JsonTable`).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import orjson
from faust.stores.base import SerializedStore
from faust.streams import current_event
from faust.types import TP

from app.streams.faust_app import app, kafka_producer, settings
from app.streams.outbox import Delivery, Outbox


class ChangelogWriteFailed(RuntimeError):
    """Kafka did not take a table's changelog write."""


class JsonTable:
    """A Faust table whose keys and values are JSON, kept as the bytes Faust's json codec would have written (it
    encodes with orjson too, so a changelog written either way restores either way), read and written with orjson.
    Faust's own decoding walks every value looking for a model to rebuild: about 4% of the query worker's CPU at
    saturation (bench 2026-12-02); its key encoding, through its serializer registry, 2% in a catch-up
    (docs/benchmarks.md, 2026-12-03, evening).

    Over a worker's RocksDB store, a write goes to the store and is queued for the changelog here, not through
    Faust's table: Faust sends each write on its own (a future message, its producer buffer's sender task, its
    topic's publish path, a callback that writes the changelog's offset to RocksDB once per message), a fifth of the
    query worker's CPU in a catch-up (docs/benchmarks.md, 2026-12-06, late evening). The queued writes are handed to the
    producer (`send_writes`, after each batch and before every flush) a record batch per changelog partition, the
    partition of the partition being processed, as Faust would, each in the order they were made
    (app/streams/outbox.py); so each changelog partition carries the writes in order, and what a crash leaves of it
    is a prefix. The changelog's offsets reach RocksDB once per flush
    (`persist_offsets`): the offset a restore starts after is then never ahead of what the store holds.
    Anything else (a plain dict in the unit tests) is read and written as a mapping."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._store: Any = None  # the table's store, once used (Faust makes it when the worker starts)
        self._direct: bool | None = None
        self._changelog = ""  # the changelog topic's name, once the store is used
        self._writes = Outbox()  # the writes not handed to the producer yet
        self._sending: asyncio.Lock | None = None
        self._acknowledged: dict[int, int] = {}  # changelog partition -> highest offset Kafka acknowledged
        self._failed: BaseException | None = None  # a write Kafka did not take

    def _is_direct(self) -> bool:
        if self._direct is None:
            self._store = getattr(self.table, "data", None)
            self._direct = isinstance(self._store, SerializedStore)
            if self._direct:
                self._changelog = self.table.changelog_topic.get_topic_name()
        return self._direct

    def get(self, key: str) -> Any:
        raw = self._store._get(orjson.dumps(key)) if self._is_direct() else self.table.get(orjson.dumps(key))
        return None if raw is None else orjson.loads(raw)

    def __setitem__(self, key: str, value: Any) -> None:
        encoded_key, encoded = orjson.dumps(key), orjson.dumps(value)
        if not self._is_direct():
            self.table[encoded_key] = encoded
            return
        event = current_event()
        if event is None:
            raise RuntimeError("a table is written while processing one of its partitions (attributed_to)")
        self._store._set(encoded_key, encoded)  # to the partition of the current event, as Faust's table does
        self._writes.add(self._changelog, event.message.partition, encoded_key, encoded)

    async def send_writes(self) -> None:
        """Hand the writes made so far to the producer, in the order they were made (not waiting for Kafka): a
        record batch per changelog partition (app/streams/outbox.py)."""
        if not self._writes:
            return
        if self._sending is None:
            self._sending = asyncio.Lock()
        async with self._sending:  # one sender at a time, or a later run could overtake an earlier one
            # Writes the producer refused stay in the outbox, ahead of later ones (sent by the next call); each batch
            # it took is watched as it is handed over, those before a refusal too (a failed one stops the commit).
            await self._writes.send(kafka_producer(), self._watch)

    def _watch(self, delivery: Delivery) -> None:
        delivery.acknowledged.add_done_callback(partial(self._acknowledged_at, delivery))

    def _acknowledged_at(self, delivery: Delivery, sent: asyncio.Future[Any]) -> None:
        error = asyncio.CancelledError() if sent.cancelled() else sent.exception()
        if error is not None:
            self._failed = self._failed or error
            return
        last = delivery.offsets()[-1]  # the batch's last write
        if last > self._acknowledged.get(delivery.partition, -1):
            self._acknowledged[delivery.partition] = last

    def persist_offsets(self) -> None:
        """After a flush: the changelog's offsets that Kafka has acknowledged, to the store (what Faust writes per
        message), so that a restore reads the changelog from there. Raises ChangelogWriteFailed if Kafka did not
        take a write: then nothing may be committed, and the process ends (app/streams/driven.py), so that its
        successor processes again what came after the offsets the changelog has."""
        if self._failed is not None:
            raise ChangelogWriteFailed(f"a write to {self.table.name}'s changelog failed: {self._failed!r}")
        if not self._is_direct():
            return
        acknowledged, self._acknowledged = self._acknowledged, {}
        for partition, offset in acknowledged.items():
            self._store.set_persisted_offset(TP(self._changelog, partition), offset)


def json_table(name: str) -> JsonTable:
    # key_type and value_type bytes: Faust's "raw" serializer for the store and the changelog; JsonTable encodes.
    table = JsonTable(app.Table(name, partitions=settings.partitions, key_type=bytes, value_type=bytes, default=None))
    app.json_tables.append(table)  # their writes are sent and flushed with the changelogs (`flush_changelogs`)
    return table


absorbed_events = json_table("absorbed_events")
popular_items_rows = json_table("popular_items_rows")
vendor_balance_rows = json_table("vendor_balance_rows")
