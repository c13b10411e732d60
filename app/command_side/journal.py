"""The event journal: the system's truth, in Cassandra, written in batches under a lease.

Contract (what callers may rely on, also on failure):
- The owner of a set of partitions of `cart-commands` writes under a `Lease`, which it takes with `claim`: the
  claim seals the lease of every previous owner of those partitions and records where its log ends, so from then
  on nothing a previous owner, a zombie among them, writes counts: its next `append_batch` raises `LeaseLost`
  (or returns once more, when what it wrote is within the recorded end). Two processes that claim the same
  partition end with exactly one of them able to write.
- `append_batch(lease, appends)` writes the events of many members at once, all or none: one plain write of the
  batch's row in the lease's log, then one read of the lease's seal (the fence, "write then read": below). Once
  it returns, the events are durable (acknowledged = in the journal, within the log's end). A write that times
  out is written again (the same row) until Cassandra answers, so it never leaves the caller unsure.
  Each member's events must continue that member's journal right after `expected_version`, as the owner knows
  it: the lease makes the owner the only writer, so the journal does not read each member back to check.
- `index(lease, appends)` then copies those events to the member-keyed journal that `load`, `read` and rebuilds
  read (the owner does it a while later, many batches at once: app/command_side/indexer.py). Once a batch is
  indexed and its events are emitted, the owner marks it `done` (each later append records the mark, and so does
  `mark_done`). A crash before that loses nothing: the next `claim` of the partitions indexes every batch of the
  sealed lease past the mark and hands its events to the claimer to emit (`Lease.unfinished`).
- `load(member_id)`: the member's cart from the newest snapshot plus the events after it; `load_many(member_ids)`
  the same for many members at once, in few requests (a batch of commands loads every member it has not
  cached with it); `read(member_id, from_seq, to_seq, limit)`: events in seq_nr order; all see every appended
  event once `index` or the next claim has run.

The fence, write then read (docs/architecture.md): the owner writes batch b, then reads the lease's seal, and
acknowledges b only if there is none; a claimer writes the seal, then reads the log for its first missing batch.
Both at QUORUM, so of the two the one that reads second sees the other's write: either the owner sees the seal, or
the claimer sees b. The claimer records the first missing batch it saw as the lease's end with a conditional write
(`IF end_batch = null`: the first end recorded is the end, whoever records it); an owner that finds a seal records
b + 1 the same way, so b counts exactly when b < the recorded end, and both sides know it. Batches are written one
after the other, each only once the one before it is acknowledged, so the log has no gap and its first missing
batch is one past its highest. Rows at or past the recorded end (a zombie's last write) are never read.

Layout:
- `journal_log`, partition `(lease, segment)`, a row per batch (the events as a compact JSON list), with the
  static `done_batch` (every batch up to it is in the member-keyed journal and on cart-events). A segment holds
  SEGMENT_BATCHES batches, so no Cassandra partition grows without bound. (Leases of before 2026-12-06 wrote
  each batch `IF next_batch = n`, the static `next_batch` moving by one, -1 once sealed, `end_batch` where it
  ended; a claim seals those the same way: `_seal_conditional`.)
- `journal_seals`: per sealed lease, the seal and the end recorded.
- `journal_owners`: per partition of cart-commands (topic, partition), the lease that owns it and its `fence`
  (moved by a conditional write).
- `journal` (member-keyed): rows in partition `(member_id, bucket)`. A command's events go, whole, into the bucket
  of its first seq_nr, and a command has at most a bucket's worth of events, so a reader that starts one bucket
  early sees every event. It stops once it has read the bucket the event after the last one found would be in
  (the bucket of its seq_nr: a command that began earlier is in a bucket read already), so a member whose events
  all fit in one bucket is read with one request.

For the operator (not part of `Journal`): `scan` reads every event of every member by token ranges of the table
(verify and rebuild), `write_history` writes a new member's whole history at once (the bulk loader), `has_events`
says whether a keyspace holds any journal at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, Protocol, TypeAlias, TypeVar
from uuid import UUID

import orjson
from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType

from app.cart.codec import (
    event_from_payload,
    event_to_payload,
    member_cart_from_dict,
    member_cart_to_dict,
    outcome_from_json,
    outcome_to_json,
)
from app.cart.member_cart import MemberCart
from app.cart.stored_event import StoredEvent
from app.stores.cassandra import StoreUnavailable, applied, execute, execute_all, in_parallel
from app.stores.cql_values import bound
from app.streams.partitioning import partition_of

log = logging.getLogger(__name__)
T = TypeVar("T")

MEMBER_SHARDS = 64
SEGMENT_BATCHES = 1000
SEALED = -1  # `next_batch` of a sealed lease of the conditional format
WRITE_THEN_READ = "write-then-read"
"""The fence of the leases this module writes (`journal_owners.fence`); null: one conditional write per batch."""
ROWS_PER_WRITE = 64
WRITES_IN_FLIGHT = 8
MEMBERS_PER_READ = 100
"""Members in one `IN` read of `load_many`: one request instead of one each, small enough for a coordinator."""
FIRST_EVENTS_READ = 16
"""Events per member `load_many` reads from the first bucket together with the snapshots, before it knows where
each member's snapshot ends: a new member's load is one round trip instead of two (see `load_many`)."""
REJECTION_TTL_S = 7 * 24 * 3600
"""How long a snapshot row's remembered rejections outlive their last save (a retry comes far sooner)."""
TOKEN_MIN, TOKEN_MAX = -(2**63), 2**63 - 1
"""The Murmur3 partitioner's ring; no partition key has the minimum token, so (TOKEN_MIN, TOKEN_MAX] is all of it."""


