"""An in-memory journal, for unit tests of what uses a journal: the same contract as the Cassandra journal
(tests/journal_contract.py runs against both), plus `down` to make it unreachable."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC
from uuid import UUID

from app.cart.codec import member_cart_from_dict, member_cart_to_dict
from app.cart.member_cart import MemberCart
from app.cart.stored_event import StoredEvent
from app.command_side.journal import ConcurrencyConflict, check_batch
from app.stores.cassandra import StoreUnavailable


class MemoryJournal:
    def __init__(self, bucket_size: int = 10_000) -> None:
        self.bucket_size = bucket_size
        self.events: dict[UUID, dict[int, StoredEvent]] = {}
        self.snapshots: dict[UUID, dict[str, object]] = {}
        self.down = False
        self._lock = asyncio.Lock()

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("the in-memory journal is down")

    async def append(self, member_id: UUID, expected_version: int, events: Sequence[StoredEvent]) -> None:
        self._check()
        if not events:
            return
        check_batch(expected_version, events, self.bucket_size)
        async with self._lock:
            stored = self.events.setdefault(member_id, {})
            if any(e.seq_nr in stored for e in events):
                raise ConcurrencyConflict(f"member {member_id} already has an event at seq_nr {events[0].seq_nr}")
            for e in events:
                stored[e.seq_nr] = _as_stored(e)

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
