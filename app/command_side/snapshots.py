"""Carts' snapshots, saved behind the answers.

A snapshot is a shortcut for loads (the journal holds every event), so most are saved after their batch is
answered rather than before: a batch with a checkout (which always takes one) no longer waits for a write that no
answer depends on (closed loop +4% and +8% in two interleaved pairs; at 200/s no measurable change: the checkouts'
latency is their downstream work's, docs/benchmarks.md, 2026-12-06, morning). One kind is not a shortcut: a
rejected command leaves no event, and only the snapshot remembers its answer for a retry that reaches another
owner, so that one is saved before the answer (`now`).

Whatever order the writes land in, the newest state given for a member is the one Cassandra keeps: a write is sent
only if no newer state of that member was given since (checked right before it is sent, with no await in between),
and the driver stamps each write when it is sent (client-side, monotonic timestamps), so the last one sent wins.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol
from uuid import UUID

from app.cart.member_cart import MemberCart
from app.stores.cassandra import in_parallel

log = logging.getLogger(__name__)


class SavesSnapshots(Protocol):
    async def save_snapshot(self, state: MemberCart) -> None: ...


@dataclass
class SnapshotWriter:
    journal: SavesSnapshots
    in_flight: int = 8
    _waiting: dict[UUID, tuple[int, MemberCart]] = field(default_factory=dict)  # member -> (number, state)
    _newest: dict[UUID, int] = field(default_factory=dict)  # member -> the number of its newest state given
    _given: int = 0
    _task: asyncio.Task[None] | None = None

    def later(self, state: MemberCart) -> None:
        """Save this state soon (a member's older states still waiting are dropped)."""
        self._waiting[state.member_id] = (self._give(state.member_id), state)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._drain())

    async def now(self, state: MemberCart) -> None:
        """Save this state before returning (and none of the member's older ones after it)."""
        self._waiting.pop(state.member_id, None)
        await self._save(self._give(state.member_id), state)

    async def flush(self) -> None:
        """Wait until every state given to `later` is saved (or given up: a snapshot is only a shortcut)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    def _give(self, member_id: UUID) -> int:
        self._given += 1
        self._newest[member_id] = self._given
        return self._given

    async def _drain(self) -> None:
        while self._waiting:
            taken, self._waiting = self._waiting, {}
            await in_parallel((partial(self._save, n, state) for n, state in taken.values()), self.in_flight)

    async def _save(self, number: int, state: MemberCart) -> None:
        member_id = state.member_id
        try:
            if self._newest.get(member_id) == number:  # else a newer state was given: it is (or will be) sent
                await self.journal.save_snapshot(state)
        except Exception as error:  # a snapshot is a shortcut; the next one will do
            log.warning("snapshot of %s skipped: %s", member_id, error)
        finally:
            if self._newest.get(member_id) == number:
                del self._newest[member_id]