IndexRow: TypeAlias = tuple[bytes, int, int, bytes, bytes, str, str, int, datetime, str]
"""A member-keyed journal row's values, in the order of its INSERT, each uuid as its 16 bytes: plain values only, so
that the garbage collector stops tracking the tuple at its first collection. The command worker keeps every event
it has appended but not indexed yet this way (up to `CART_INDEX_EVERY_S` of them, app/command_side/indexer.py): as
`StoredEvent`s, with their events, items and UUIDs, they were most of what each full collection walked, about ten
objects an event, and a full collection stalls every command in flight (docs/benchmarks.md, 2026-12-07, evening)."""


class LeaseLost(RuntimeError):
    """A new owner has claimed one of the lease's partitions: this owner wrote nothing and must stop writing."""


class NotIndexedYet(StoreUnavailable):
    """Events that exist (a later one of the member does) are not in the member-keyed journal yet: their owner
    indexes them a while after answering (app/command_side/indexer.py). Worth waiting for, like a store away."""


class NotOwner(ValueError):
    """An append for a member whose partition the lease does not own; nothing was written."""


@dataclass(frozen=True)
class MemberAppend:
    """One command's events for one member, continuing the member's journal right after `expected_version`."""

    member_id: UUID
    expected_version: int
    events: tuple[StoredEvent, ...]


def check_append(append: MemberAppend, bucket_size: int) -> None:
    """Refuse (ValueError), before anything is written, events that do not continue right after the expected
    version, that are not all the member's, or that are more than a bucket holds."""
    seq_nrs = [e.seq_nr for e in append.events]
    if seq_nrs != list(range(append.expected_version + 1, append.expected_version + 1 + len(seq_nrs))):
        raise ValueError("events must continue the journal right after the expected version")
    if any(e.member_id != append.member_id for e in append.events):
        raise ValueError("every event of an append must be the member's")
    if len(seq_nrs) > bucket_size:
        raise ValueError(f"a batch of {len(seq_nrs)} events does not fit in a bucket of {bucket_size}")


def check_owned(lease: Lease, appends: Sequence[MemberAppend], partitions: int | None) -> None:
    """Refuse (NotOwner) appends for members of partitions the lease does not own: a member's partition is the one
    Kafka's partitioner gives its id among `partitions`, as the API keys its commands."""
    if partitions is None:
        return
    strangers = [a.member_id for a in appends if partition_of(str(a.member_id), partitions) not in lease.partitions]
    if strangers:
        raise NotOwner(f"lease {lease.id} does not own the partitions of members {strangers[:3]}")


@dataclass
class Lease:
    """The right to write for a set of partitions, until another owner claims one of them."""

    id: UUID
    owner: str
    partitions: frozenset[int]
    next_batch: int = 0
    done_batch: int = -1  # every batch up to this one is indexed and emitted
    sealed: bool = False  # found sealed by a claimer: nothing more can be written
    previous: dict[int, UUID | None] = field(default_factory=dict)  # partition -> the lease it was claimed from
    unfinished: list[StoredEvent] = field(default_factory=list)  # of sealed leases: maybe never emitted

    def done(self, batch: int) -> None:
        """Every batch up to `batch` is indexed and its events are emitted (recorded by the next append)."""
        self.done_batch = max(self.done_batch, batch)

    def kept_from(self, previous: UUID | None) -> frozenset[int]:
        """The partitions that were owned through `previous` right before this claim (nobody else wrote there)."""
        return frozenset(p for p, lease in self.previous.items() if previous is not None and lease == previous)


