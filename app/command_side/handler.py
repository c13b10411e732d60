"""Handles a batch of cart commands end to end: own, load, decide, append once, index and emit, answer.

The agent (`agents/cart_commands.py`) hands every batch it takes from `cart-commands` to `CommandHandler.handle`.
The order of the steps is what makes the guarantees hold:

1. Own the batch's partitions: the handler's lease (app/command_side/journal.py) must cover them for the current
   consumer generation; a new assignment is claimed first, which seals every previous owner's lease and indexes
   what it left. A lease lost in this generation (another process claimed one of its partitions: this one is a
   zombie) writes nothing more: its commands are answered 503 and the new owner processes them.
2. Load each member's cart from the owner's cache, or from the journal.
3. Decide every command in order, per member (pure: app/cart/member_cart.py). Different members are independent.
4. Append every accepted command's events with one fenced write. Nothing is answered before it returned:
   acknowledged means durable.
5. Then emit the events to `cart-events` and save the snapshots that remember a rejection, concurrently. Emitting
   never gives up (a store that is down is waited for): the events are in the journal already, and what comes
   next relies on them being emitted.
6. Answer every command of the batch; then save the other snapshots that are due (app/command_side/snapshots.py).

The copy of the events into the member-keyed journal (what loads and the history read) is made behind the answers,
many batches at a time (app/command_side/indexer.py); until then the owner reads them from what waits there.

A crash between 4 and 6 is healed by redelivery: the next owner's claim indexes the batch, the command is found
in the journal (its outcome) with no emitted positions, and its events are emitted again with the same event ids.
A command that cannot be decoded, or whose decision fails, gets an error answer of its own; the rest of the batch
goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

from app.cart.codec import CodecError, cart_to_dict
from app.cart.command_codec import command_from_dict
from app.cart.member_cart import (
    Accepted,
    AlreadyHandled,
    KeyReused,
    MemberCart,
    Outcome,
    Rejected,
    Unchanged,
    decide_command,
)
from app.cart.rules import Command, ItemPurchased, purchase_total
from app.cart.stored_event import StoredEvent
from app.command_side.indexer import INDEX_NOW, Indexer
from app.command_side.journal import Journal, Lease, LeaseLost, MemberAppend, NotOwner
from app.command_side.member_carts import MemberCarts
from app.command_side.snapshots import SnapshotWriter
from app.stores.transient import until_done
from schemas.records import CommandEnvelope, CommandReply, ReplyStatus, event_dict

log = logging.getLogger(__name__)

Position = tuple[int, int]  # (partition, offset) of an event on cart-events
Emit = Callable[[Sequence[StoredEvent]], Awaitable[list[Position]]]
Send = Callable[[CommandEnvelope, CommandReply], Awaitable[None]]
Assignment = Callable[[], tuple[int, frozenset[int]]]  # (consumer generation, partitions of cart-commands owned)
Answer = tuple[ReplyStatus, dict[str, Any]]  # a CommandReply's status and body


def emitted(events: Sequence[StoredEvent], positions: Sequence[Position]) -> list[dict[str, Any]]:
    """The events as replied: as stored, plus where they were emitted (for reading one's own writes)."""
    pairs = zip(events, positions, strict=True)
    return [{**event_dict(e), "position": {"partition": p, "offset": o}} for e, (p, o) in pairs]


def command_fingerprint(command_dict: dict[str, Any]) -> str:
    """Tells two commands apart that share an Idempotency-Key."""
    return hashlib.sha256(json.dumps(command_dict, sort_keys=True).encode()).hexdigest()[:16]


def now_utc() -> datetime:
    # The journal keeps milliseconds; deciding with the same precision makes a re-read event equal the emitted one.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def cart_view(state: MemberCart) -> dict[str, Any]:
    return {
        "member_id": str(state.member_id),
        "version": state.version,
        **cart_to_dict(state.cart),
        "total": str(state.cart.total),
    }


def accepted(state: MemberCart, events: Sequence[StoredEvent], positions: Sequence[Position]) -> Answer:
    """The cart after the command and its events; for a checkout also what was bought, in total."""
    body: dict[str, Any] = {"cart": cart_view(state), "events": emitted(events, positions)}
    if any(isinstance(e.event, ItemPurchased) for e in events):
        body["purchase_total"] = str(purchase_total(e.event for e in events))
    return ReplyStatus.ACCEPTED, body


def unavailable(reason: str) -> Answer:
    return ReplyStatus.UNAVAILABLE, {"error": "ServiceUnavailable", "reason": reason}


@dataclass
class Pending:
    """One command of the batch on its way to an answer."""

    partition: int
    envelope: CommandEnvelope
    answer: Answer | None = None  # known once decided, unless it needs the events' positions
    events: tuple[StoredEvent, ...] = ()  # the events to answer with (written now, or found again)
    state: MemberCart | None = None  # the cart to answer with
    positions: tuple[Position, ...] = ()  # where `events` were emitted already (an answer given before)
    again: Outcome | None = None  # answered again with events of an earlier batch, read from the journal
    index_now: bool = False  # INDEX_NOW: answered once everything appended so far is indexed


@dataclass
class CommandHandler:
    journal: Journal
    emit: Emit
    send: Send
    assignment: Assignment
    owner: str = field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")
    carts: MemberCarts = field(default_factory=MemberCarts)
    snapshot_every: int = 100
    crash_after_append: str = ""  # fault injection for tests: exit right after appending this command id
    clock: Callable[[], datetime] = now_utc
    index_every_s: float = 0.0  # 0: each batch indexed before it is answered; else see app/command_side/indexer.py
    index_max_pending: int = 20_000
    _lease: Lease | None = None
    _generation: int | None = None
    _lost_generation: int | None = None
    _finishing: asyncio.Future[None] | None = None
    _indexer: Indexer = field(init=False)
    _snapshots: SnapshotWriter = field(init=False)

    def __post_init__(self) -> None:
        self._indexer = Indexer(self.journal, self.index_every_s, self.index_max_pending)
        self._snapshots = SnapshotWriter(self.journal)

    async def handle(self, batch: Mapping[int, Sequence[tuple[int, CommandEnvelope | None]]]) -> None:
        """Decide and append every command of the batch (partition -> its messages in order), then leave the rest
        (index, emit, answer) running while the next batch is decided: it returns once the previous batch's rest
        is done, so at most one batch is being finished while another is being decided.

        StoreUnavailable before the append (owning, loading) escapes: nothing was written, and the caller takes
        the batch again. After the append nothing escapes but what would end the process. Returning before this
        batch is finished is safe: a crash before it is finished leaves it unfinished in the journal, and the next
        claim indexes it and emits its events (`Lease.unfinished`)."""
        pending = [Pending(p, envelope) for p, messages in batch.items() for _, envelope in messages if envelope]
        if not pending:
            return
        finish = await self._decide_and_append(pending)
        await self.drain()
        self._finishing = asyncio.ensure_future(self._finish_reliably(finish))

    async def drain(self) -> None:
        """Wait until the batch being finished is finished."""
        if self._finishing is not None:
            await asyncio.shield(self._finishing)
            self._finishing = None

    async def settle(self) -> None:
        """Finish the batch being finished, index everything appended and record the lease's done mark: before a
        claim (which would otherwise index and emit again what this lease did not mark done) and on a clean stop."""
        await self.drain()
        await self._indexer.flush()
        await self._snapshots.flush()
        lease = self._lease
        if lease is not None:
            await until_done("recording the lease's done mark", partial(self.journal.mark_done, lease))

    async def _finish_reliably(self, finish: Awaitable[None]) -> None:
        try:
            await finish
        except Exception:  # the batch is in the journal: a restart (and the next claim) finishes it
            log.exception("finishing a batch failed; exiting so that the next owner finishes it")
            logging.shutdown()
            os._exit(1)

    async def _decide_and_append(self, pending: list[Pending]) -> Awaitable[None]:
        lease = await self._own({p.partition for p in pending})
        if lease is None:
            for p in pending:
                p.answer = unavailable("this worker no longer owns the cart's partition; try again")
            return self._answer_all(pending)
        by_member = self._by_member(pending)
        states = await self._load(by_member)
        appends, snapshots = self._decide(by_member, states)
        batch_nr = -1
        if appends:
            try:
                batch_nr = await self.journal.append_batch(lease, appends)
            except NotOwner as error:  # commands on a partition Kafka's partitioner would not give them: misconfigured
                log.error("%s; is CART_PARTITIONS the partition count of %s?", error, "cart-commands")
                for p in pending:
                    p.answer = unavailable("this worker cannot write for this cart (misconfigured partitions)")
                return self._answer_all(pending)
            except LeaseLost as error:
                log.warning("%s; answering this batch 503, a new owner will process it", error)
                self._lose(lease)
                for p in pending:
                    if p.answer is None or p.answer[0] is not ReplyStatus.INVALID:
                        p.answer = unavailable("the cart's partition moved to another worker; try again")
                return self._answer_all(pending)
            self._crash_if_asked(appends)
            self._indexer.add(lease, batch_nr, appends)
        # The events are in the journal: the cache follows, and nothing after gives up.
        for member_id, state in states.items():
            self.carts.put(by_member[member_id][0][0].partition, state)
        return self._finish(lease, batch_nr, appends, snapshots, pending, states)

    async def _finish(
        self,
        lease: Lease,
        batch_nr: int,
        appends: Sequence[MemberAppend],
        snapshots: Mapping[UUID, bool],
        pending: Sequence[Pending],
        states: Mapping[UUID, MemberCart],
    ) -> None:
        await self._after_append(appends, [m for m, now in snapshots.items() if now], pending, states)
        await self._indexer.emitted(lease, batch_nr)
        asked = [p for p in pending if p.index_now]
        if asked:
            await self._indexer.flush()
            for p in asked:
                p.answer = ReplyStatus.UNCHANGED, {"indexed": True}
        await self._answer_all(pending)
        for member_id, now in snapshots.items():
            if not now:
                self._snapshots.later(states[member_id])

    # --- 1. owning the partitions ----------------------------------------------------------------------------

    async def _own(self, partitions: set[int]) -> Lease | None:
        generation, assigned = self.assignment()
        if self._lost_generation == generation:
            return None
        lease = self._lease
        if lease is None or self._generation != generation or not partitions <= lease.partitions:
            await self.settle()  # its events go out and are indexed before the claim would count them unfinished
            claimed = frozenset(assigned) | partitions
            new = await self.journal.claim(claimed, self.owner)
            if new.unfinished:
                # Appended under a sealed lease and maybe never emitted (a crash before its batch was finished):
                # emitted now, with the same event ids; duplicates on cart-events are dropped downstream.
                log.info("emitting %d events a previous owner may not have emitted", len(new.unfinished))
                await until_done("emitting a previous owner's unfinished events", partial(self.emit, new.unfinished))
                new.unfinished = []
            # A partition's carts stay only if it was owned through this process's previous lease: then nobody
            # else can have written for its members.
            kept = new.kept_from(lease.id) if lease is not None else frozenset()
            self.carts.keep_only(kept)
            log.info("claimed partitions %s (lease %s, carts kept for %s)", sorted(claimed), new.id, sorted(kept))
            self._lease, self._generation, self._lost_generation = new, generation, None
            lease = new
        return lease

    def _lose(self, lease: Lease) -> None:
        self.carts.drop(lease.partitions)
        self._indexer.discard()  # in the sealed lease's log: the new owner's claim indexes it
        self._lease, self._lost_generation = None, self._generation

    # --- 2. loading -------------------------------------------------------------------------------------------

    def _by_member(self, pending: Sequence[Pending]) -> dict[UUID, list[tuple[Pending, Command]]]:
        by_member: dict[UUID, list[tuple[Pending, Command]]] = {}
        now = time.time()
        for p in pending:
            if now > p.envelope.deadline:
                # Nobody waits for this answer any more, so it is not applied. If it was applied before (the same
                # command delivered again after a crash), its events are in the journal and the claim that followed
                # the crash emitted them; a client that retries with the same key gets the first answer.
                p.answer = ReplyStatus.EXPIRED, {"error": "Expired", "reason": "the command arrived after its deadline"}
                continue
            if p.envelope.command.get("type") == INDEX_NOW:
                p.index_now = True
                continue
            try:
                member_id = UUID(p.envelope.member_id)
                command = command_from_dict(p.envelope.command)
            except (CodecError, ValueError, TypeError, AttributeError) as error:
                # Only a client that bypassed the API can send this; it changes nothing.
                p.answer = ReplyStatus.INVALID, {"error": "InvalidCommand", "reason": str(error)}
                continue
            by_member.setdefault(member_id, []).append((p, command))
        return by_member

    async def _load(self, by_member: Mapping[UUID, Any]) -> dict[UUID, MemberCart]:
        states = {m: s for m in by_member if (s := self.carts.get(m)) is not None}
        missing = [m for m in by_member if m not in states]
        if missing:
            waiting = {m: self._indexer.pending(m) for m in missing}  # before the read: see Indexer.pending
            for m, state in (await self.journal.load_many(missing)).items():
                states[m] = state.with_events([e for e in waiting[m] if e.seq_nr > state.version])
        return states

    # --- 3. deciding ------------------------------------------------------------------------------------------

    def _decide(
        self, by_member: Mapping[UUID, list[tuple[Pending, Command]]], states: dict[UUID, MemberCart]
    ) -> tuple[list[MemberAppend], dict[UUID, bool]]:
        """The appends, and the members whose carts to snapshot (True: before the answers, see `SnapshotWriter`)."""
        appends: list[MemberAppend] = []
        snapshots: dict[UUID, bool] = {}
        for member_id, commands in by_member.items():
            state = states[member_id]
            written: dict[str, tuple[StoredEvent, ...]] = {}  # this batch's events, by command id
            for p, command in commands:
                try:
                    state = self._decide_one(p, command, state, appends, snapshots, written)
                except Exception as error:  # a poison command: its own error answer, the rest goes on
                    log.exception("command %s of member %s could not be decided", p.envelope.command_id, member_id)
                    p.answer = ReplyStatus.INVALID, {"error": "InvalidCommand", "reason": f"not processed: {error}"}
            states[member_id] = state
        return appends, snapshots

    def _decide_one(
        self,
        p: Pending,
        command: Command,
        state: MemberCart,
        appends: list[MemberAppend],
        snapshots: dict[UUID, bool],
        written: dict[str, tuple[StoredEvent, ...]],
    ) -> MemberCart:
        envelope = p.envelope
        fingerprint = command_fingerprint(envelope.command)
        decision = decide_command(
            state,
            envelope.command_id,
            command,
            now=self.clock(),
            new_cart_id=uuid.uuid4(),
            new_event_id=uuid.uuid4,
            fingerprint=fingerprint,
        )
        match decision:
            case Unchanged():
                p.state = state
                p.answer = ReplyStatus.UNCHANGED, {"cart": cart_view(state), "events": []}
            case KeyReused():
                reason = f"Idempotency-Key {envelope.command_id!r} was used for another command"
                p.answer = ReplyStatus.INVALID, {"error": "IdempotencyKeyReused", "reason": reason}
            case Rejected(rejection):
                state = state.remember_rejection(envelope.command_id, rejection, fingerprint)
                snapshots[state.member_id] = True  # the journal keeps no trace of a rejection: the snapshot does
                p.answer = ReplyStatus.REJECTED, {"rejection": rejection, "cart": cart_view(state)}
            case AlreadyHandled(outcome):
                self._answer_again(p, state, outcome, written)
            case Accepted(events, expected_version):
                appends.append(MemberAppend(state.member_id, expected_version, events))
                # The fingerprint is kept with the outcome at once: the same key again, even in this batch, is checked.
                new_state = state.with_events(events).remember_emitted(envelope.command_id, (), fingerprint)
                # Every `snapshot_every` events, not at a checkout: without a snapshot (a cart's remembered outcomes,
                # about 4 KB) at every checkout, Cassandra used 30% less CPU per command at saturation, and a load
                # replays at most `snapshot_every` events anyway (docs/benchmarks.md, 2026-12-07, afternoon).
                if new_state.version // self.snapshot_every > state.version // self.snapshot_every:
                    snapshots.setdefault(state.member_id, False)  # a shortcut for loads: after the answers
                state = new_state
                written[envelope.command_id] = events
                p.state, p.events = state, events
        return state

    def _answer_again(
        self, p: Pending, state: MemberCart, outcome: Outcome, written: Mapping[str, tuple[StoredEvent, ...]]
    ) -> None:
        if outcome.rejection is not None:
            p.answer = ReplyStatus.REJECTED, {"rejection": dict(outcome.rejection), "cart": cart_view(state)}
            return
        # The events: from this batch, or read from the journal after the append (see _after_append).
        p.state, p.events, p.positions = state, written.get(outcome.command_id, ()), tuple(outcome.positions)
        if not p.events:
            p.again = outcome

    # --- 5. after the append ----------------------------------------------------------------------------------

    async def _after_append(
        self,
        appends: Sequence[MemberAppend],
        snapshots: Iterable[UUID],
        pending: Sequence[Pending],
        states: Mapping[UUID, MemberCart],
    ) -> None:
        again = [p for p in pending if p.again is not None]
        for p in again:
            p.events = tuple(await until_done("reading a command's events again", partial(self._events_of, p)))
        fresh = [e for a in appends for e in a.events]
        # Events answered again whose emission is not known to have happened (a crash between append and emit)
        # are emitted again, with the same event ids.
        unsent = [p for p in again if not p.positions]
        to_emit = fresh + [e for p in unsent for e in p.events]

        async def emit() -> list[Position]:
            return await until_done("emitting events", lambda: self.emit(to_emit)) if to_emit else []

        emitting = asyncio.ensure_future(emit())
        await asyncio.gather(*(self._snapshots.now(states[m]) for m in snapshots))
        positions = await emitting
        where = dict(zip((e.event_id for e in to_emit), positions, strict=True))
        for p in pending:
            if p.answer is None and p.state is not None:
                p.positions = p.positions or tuple(where[e.event_id] for e in p.events)
                p.answer = accepted(p.state, p.events, p.positions)
        # Remember where each command's events went, so a retry is answered without emitting again.
        for p in pending:
            if p.events and p.positions and p.state is not None:
                state = states[p.state.member_id]
                self.carts.remember_emitted(p.partition, state, p.envelope.command_id, p.positions)

    async def _events_of(self, p: Pending) -> list[StoredEvent]:
        assert p.again is not None
        member_id, first, last = UUID(p.envelope.member_id), p.again.first_seq, p.again.last_seq
        waiting = [e for e in self._indexer.pending(member_id) if first <= e.seq_nr <= last]  # before the read
        read = {e.seq_nr: e for e in await self.journal.read(member_id, first, last)}
        return sorted({**read, **{e.seq_nr: e for e in waiting}}.values(), key=lambda e: e.seq_nr)

    # --- 6. answering -----------------------------------------------------------------------------------------

    async def _answer_all(self, pending: Sequence[Pending]) -> None:
        for p in pending:
            status, body = p.answer or unavailable("no answer was made")
            await self.send(
                p.envelope, CommandReply(correlation_id=p.envelope.correlation_id, status=status, body=body)
            )

    def _crash_if_asked(self, appends: Sequence[MemberAppend]) -> None:
        if self.crash_after_append and any(a.events[0].command_id == self.crash_after_append for a in appends):
            log.warning("fault injection: exiting after the append of %s", self.crash_after_append)
            os._exit(70)
