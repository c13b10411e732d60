"""An in-memory journal, for unit tests of what uses a journal: the same contract as the Cassandra journal
(tests/journal_contract.py runs against both), plus `down` to make it unreachable."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import UTC
from uuid import UUID

from app.cart.codec import member_cart_from_dict, member_cart_to_dict
from app.cart.member_cart import MemberCart
from app.cart.stored_event import StoredEvent
from app.command_side.journal import (
    WRITES_IN_FLIGHT,
    IndexRow,
    Lease,
    LeaseLost,
    MemberAppend,
    check_append,
    check_owned,
    event_of_row,
    index_row,
)
from app.stores.cassandra import StoreUnavailable


class MemoryJournal:
    def __init__(self, bucket_size: int = 10_000, partitions: int | None = None) -> None:
        self.bucket_size = bucket_size
        self.partitions = partitions
        self.events: dict[UUID, dict[int, StoredEvent]] = {}  # the member-keyed journal
        self.logs: dict[UUID, list[tuple[int, list[StoredEvent]]]] = {}  # lease -> (done mark, events) a batch
        self.index_requests_in_flight: list[int] = []  # what each `index` was allowed at its start
        self.sealed: set[UUID] = set()
        self.owners: dict[int, UUID] = {}
        self.snapshots: dict[UUID, dict[str, object]] = {}
        self.down = False
        self._lock = asyncio.Lock()

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("the in-memory journal is down")

    async def claim(self, partitions: Iterable[int], owner: str) -> Lease:
        self._check()
        lease = Lease(uuid.uuid4(), owner, frozenset(partitions))
        async with self._lock:
            self.logs[lease.id] = []
            for partition in sorted(lease.partitions):
                previous = self.owners.get(partition)
                if previous is not None and previous not in self.sealed:
                    self.sealed.add(previous)
                    lease.unfinished += self._index_sealed(previous)
                self.owners[partition] = lease.id
                lease.previous[partition] = previous
        return lease

    def _index_sealed(self, lease_id: UUID) -> list[StoredEvent]:
        batches = self.logs.get(lease_id, [])
        mark = batches[-1][0] if batches else -1  # as recorded by the last batch written
        unfinished = [e for _, events in batches[mark + 1 :] for e in events]
        self._write(unfinished)
        return unfinished

    async def append_batch(self, lease: Lease, appends: Sequence[MemberAppend]) -> int:
        self._check()
        appends = [a for a in appends if a.events]
        if not appends:
            return -1
        for append in appends:
            check_append(append, self.bucket_size)
        check_owned(lease, appends, self.partitions)
        async with self._lock:
            if lease.id in self.sealed:
                raise LeaseLost(f"lease {lease.id} was sealed by a new owner of one of its partitions")
            self.logs[lease.id].append((lease.done_batch, [_as_stored(e) for a in appends for e in a.events]))
        lease.next_batch += 1
        return lease.next_batch - 1

    async def mark_done(self, lease: Lease) -> None:
        self._check()
        async with self._lock:
            batches = self.logs.get(lease.id, [])
            if batches and lease.id not in self.sealed:
                batches[-1] = (lease.done_batch, batches[-1][1])

    async def index(self, lease: Lease, appends: Sequence[MemberAppend], hurry: asyncio.Event | None = None) -> None:
        await self.index_rows(self.rows_to_index(appends), hurry)

    def rows_to_index(self, appends: Sequence[MemberAppend]) -> list[IndexRow]:
        return [index_row(e, 0) for a in appends for e in a.events]  # bucket 0: this journal keeps no buckets

    async def index_rows(self, rows: Sequence[IndexRow], hurry: asyncio.Event | None = None) -> None:
        self._check()
        self.index_requests_in_flight.append(1 if hurry is not None and not hurry.is_set() else WRITES_IN_FLIGHT)
        self._write([_as_stored(event_of_row(row)) for row in rows])

    def _write(self, events: Sequence[StoredEvent]) -> None:
        for e in events:
            self.events.setdefault(e.member_id, {})[e.seq_nr] = e

    async def read(
        self,
        member_id: UUID,
        from_seq: int = 1,
        to_seq: int | None = None,
        limit: int | None = None,
        serial: bool = False,
    ) -> list[StoredEvent]:
        self._check()
        stored = self.events.get(member_id, {})
        found = [stored[n] for n in sorted(stored) if n >= from_seq and (to_seq is None or n <= to_seq)]
        return found[:limit] if limit is not None else found

    async def load(self, member_id: UUID) -> MemberCart:
        self._check()
        snapshot = self.snapshots.get(member_id)
        state = member_cart_from_dict(snapshot) if snapshot else MemberCart(member_id)
        return state.with_events(await self.read(member_id, from_seq=state.version + 1))

    async def load_many(self, member_ids: Collection[UUID]) -> dict[UUID, MemberCart]:
        return {m: await self.load(m) for m in member_ids}

    async def save_snapshot(self, state: MemberCart) -> None:
        self._check()
        self.snapshots[state.member_id] = member_cart_to_dict(state)

    async def members(self) -> list[UUID]:
        self._check()
        return list(self.events)


def _as_stored(event: StoredEvent) -> StoredEvent:
    """As the Cassandra journal keeps it: the envelope's time in UTC, to the millisecond."""
    at = event.occurred_at.astimezone(UTC)
    return replace(event, occurred_at=at.replace(microsecond=at.microsecond // 1000 * 1000))
