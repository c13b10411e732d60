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

For the operator (not part of `Journal`): `scan` reads every event of every member by token ranges of the table
(verify and rebuild), `write_history` writes a new member's whole history at once (the bulk loader), `has_events`
says whether a keyspace holds any journal at all.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, Protocol
from uuid import UUID

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType

from app.cart.codec import event_from_payload, event_to_payload, member_cart_from_dict, member_cart_to_dict
from app.cart.member_cart import MemberCart
from app.cart.stored_event import StoredEvent
from app.stores.cassandra import execute, execute_all, in_parallel

MEMBER_SHARDS = 64
TOKEN_MIN, TOKEN_MAX = -(2**63), 2**63 - 1
"""The Murmur3 partitioner's ring; no partition key has the minimum token, so (TOKEN_MIN, TOKEN_MAX] is all of it."""


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
        self._insert_unconditional = prepare(
            f"INSERT INTO {ks}.journal (member_id, bucket, seq_nr, event_id, cart_id, command_id, type, "
            "schema_version, occurred_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self._select_token_range = prepare(
            f"SELECT * FROM {ks}.journal WHERE token(member_id, bucket) > ? AND token(member_id, bucket) <= ?"
        )
        self._any_member = prepare(f"SELECT member_id FROM {ks}.members LIMIT 1")
        self._any_event = prepare(f"SELECT member_id FROM {ks}.journal LIMIT 1")

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

    # --- For the operator: every event (verify, rebuild), a whole history at once (the bulk loader). -----------

    async def scan(
        self,
        consume: Callable[[JournalPage], None],
        splits: int = 64,
        concurrency: int = 4,
        page_size: int = 2000,
        part: int = 0,
        parts: int = 1,
    ) -> None:
        """Every row of the journal, page by page, to `consume`: the table's token ring cut into `splits` ranges,
        `concurrency` ranges read at a time (only share `part` of `parts` of them, for scans split over
        processes). Within a (member, bucket) partition events come in seq_nr order;
        partitions and ranges come in no useful order. Not a snapshot: an event appended meanwhile may or may not
        be seen. Unlike walking `members`, one request brings a page of many members' events."""

        def range_reader(low: int, high: int) -> Callable[[], Awaitable[None]]:
            async def read() -> None:
                paging_state = None
                while True:
                    statement = self._select_token_range.bind((low, high))
                    statement.fetch_size = page_size
                    result = await execute(self.session, statement, None, 30.0, paging_state)
                    consume(JournalPage(result.current_rows))
                    paging_state = result.paging_state
                    if paging_state is None:
                        return

            return read

        ranges = token_ranges(splits)[part::parts]
        await in_parallel((range_reader(low, high) for low, high in ranges), concurrency)

    async def write_history(
        self, member_id: UUID, batches: Sequence[Sequence[StoredEvent]], rows_per_write: int = 100
    ) -> None:
        """Write a member's whole history at once: the rows `append` writes, batch by batch from version 0 (the
        members index row first, each batch in the bucket of its first seq_nr), without the conditional write.
        For the bulk loader only, and only for a member id with no journal yet (a fresh random one): nothing here
        stops a second writer. Each write is an unlogged batch within one partition (one mutation)."""
        version = 0
        by_bucket: dict[int, list[tuple[Any, ...]]] = {}
        for events in batches:
            check_batch(version, events, self.bucket_size)
            if any(e.member_id != member_id for e in events):
                raise ValueError(f"a history of {member_id} holds another member's event")
            bucket = self.bucket_of(events[0].seq_nr)
            by_bucket.setdefault(bucket, []).extend(_row(member_id, bucket, e) for e in events)
            version += len(events)
        if not version:
            return
        shard = zlib.crc32(member_id.bytes) % MEMBER_SHARDS  # as `append` indexes it
        await execute(self.session, self._insert_member, (shard, member_id), self.timeout_s)
        writes = []
        for rows in by_bucket.values():
            for start in range(0, len(rows), rows_per_write):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for row in rows[start : start + rows_per_write]:
                    batch.add(self._insert_unconditional, row)
                writes.append((batch, None))
        await execute_all(self.session, writes, concurrency=len(writes), timeout_s=self.timeout_s)

    async def has_events(self) -> bool:
        """True when the keyspace indexes any member or holds any event."""
        for statement in (self._any_member, self._any_event):
            if list(await execute(self.session, statement, None, 30.0)):
                return True
        return False


@dataclass(frozen=True)
class JournalPage:
    """A page of journal rows from `scan`, decoded on demand: decoding (JSON, UUIDs, Decimals) is most of a
    scan's cost, so a reader that needs only some event types decodes only those."""

    rows: list[Any]

    def __len__(self) -> int:
        return len(self.rows)

    def member_ids(self) -> set[UUID]:
        return {row.member_id for row in self.rows}

    def events(self, types: Collection[str] | None = None) -> list[StoredEvent]:
        """The page's events (of these type names only, if given), in the page's order."""
        return [_stored(row) for row in self.rows if types is None or row.type in types]


def token_ranges(splits: int) -> list[tuple[int, int]]:
    """The ring cut into `splits` ranges (low, high]: together they hold every partition exactly once."""
    step = (TOKEN_MAX - TOKEN_MIN) // max(1, splits)
    bounds = [TOKEN_MIN + i * step for i in range(max(1, splits))] + [TOKEN_MAX]
    return list(pairwise(bounds))


def _row(member_id: UUID, bucket: int, e: StoredEvent) -> tuple[Any, ...]:
    """A journal row's values, in the order of the INSERT statements (`append` builds the same tuple)."""
    return (
        member_id, bucket, e.seq_nr, e.event_id, e.cart_id, e.command_id, e.type,
        e.schema_version, e.occurred_at, json.dumps(event_to_payload(e.event)),
    )  # fmt: skip


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
