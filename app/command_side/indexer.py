"""The member-keyed journal, written behind the log: a batch's events are indexed a while after it is answered,
many batches at a time.

The conditional write into the owner's log (app/command_side/journal.py) is what makes a batch durable; the copy of
its events into the member-keyed `journal` table is what loads, the history route and rebuilds read. That copy was
the command side's largest cost: one Cassandra partition written per event, each a mutation of its own (on the
development machine a journal row cost Cassandra about 0.6 ms of CPU, more than the conditional write of the batch
it came in: docs/benchmarks.md, 2026-12-05). A member's rows are one partition, so rows of the same member written
together are one mutation. So the owner keeps what it has appended but not indexed (`Indexer`), and writes it every
`every_s` seconds, or once `max_pending` events wait, or when asked, with each member's rows together.

What keeps every reader right while rows wait here:
- the owner's own loads and answers read the journal and then what waits here (`pending`), so the owner never
  decides on a cart that misses an event;
- another owner's loads come after its claim, which seals this owner's lease and indexes every batch of it past
  the lease's done mark (`Lease.done` moves only when a flush has written the batch, and so the mark never claims
  a batch that is not indexed);
- a reader that must see everything (the history route, `purchases` recovering a member's missing events, `cart
  verify` and `cart rebuild`, the drills) first asks the owners to index what they hold (`INDEX_NOW`, answered once
  everything appended before it is indexed).

A crash loses nothing: every event waiting here is in the log, and the next claim indexes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from uuid import UUID

from app.cart.stored_event import StoredEvent
from app.command_side.journal import IndexRow, Journal, Lease, MemberAppend, event_of_row
from app.stores.transient import until_done

log = logging.getLogger(__name__)

INDEX_NOW = "IndexNow"
"""The type of the command that asks an owner to index everything it holds before it answers (not a cart command:
it changes no cart, and needs no member; the API sends it before reading a history, the CLI before a verify)."""


@dataclass
class Waiting:
    """Appended batches not indexed yet, in the order they were appended: their rows, as plain values (`IndexRow`:
    an owner keeps up to `every_s` of them, and as objects they were most of what a full garbage collection walked),
    and each member's rows in seq_nr order (by the member id's number: an int is not tracked either)."""

    batches: list[tuple[Lease, int, list[IndexRow]]] = field(default_factory=list)
    by_member: dict[int, list[IndexRow]] = field(default_factory=dict)
    events: int = 0

    def add(self, lease: Lease, batch_nr: int, rows: list[IndexRow]) -> None:
        self.batches.append((lease, batch_nr, rows))
        for row in rows:
            self.by_member.setdefault(int.from_bytes(row[0]), []).append(row)
        self.events += len(rows)


@dataclass
class Indexer:
    """Indexes appended batches a while after they are answered, many at a time (see the module's docstring).

    The handler `add`s a batch as soon as it is appended (so `pending` holds every event of this owner's that a
    load of the member journal may not see yet) and says when its events are `emitted`; a lease's done mark moves
    only over batches both indexed and emitted. `every_s` = 0 indexes each batch once it is emitted, before it is
    answered (the behaviour before lazy indexing, for tests and for anyone who wants the member-keyed journal to
    hold every answered command)."""

    journal: Journal
    every_s: float = 10.0
    max_pending: int = 20_000
    _waiting: Waiting = field(default_factory=Waiting)
    _flushing: Waiting = field(default_factory=Waiting)  # taken by the flush under way, until it is written
    _indexed: dict[UUID, int] = field(default_factory=dict)  # lease -> the last batch indexed
    _emitted: dict[UUID, int] = field(default_factory=dict)  # lease -> the last batch emitted
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _timer: asyncio.Task[None] | None = None
    _kicked: asyncio.Event = field(default_factory=asyncio.Event)
    _hurry: asyncio.Event = field(default_factory=asyncio.Event)  # someone waits for a flush: no more gentleness

    @property
    def lazy(self) -> bool:
        return self.every_s > 0

    def add(self, lease: Lease, batch_nr: int, appends: Sequence[MemberAppend]) -> None:
        """A batch just appended (before it is emitted)."""
        if batch_nr < 0:
            return
        self._waiting.add(lease, batch_nr, self.journal.rows_to_index(appends))
        if self.lazy:
            if self._timer is None or self._timer.done():
                self._timer = asyncio.ensure_future(self._flush_every())
            if self._waiting.events >= self.max_pending:
                self._kicked.set()

    async def emitted(self, lease: Lease, batch_nr: int) -> None:
        """Every batch of the lease up to `batch_nr` is emitted (batches are finished in order); when not lazy,
        they are indexed now."""
        if batch_nr < 0:
            return
        self._emitted[lease.id] = max(self._emitted.get(lease.id, -1), batch_nr)
        self._advance(lease)
        if not self.lazy:
            await self.flush()

    def _advance(self, lease: Lease) -> None:
        lease.done(min(self._indexed.get(lease.id, -1), self._emitted.get(lease.id, -1)))

    def pending(self, member_id: UUID) -> list[StoredEvent]:
        """The member's events appended by this owner that the member journal may not hold yet, in seq_nr order.
        Taken before reading the journal, it and the journal together hold every event (a flush that ends in
        between has written what it took)."""
        key = member_id.int
        rows = [*self._flushing.by_member.get(key, ()), *self._waiting.by_member.get(key, ())]
        return [event_of_row(row) for row in rows]

    async def flush(self, gently: bool = False) -> None:
        """Index every batch added so far (waiting for a Cassandra that does not answer). `gently`, for the timed
        flush: one request at a time for as long as nobody waits for a flush. With several in flight, the
        conditional write of every batch that came meanwhile queued behind them in Cassandra, and the commands
        answered during a flush were the slowest of all (p99 at 200 commands/s: docs/benchmarks.md, 2026-12-05,
        night). A flush someone waits for (INDEX_NOW, the settle before a claim) goes at full speed, and so does the
        rest of a gentle one under way, which it waits for first."""
        if not gently:
            self._hurry.set()
        async with self._lock:
            if not gently:
                self._hurry.clear()  # no gentle flush runs while this one holds the lock
            self._flushing, self._waiting = self._waiting, Waiting()
            try:
                await self._write(self._flushing, self._hurry if gently else None)
            except BaseException:
                # Not written (cancelled on the way out): the batches wait again, in front of what came meanwhile.
                self._waiting = _merged(self._flushing, self._waiting)
                raise
            finally:
                self._flushing = Waiting()

    async def _write(self, taken: Waiting, hurry: asyncio.Event | None) -> None:
        by_lease: dict[UUID, tuple[Lease, list[IndexRow], int]] = {}
        for lease, batch_nr, rows in taken.batches:
            _, so_far, _ = by_lease.get(lease.id, (lease, [], -1))
            so_far.extend(rows)
            by_lease[lease.id] = (lease, so_far, batch_nr)
        for lease, rows, last in by_lease.values():
            await until_done("indexing appended batches", partial(self.journal.index_rows, rows, hurry=hurry))
            self._indexed[lease.id] = last
            self._advance(lease)

    def discard(self) -> None:
        """Forget what waits (a lease lost to a new owner, whose claim indexes it from the log)."""
        self._waiting = Waiting()

    async def _flush_every(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kicked.wait(), self.every_s)
            self._kicked.clear()
            try:
                await self.flush(gently=True)
            except Exception:  # until_done waits out the store; anything else deserves a loud line, not a stop
                log.exception("indexing appended batches failed; trying again at the next flush")

    async def close(self) -> None:
        """Index what waits and stop the timer (a clean stop)."""
        await self.flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _merged(first: Waiting, then: Waiting) -> Waiting:
    merged = Waiting()
    for lease, batch_nr, rows in [*first.batches, *then.batches]:
        merged.add(lease, batch_nr, rows)
    return merged