class Journal(Protocol):
    async def claim(self, partitions: Iterable[int], owner: str) -> Lease: ...

    async def append_batch(self, lease: Lease, appends: Sequence[MemberAppend]) -> int: ...

    async def index(
        self, lease: Lease, appends: Sequence[MemberAppend], hurry: asyncio.Event | None = None
    ) -> None: ...

    def rows_to_index(self, appends: Sequence[MemberAppend]) -> list[IndexRow]: ...

    async def index_rows(self, rows: Sequence[IndexRow], hurry: asyncio.Event | None = None) -> None: ...

    async def mark_done(self, lease: Lease) -> None: ...

    async def load(self, member_id: UUID) -> MemberCart: ...

    async def load_many(self, member_ids: Collection[UUID]) -> dict[UUID, MemberCart]: ...

    async def read(
        self,
        member_id: UUID,
        from_seq: int = 1,
        to_seq: int | None = None,
        limit: int | None = None,
        serial: bool = False,
    ) -> list[StoredEvent]: ...

    async def save_snapshot(self, state: MemberCart) -> None: ...


def _log_entry(stored: StoredEvent, bucket: int) -> list[Any]:
    """An event as the lease's log keeps it (compact: the log is read back only to index what was not)."""
    return [
        str(stored.member_id), bucket, stored.seq_nr, str(stored.event_id), str(stored.cart_id), stored.command_id,
        stored.type, stored.schema_version, stored.occurred_at.astimezone(UTC).isoformat(),
        event_to_payload(stored.event),
    ]  # fmt: skip


def _from_log_entry(entry: list[Any]) -> tuple[StoredEvent, int]:
    member, bucket, seq_nr, event_id, cart_id, command_id, type_name, schema_version, occurred_at, payload = entry
    stored = StoredEvent(
        event_id=UUID(event_id),
        member_id=UUID(member),
        cart_id=UUID(cart_id),
        seq_nr=int(seq_nr),
        command_id=command_id,
        occurred_at=datetime.fromisoformat(occurred_at).astimezone(UTC),
        event=event_from_payload(type_name, payload),
        schema_version=int(schema_version),
    )
    return stored, int(bucket)


