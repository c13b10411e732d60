"""The event journal: the system's truth, in Cassandra.

Contract (what callers may rely on, also on failure):
- `append(member_id, expected_version, events)` writes all of a command's events or none (one conditional,
  single-partition batch) and only if no event exists yet at `expected_version + 1`. The caller's expected version
  must come from the journal (a load, or a cache of it), never be invented: the check is that the next position is
  free, not that the one before it is taken. If another writer got there
  first, it raises `ConcurrencyConflict` and writes nothing: a stale or zombie owner cannot fork a cart, leave a
  gap or overwrite. On `StoreUnavailable` (time-out) the batch may or may not have been applied; the caller
  must reload before deciding again, which the conditional write makes safe.
- `load(member_id)` returns the member's cart from the newest snapshot plus the events after it.
- `read(member_id, from_seq, to_seq, limit)` returns events in seq_nr order.

Partitioning: rows live in partition `(member_id, bucket)`. A command's batch goes, whole, into the bucket of its
first seq_nr (`first // bucket_size`), so a batch never spans partitions. Expected versions are always batch
boundaries of the real history, so two writers racing for seq_nr n compute the same bucket and meet in the same
partition, where the conditional batch lets exactly one win. A batch may not hold more events than a bucket
(append refuses it; a cart's batch is at most MAX_ITEMS = 100 events, far below the bucket size), so a reader
that starts one bucket early and stops at the first empty bucket past the one it wants sees every event.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType

from app.cart.codec import event_from_payload, event_to_payload, member_cart_from_dict, member_cart_to_dict
from app.cart.member_cart import MemberCart
from app.cart.stored_event import StoredEvent
from app.stores.cassandra import execute

MEMBER_SHARDS = 64


class ConcurrencyConflict(RuntimeError):
    """Another writer appended at the expected position first; nothing was written."""


def check_batch(expected_version: int, events: Sequence[StoredEvent], bucket_size: int) -> None:
    """Refuse (ValueError), before anything is written, a batch that does not continue right after the expected
    version or that is larger than a bucket."""
    if [e.seq_nr for e in events] != list(range(expected_version + 1, expected_version + 1 + len(events))):
        raise ValueError("events must continue the journal right after the expected version")
    if len(events) > bucket_size:
        raise ValueError(f"a batch of {len(events)} events does not fit in a bucket of {bucket_size}")


class Journal(Protocol):
    async def append(self, member_id: UUID, expected_version: int, events: Sequence[StoredEvent]) -> None: ...

    async def load(self, member_id: UUID) -> MemberCart: ...

    async def read(
        self,
        member_id: UUID,
        from_seq: int = 1,
        to_seq: int | None = None,
        limit: int | None = None,
        serial: bool = False,
    ) -> list[StoredEvent]: ...

    async def save_snapshot(self, state: MemberCart) -> None: ...


@dataclass
class CassandraJournal:
    session: Session
    keyspace: str
    bucket_size: int = 10_000
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        ks = self.keyspace
        prepare = self.session.prepare
        self._insert = prepare(
            f"INSERT INTO {ks}.journal (member_id, bucket, seq_nr, event_id, cart_id, command_id, type, "
            "schema_version, occurred_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
        )
        select = (
            f"SELECT * FROM {ks}.journal WHERE member_id = ? AND bucket = ? AND seq_nr >= ? AND seq_nr <= ? LIMIT ?"
        )
        self._select = prepare(select)
        self._select_serial = prepare(select)
        self._select_serial.consistency_level = ConsistencyLevel.LOCAL_SERIAL
        self._insert_member = prepare(f"INSERT INTO {ks}.members (shard, member_id) VALUES (?, ?)")
        self._select_members = prepare(f"SELECT member_id FROM {ks}.members WHERE shard = ?")
        self._insert_snapshot = prepare(
            f"INSERT INTO {ks}.snapshots (member_id, seq_nr, bucket, state, taken_at) VALUES (?, ?, ?, ?, ?)"
        )
        self._select_snapshot = prepare(f"SELECT seq_nr, state FROM {ks}.snapshots WHERE member_id = ?")

    def bucket_of(self, seq_nr: int) -> int:
        return seq_nr // self.bucket_size

    async def append(self, member_id: UUID, expected_version: int, events: Sequence[StoredEvent]) -> None:
        if not events:
            return
        check_batch(expected_version, events, self.bucket_size)
        if expected_version == 0:
            # Index the member before its first event, so a rebuild that walks the members never misses one.
            shard = zlib.crc32(member_id.bytes) % MEMBER_SHARDS
            await execute(self.session, self._insert_member, (shard, member_id), self.timeout_s)
        bucket = self.bucket_of(events[0].seq_nr)
        batch = BatchStatement(batch_type=BatchType.LOGGED)
        for e in events:
            batch.add(
                self._insert,
                (
                    member_id, bucket, e.seq_nr, e.event_id, e.cart_id, e.command_id, e.type,
                    e.schema_version, e.occurred_at, json.dumps(event_to_payload(e.event)),
                ),
            )  # fmt: skip
        result = await execute(self.session, batch, timeout_s=self.timeout_s)
        if not result.was_applied:
            raise ConcurrencyConflict(f"member {member_id} already has an event at seq_nr {events[0].seq_nr}")

    async def read(
        self,
        member_id: UUID,
        from_seq: int = 1,
        to_seq: int | None = None,
        limit: int | None = None,
        serial: bool = False,
    ) -> list[StoredEvent]:
        """Events from_seq..to_seq in order; `serial` reads at LOCAL_SERIAL, which first completes any conditional
        write still in flight (so an answer of "not there" cannot be overtaken by a late append)."""
        statement = self._select_serial if serial else self._select
        upper = to_seq if to_seq is not None else 2**62
        wanted = limit if limit is not None else 2**31 - 1
        first_bucket = self.bucket_of(from_seq)
        bucket = max(0, first_bucket - 1)  # a batch that began in the previous bucket may hold from_seq
        found: list[StoredEvent] = []
        while len(found) < wanted and bucket <= self.bucket_of(upper):
            rows = list(
                await execute(
                    self.session,
                    statement,
                    (member_id, bucket, from_seq, upper, min(wanted - len(found), 2**31 - 1)),
                    self.timeout_s,
                )
            )
            if not rows and bucket >= first_bucket:
                break
            found.extend(_stored(row) for row in rows)
            if found:
                from_seq = found[-1].seq_nr + 1
            bucket += 1
        return found

    async def load(self, member_id: UUID) -> MemberCart:
        rows = list(await execute(self.session, self._select_snapshot, (member_id,), self.timeout_s))
        state = member_cart_from_dict(json.loads(rows[0].state)) if rows else MemberCart(member_id)
        return state.with_events(await self.read(member_id, from_seq=state.version + 1))

    async def save_snapshot(self, state: MemberCart) -> None:
        """Idempotent; a snapshot is only a shortcut, so a failed or older one never loses anything."""
        await execute(
            self.session,
            self._insert_snapshot,
            (
                state.member_id, state.version, self.bucket_of(state.version),
                json.dumps(member_cart_to_dict(state)), datetime.now(UTC),
            ),
            self.timeout_s,
        )  # fmt: skip

    async def members(self) -> list[UUID]:
        """Every member with a journal (for rebuilds)."""
        found: list[UUID] = []
        for shard in range(MEMBER_SHARDS):
            rows = await execute(self.session, self._select_members, (shard,), 30.0)
            found.extend(row.member_id for row in rows)
        return found


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        event_id=row.event_id,
        member_id=row.member_id,
        cart_id=row.cart_id,
        seq_nr=row.seq_nr,
        command_id=row.command_id,
        occurred_at=row.occurred_at.replace(tzinfo=UTC),
        event=event_from_payload(row.type, json.loads(row.payload)),
        schema_version=row.schema_version,
    )