@dataclass
class CassandraJournal:
    session: Session
    keyspace: str
    bucket_size: int = 10_000
    timeout_s: float = 5.0
    segment_batches: int = SEGMENT_BATCHES
    topic: str = "cart-commands"  # whose partitions the leases own (several deployments may share a keyspace)
    partitions: int | None = None  # how many that topic has: a lease may then write only for its own members

    def __post_init__(self) -> None:
        ks = self.keyspace
        prepare = self.session.prepare
        self._insert = prepare(
            f"INSERT INTO {ks}.journal (member_id, bucket, seq_nr, event_id, cart_id, command_id, type, "
            "schema_version, occurred_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        self._add_rejections = prepare(
            f"UPDATE {ks}.snapshots USING TTL {REJECTION_TTL_S} SET rejections = rejections + ? WHERE member_id = ?"
        )
        self._select_snapshots = prepare(
            f"SELECT member_id, state, rejections FROM {ks}.snapshots WHERE member_id IN ?"
        )
        self._select_members_bucket = prepare(
            f"SELECT * FROM {ks}.journal WHERE member_id IN ? AND bucket = ? AND seq_nr >= ?"
        )
        self._select_first_events = prepare(
            f"SELECT * FROM {ks}.journal WHERE member_id IN ? AND bucket = 0 PER PARTITION LIMIT ?"
        )
        # The lease's log, its seal and the partitions' owners.
        self._write_batch = prepare(
            f"UPDATE {ks}.journal_log SET done_batch = ?, events = ? WHERE lease = ? AND segment = ? AND batch_nr = ?"
        )
        self._last_batch = prepare(
            f"SELECT batch_nr FROM {ks}.journal_log WHERE lease = ? AND segment = ? ORDER BY batch_nr DESC LIMIT 1"
        )
        self._read_segment_head = prepare(
            f"SELECT next_batch, end_batch, done_batch FROM {ks}.journal_log WHERE lease = ? AND segment = ? LIMIT 1"
        )
        self._read_segment_head.consistency_level = ConsistencyLevel.LOCAL_SERIAL
        self._read_batches = prepare(
            f"SELECT batch_nr, events FROM {ks}.journal_log "
            "WHERE lease = ? AND segment = ? AND batch_nr >= ? AND batch_nr < ?"
        )
        self._mark_done = prepare(f"UPDATE {ks}.journal_log SET done_batch = ? WHERE lease = ? AND segment = ?")
        self._read_seal = prepare(f"SELECT sealed_at, end_batch FROM {ks}.journal_seals WHERE lease = ?")
        self._read_seal_serial = prepare(f"SELECT sealed_at, end_batch FROM {ks}.journal_seals WHERE lease = ?")
        self._read_seal_serial.consistency_level = ConsistencyLevel.LOCAL_SERIAL
        self._write_seal = prepare(f"UPDATE {ks}.journal_seals SET sealed_at = ?, sealed_by = ? WHERE lease = ?")
        self._record_end = prepare(f"UPDATE {ks}.journal_seals SET end_batch = ? WHERE lease = ? IF end_batch = null")
        # Sealing a lease of the conditional format (before 2026-12-06).
        self._seal = prepare(
            f"UPDATE {ks}.journal_log SET next_batch = -1, end_batch = ? WHERE lease = ? AND segment = ? "
            "IF next_batch = ?"
        )
        self._seal_ahead = prepare(
            f"INSERT INTO {ks}.journal_log (lease, segment, next_batch, end_batch) VALUES (?, ?, -1, ?) IF NOT EXISTS"
        )
        self._read_owner = prepare(f"SELECT lease, fence FROM {ks}.journal_owners WHERE topic = ? AND partition = ?")
        self._read_owner.consistency_level = ConsistencyLevel.LOCAL_SERIAL
        self._first_owner = prepare(
            f"INSERT INTO {ks}.journal_owners (topic, partition, lease, owner, claimed_at, fence) "
            "VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS"
        )
        self._next_owner = prepare(
            f"UPDATE {ks}.journal_owners SET lease = ?, owner = ?, claimed_at = ?, fence = ? "
            "WHERE topic = ? AND partition = ? IF lease = ?"
        )
        self._write_head = prepare(f"INSERT INTO {ks}.journal_lease_heads (lease, segment) VALUES (?, ?)")
        self._read_head = prepare(f"SELECT segment FROM {ks}.journal_lease_heads WHERE lease = ?")
        self._select_token_range = prepare(
            f"SELECT * FROM {ks}.journal WHERE token(member_id, bucket) > ? AND token(member_id, bucket) <= ?"
        )
        self._any_member = prepare(f"SELECT member_id FROM {ks}.members LIMIT 1")
        self._any_event = prepare(f"SELECT member_id FROM {ks}.journal LIMIT 1")

    def bucket_of(self, seq_nr: int) -> int:
        return seq_nr // self.bucket_size

    async def _run(self, statement: Any, params: Sequence[Any] | None = None) -> Any:
        return await execute(self.session, statement, params, self.timeout_s)

    # --- claiming partitions ----------------------------------------------------------------------------------

    async def claim(self, partitions: Iterable[int], owner: str) -> Lease:
        """A new lease on `partitions`: every previous owner's lease is sealed, and what it appended but did not
        index is indexed, before this returns. StoreUnavailable if Cassandra does not answer (nothing is owned
        then; claiming again is safe)."""
        lease = Lease(uuid.uuid4(), owner, frozenset(partitions))
        sealed: dict[UUID, int] = {}
        for partition in sorted(lease.partitions):
            while True:
                rows = list(await self._run(self._read_owner, (self.topic, partition)))
                previous: UUID | None = rows[0].lease if rows else None
                if previous is not None and previous not in sealed:
                    sealed[previous] = await self._seal_lease(previous, rows[0].fence, owner)
                    # Indexed before the partition moves: a claimer that dies after moving it would leave the sealed
                    # lease to nobody (the next claim finds this one's lease as the previous owner), and its owner
                    # indexes behind its answers (app/command_side/indexer.py), so that can be many batches.
                    lease.unfinished += await self._index_sealed(previous, sealed[previous])
                now = datetime.now(UTC)
                if previous is None:
                    moved = await self._run(
                        self._first_owner, (self.topic, partition, lease.id, owner, now, WRITE_THEN_READ)
                    )
                else:
                    moved = await self._run(
                        self._next_owner, (lease.id, owner, now, WRITE_THEN_READ, self.topic, partition, previous)
                    )
                if applied(moved):
                    lease.previous[partition] = previous
                    break
                # Another claimer moved it first: seal that one too, then try again.
        return lease

    async def _seal_lease(self, lease_id: UUID, fence: str | None, sealer: str) -> int:
        """Seal a lease so that nothing its owner writes from now on counts; where its log ends (every batch before
        is in the log, and no batch from there on will ever be read)."""
        if fence != WRITE_THEN_READ:
            return await self._seal_conditional(lease_id)
        seal = list(await self._run(self._read_seal_serial, (lease_id,)))
        if seal and seal[0].end_batch is not None:
            return int(seal[0].end_batch)  # sealed already, by a claimer or by its owner finding the seal
        await self._run(self._write_seal, (datetime.now(UTC), sealer, lease_id))
        end = await self._first_missing(lease_id)
        return _end_recorded(await self._run(self._record_end, (end, lease_id)), end)

    async def _first_missing(self, lease_id: UUID) -> int:
        """The first batch not in the lease's log (its log has no gap: one past its highest batch). From the segment
        the head hint names (the owner writes it once it has written the segment's first batch; every batch before
        it is in the log), on while segments are full."""
        segment = await self._hinted_segment(lease_id)
        while True:
            last = list(await self._run(self._last_batch, (lease_id, segment)))
            start = segment * self.segment_batches
            if not last or last[0].batch_nr is None:
                return start
            if last[0].batch_nr + 1 < start + self.segment_batches:
                return int(last[0].batch_nr) + 1
            segment += 1

    async def _hinted_segment(self, lease_id: UUID) -> int:
        """The segment the lease's head hint names (0 without one): its log is whole before it."""
        rows = list(await self._run(self._read_head, (lease_id,)))
        return int(rows[0].segment) if rows else 0

    async def _seal_conditional(self, lease_id: UUID) -> int:
        """Seal a lease of the conditional format (written before 2026-12-06, `IF next_batch = n` per batch) the way
        its owner's writes check: its static `next_batch` set to -1, conditionally."""
        segment = await self._hinted_segment(lease_id)
        while True:
            head = list(await self._run(self._read_segment_head, (lease_id, segment)))
            start = segment * self.segment_batches
            if not head or head[0].next_batch is None:
                # The owner has not entered this segment: close it before it can.
                closed = await self._run(self._seal_ahead, (lease_id, segment, start))
                if applied(closed):
                    return start
                continue
            next_batch = head[0].next_batch
            if next_batch == SEALED:
                end: int = head[0].end_batch
                return end
            if next_batch >= start + self.segment_batches:
                segment += 1  # full: the owner went on to the next segment (or will)
                continue
            done = await self._run(self._seal, (next_batch, lease_id, segment, next_batch))
            if applied(done):
                return int(next_batch)

    async def _index_sealed(self, lease_id: UUID, end: int) -> list[StoredEvent]:
        """Copy to the member-keyed journal every batch of a sealed lease that its owner may not have finished;
        their events, which may never have been emitted."""
        unfinished: list[StoredEvent] = []
        batch = await self._done_mark(lease_id, end) + 1
        while batch < end:
            segment = batch // self.segment_batches
            upper = min(end, (segment + 1) * self.segment_batches)
            rows = await self._run(self._read_batches, (lease_id, segment, batch, upper))
            entries = [_from_log_entry(e) for row in rows for e in orjson.loads(row.events)]
            # All of them at once, a member's rows side by side (one mutation per member, as the indexer writes).
            await self.index_rows([index_row(stored, bucket) for stored, bucket in entries])
            unfinished += [stored for stored, _ in entries]
            log.info("indexed batches %d..%d of sealed lease %s", batch, upper - 1, lease_id)
            batch = upper
        return unfinished

    async def _done_mark(self, lease_id: UUID, end: int) -> int:
        """The highest batch of the lease known to be indexed and emitted (-1: none)."""
        segment = max(0, (end - 1) // self.segment_batches)
        for probe in (segment, segment - 1):
            if probe < 0:
                break
            head = list(await self._run(self._read_segment_head, (lease_id, probe)))
            if head and head[0].done_batch is not None:
                return int(head[0].done_batch)
        return -1

    # --- appending --------------------------------------------------------------------------------------------

    async def append_batch(self, lease: Lease, appends: Sequence[MemberAppend]) -> int:
        """Write every append, all or none, under the lease (see the module's contract); the batch's number (-1
        when there was nothing to write). LeaseLost: nothing was written that counts, and the lease is dead. Waits
        out a Cassandra that does not answer, so it returns only once it knows the batch is in the journal."""
        appends = [a for a in appends if a.events]
        if not appends:
            return -1
        for append in appends:
            check_append(append, self.bucket_size)
        check_owned(lease, appends, self.partitions)
        if lease.sealed:
            raise LeaseLost(f"lease {lease.id} was sealed by a new owner of one of its partitions")
        entries = [_log_entry(e, self.bucket_of(a.events[0].seq_nr)) for a in appends for e in a.events]
        events = orjson.dumps(entries).decode()
        batch = lease.next_batch
        segment = batch // self.segment_batches
        what = f"batch {batch} of lease {lease.id}"
        # The same row, however often it is written: a write that timed out and landed after all changes nothing.
        await self._until_answered(what, self._write_batch, (lease.done_batch, events, lease.id, segment, batch))
        if batch > 0 and batch % self.segment_batches == 0:  # the hint follows the batch: see _first_missing
            await self._until_answered(what, self._write_head, (lease.id, segment))
        seal = list(await self._until_answered(what, self._read_seal, (lease.id,)))
        if seal:
            # A claimer has sealed the lease: the batch counts if it is within the end recorded, by the claimer (it
            # saw the batch, or not) or by this owner now (it did not record one yet: the batch is in the log).
            lease.sealed = True
            end = _end_recorded(await self._until_answered(what, self._record_end, (batch + 1, lease.id)), batch + 1)
            if batch >= end:
                raise LeaseLost(f"lease {lease.id} was sealed by a new owner of one of its partitions")
            log.warning(
                "%s was written as lease %s was sealed; it counts, and the lease writes no more", what, lease.id
            )
        lease.next_batch = batch + 1
        return batch

    async def _until_answered(self, what: str, statement: Any, params: Sequence[Any]) -> Any:
        """Run an idempotent statement until Cassandra answers it."""
        while True:
            try:
                return await self._run(statement, params)
            except StoreUnavailable as error:
                log.warning("%s: %s; trying again", what, error)
                await asyncio.sleep(0.5)

    async def index(self, lease: Lease, appends: Sequence[MemberAppend], hurry: asyncio.Event | None = None) -> None:
        """Copy appended batches to the member-keyed journal (idempotent), WRITES_IN_FLIGHT requests at a time; with
        `hurry`, one at a time until it is set (someone waits for this copy)."""
        await self.index_rows(self.rows_to_index(appends), hurry)

    def rows_to_index(self, appends: Sequence[MemberAppend]) -> list[IndexRow]:
        """The member-keyed journal's rows of appended batches, as plain values (see `IndexRow`); each append's
        events in the bucket of its first."""
        return [index_row(e, self.bucket_of(a.events[0].seq_nr)) for a in appends for e in a.events]

    async def mark_done(self, lease: Lease) -> None:
        """Record the lease's done mark now rather than with its next append (before a claim, or at a clean stop, so
        that the next claim neither indexes nor emits again what was done). A plain write even on a sealed lease:
        the mark only ever covers batches the owner had acknowledged, which are all within the lease's end."""
        if lease.next_batch == 0:
            return
        segment = (lease.next_batch - 1) // self.segment_batches
        await self._run(self._mark_done, (lease.done_batch, lease.id, segment))

    async def finished(self, partition: int) -> bool:
        """Whether everything the partition's owner has appended is indexed and emitted, as its log's done mark
        says (an owner that stopped cleanly has recorded it; one that died may not have: its next claim finishes).
        For the operator's tools, when no live owner can be asked (`index_everywhere`)."""
        rows = list(await self._run(self._read_owner, (self.topic, partition)))
        if not rows:
            return True
        lease_id = rows[0].lease
        seal = list(await self._run(self._read_seal_serial, (lease_id,)))
        if seal and seal[0].end_batch is not None:
            end = int(seal[0].end_batch)
        else:  # not sealed (or a lease of the conditional format, whose log ends where it was sealed)
            end = await self._first_missing(lease_id)
        return end == 0 or await self._done_mark(lease_id, end) >= end - 1

    async def index_rows(self, rows: Sequence[IndexRow], hurry: asyncio.Event | None = None) -> None:
        """Write rows of the member-keyed journal (idempotent), in any order: sorted here, so that a member's rows
        are side by side, and rows of one partition in one request are one mutation for Cassandra. Many rows in few
        requests: unlogged batches of ROWS_PER_WRITE, whatever partitions they fall in (a request per row made the
        next batch's conditional write wait behind hundreds of them). A member's first event lists the member in
        `members`, in the same requests: written before the conditional write, it was one more round trip on every
        batch with a new member, and nothing reads `members` for correctness (it counts members for a rebuild's
        progress line; the rebuild scans the journal itself)."""
        # As tuples, by member, bucket and seq_nr, without a key function (thousands of rows at a time).
        rows = sorted(rows)
        # By shard: a shard's rows in one request are one mutation.
        new_members = sorted((UUID(bytes=row[0]) for row in rows if row[2] == 1), key=_shard_of)
        listed = len(new_members)

        def statement(i: int) -> Any:
            if i < listed:
                return bound(self._insert_member, _listing(new_members[i]))
            return bound(self._insert, rows[i - listed])  # the driver's own binding refuses an IndexRow's uuids

        await self._write_unlogged(statement, listed + len(rows), hurry)

    async def _write_unlogged(
        self, statement: Callable[[int], Any], count: int, hurry: asyncio.Event | None = None
    ) -> None:
        """`count` statements, the i-th made by `statement(i)`, in requests of ROWS_PER_WRITE, WRITES_IN_FLIGHT at a
        time (a flush of many batches would otherwise put hundreds of requests in front of the next conditional
        write), or with `hurry`, one at a time until it is set. Each statement is made (its values serialized) when
        its request is: made all at once, a flush of thousands of rows held the event loop for tens of
        milliseconds, and kept a few objects a row for the garbage collector to walk for as long as it lasted."""

        def write(start: int) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                end = min(start + ROWS_PER_WRITE, count)
                if end - start == 1:
                    await self._run(statement(start))
                    return
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for i in range(start, end):
                    batch.add(statement(i))  # the driver's bytes, made faster (app/stores/cql_values.py)
                await self._run(batch)

            return run

        starts = list(range(0, count, ROWS_PER_WRITE))
        if hurry is not None:
            while starts and not hurry.is_set():
                await write(starts.pop(0))()
        if len(starts) == 1:
            await write(starts[0])()
        elif starts:
            await in_parallel((write(start) for start in starts), min(WRITES_IN_FLIGHT, len(starts)))

    # --- reading ----------------------------------------------------------------------------------------------

    async def read(
        self,
        member_id: UUID,
        from_seq: int = 1,
        to_seq: int | None = None,
        limit: int | None = None,
        serial: bool = False,
    ) -> list[StoredEvent]:
        """Events from_seq..to_seq in order; `serial` reads at LOCAL_SERIAL."""
        statement = self._select_serial if serial else self._select
        upper = to_seq if to_seq is not None else 2**62
        wanted = limit if limit is not None else 2**31 - 1
        bucket = max(0, self.bucket_of(from_seq) - 1)  # a batch that began in the previous bucket may hold from_seq
        found: list[StoredEvent] = []
        while len(found) < wanted and bucket <= self.bucket_of(upper):
            rows = await self._run(statement, (member_id, bucket, from_seq, upper, min(wanted - len(found), 2**31 - 1)))
            found.extend(_stored(row) for row in rows)
            if found:
                from_seq = found[-1].seq_nr + 1
            if bucket >= self.bucket_of(from_seq):
                break  # the next event, if any, would be in a bucket read already (see the module's Layout)
            bucket += 1
        return found

    async def load(self, member_id: UUID) -> MemberCart:
        return (await self.load_many([member_id]))[member_id]

    async def load_many(self, member_ids: Collection[UUID]) -> dict[UUID, MemberCart]:
        """Each member's cart: its snapshot plus the events after it, in few requests. The snapshots and the first
        FIRST_EVENTS_READ events of each member's first bucket are read at once, one request each per
        MEMBERS_PER_READ members: a member with fewer events there than that (every new member, the commonest
        load, and every member with a short history) has its first bucket whole, and its load is that one round
        trip. (Until 2026-12-07 the events were read after the snapshots, from where each snapshot ended: two round
        trips for every load, in the path of the batch's answers.) The others, members with a longer history, read
        from where their snapshot ends, those starting at the same place in one request per MEMBERS_PER_READ; a
        member whose events go on past the bucket read is read on alone."""
        wanted = list(dict.fromkeys(member_ids))
        states = {m: MemberCart(m) for m in wanted}
        first: dict[UUID, list[StoredEvent]] = {m: [] for m in wanted}

        async def snapshots(chunk: Sequence[UUID]) -> None:
            for row in await self._run(self._select_snapshots, (chunk,)):
                state = member_cart_from_dict(json.loads(row.state)) if row.state is not None else states[row.member_id]
                rejections = row.rejections or {}
                states[row.member_id] = state.with_rejections(outcome_from_json(o) for o in rejections.values())

        async def first_events(chunk: Sequence[UUID]) -> None:
            for row in await self._run(self._select_first_events, (chunk, FIRST_EVENTS_READ)):
                first[row.member_id].append(_stored(row))

        chunks = _chunks(wanted, MEMBERS_PER_READ)
        await asyncio.gather(*(snapshots(chunk) for chunk in chunks), *(first_events(chunk) for chunk in chunks))
        found: dict[UUID, list[StoredEvent]] = {m: [] for m in wanted}
        read_through: dict[UUID, int] = {}  # member -> the last bucket read whole
        starts: dict[tuple[int, int], list[UUID]] = {}  # (first bucket to read, from_seq) -> members
        for m, state in states.items():
            from_seq = state.version + 1
            if len(first[m]) < FIRST_EVENTS_READ:  # bucket 0 whole: the events after the snapshot are among them
                found[m] = [e for e in first[m] if e.seq_nr >= from_seq]
                read_through[m] = 0
            else:
                bucket = max(0, self.bucket_of(from_seq) - 1)
                starts.setdefault((bucket, from_seq), []).append(m)
                read_through[m] = bucket

        async def first_bucket(bucket: int, from_seq: int, chunk: Sequence[UUID]) -> None:
            for row in await self._run(self._select_members_bucket, (chunk, bucket, from_seq)):
                found[row.member_id].append(_stored(row))

        await asyncio.gather(
            *(
                first_bucket(bucket, from_seq, chunk)
                for (bucket, from_seq), members in starts.items()
                for chunk in _chunks(members, MEMBERS_PER_READ)
            )
        )

        async def read_on(m: UUID, bucket: int) -> None:
            next_seq = found[m][-1].seq_nr + 1 if found[m] else states[m].version + 1
            if bucket < self.bucket_of(next_seq):  # the next event, if any, is in a bucket not read yet
                found[m].extend(await self.read(m, from_seq=next_seq))

        await asyncio.gather(*(read_on(m, bucket) for m, bucket in read_through.items()))
        return {m: states[m].with_events(found[m]) for m in wanted}

    async def save_snapshot(self, state: MemberCart) -> None:
        """Idempotent. The state is a shortcut (the journal has every event), so an older one written after it (by a
        stale owner, or late) loses nothing of the journal's; the rejections it remembers are what only a snapshot
        keeps, so they are also added, one map entry each, to the row's `rejections`, which no later write of an
        older state erases (they expire after REJECTION_TTL_S: a retry comes far sooner). One partition: one
        mutation."""
        snapshot = (
            self._insert_snapshot,
            (
                state.member_id, state.version, self.bucket_of(state.version),
                json.dumps(member_cart_to_dict(state)), datetime.now(UTC),
            ),
        )  # fmt: skip
        rejections = {o.command_id: outcome_to_json(o) for o in state.recent if o.rejection is not None}
        if not rejections:
            await execute(self.session, *snapshot, self.timeout_s)
            return
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        batch.add(*snapshot)
        batch.add(self._add_rejections, (rejections, state.member_id))
        await execute(self.session, batch, None, self.timeout_s)

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
        """Write a member's whole history at once: the rows `index` writes, batch by batch from version 0 (the
        members index row first, each batch in the bucket of its first seq_nr), with no lease and no log.
        For the bulk loader only, and only for a member id with no journal yet (a fresh random one): nothing here
        stops a second writer. Each write is an unlogged batch within one partition (one mutation)."""
        version = 0
        by_bucket: dict[int, list[IndexRow]] = {}
        for events in batches:
            check_append(MemberAppend(member_id, version, tuple(events)), self.bucket_size)
            bucket = self.bucket_of(events[0].seq_nr)
            by_bucket.setdefault(bucket, []).extend(index_row(e, bucket) for e in events)
            version += len(events)
        if not version:
            return
        shard = _shard_of(member_id)  # as `index` lists it
        await execute(self.session, self._insert_member, (shard, member_id), self.timeout_s)
        writes = []
        for rows in by_bucket.values():
            for start in range(0, len(rows), rows_per_write):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for row in rows[start : start + rows_per_write]:
                    batch.add(bound(self._insert, row))
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


def _end_recorded(result: Any, end: int) -> int:
    """Where a sealed lease's log ends, from the answer to recording `end` `IF end_batch = null`: `end` if it was
    recorded, else the end recorded before. Recording the same end again (after a time-out) finds it there."""
    row = result.one()
    return end if row[0] else int(row.end_batch)


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def token_ranges(splits: int) -> list[tuple[int, int]]:
    """The ring cut into `splits` ranges (low, high]: together they hold every partition exactly once."""
    step = (TOKEN_MAX - TOKEN_MIN) // max(1, splits)
    bounds = [TOKEN_MIN + i * step for i in range(max(1, splits))] + [TOKEN_MAX]
    return list(pairwise(bounds))


def _shard_of(member_id: UUID) -> int:
    return zlib.crc32(member_id.bytes) % MEMBER_SHARDS


def _listing(member_id: UUID) -> tuple[Any, ...]:
    """A `members` row's values."""
    return _shard_of(member_id), member_id


def index_row(e: StoredEvent, bucket: int) -> IndexRow:
    """An event's member-keyed journal row, as an `IndexRow`."""
    return (
        e.member_id.bytes, bucket, e.seq_nr, e.event_id.bytes, e.cart_id.bytes, e.command_id, e.type,
        e.schema_version, e.occurred_at, json.dumps(event_to_payload(e.event)),
    )  # fmt: skip


def event_of_row(row: IndexRow) -> StoredEvent:
    """The event an `IndexRow` holds."""
    member, _, seq_nr, event_id, cart_id, command_id, type_name, schema_version, occurred_at, payload = row
    return StoredEvent(
        event_id=UUID(bytes=event_id),
        member_id=UUID(bytes=member),
        cart_id=UUID(bytes=cart_id),
        seq_nr=seq_nr,
        command_id=command_id,
        occurred_at=occurred_at,
        event=event_from_payload(type_name, json.loads(payload)),
        schema_version=schema_version,
    )


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
