"""Handles one cart command end to end: load, decide, append, keep, emit, answer.

The agent (`agents/cart_commands.py`) hands every command envelope to `CommandHandler.handle` and sends back what
it returns. The order of the steps is what makes the guarantees hold:

1. Load the member's cart from the `carts` table, or from the journal when the table does not have it.
2. Decide (pure). A command id seen before gets its first answer, and its events are emitted again.
3. Append to the journal, conditional on the expected version. On a conflict (another owner wrote, or the table
   was stale) reload from the journal and decide again. The reply is only sent after the append: acknowledged
   means durable.
4. Snapshot every N events and at checkout.
5. Emit the events to `cart-events`, then keep the new cart, with where its events went, in the table. A crash
   between 3 and 5 is healed by redelivery: the command is then found in the journal (step 2) with no emitted
   positions, and its events are emitted again with the same event ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
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
from app.cart.rules import ItemPurchased, purchase_total
from app.cart.stored_event import StoredEvent
from app.command_side.journal import ConcurrencyConflict, Journal
from app.stores.cassandra import StoreUnavailable
from schemas.records import CommandEnvelope, CommandReply, ReplyStatus, event_dict

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 5


class CartStore(Protocol):
    """Where the owner keeps carts between commands (the `carts` table); a cache of the journal."""

    def get(self, member_id: UUID) -> MemberCart | None: ...

    def put(self, state: MemberCart) -> None: ...


Position = tuple[int, int]  # (partition, offset) of an event on cart-events
Emit = Callable[[Sequence[StoredEvent]], Awaitable[list[Position]]]


def emitted(events: Sequence[StoredEvent], positions: Sequence[Position]) -> list[dict[str, Any]]:
    """The events as replied: as stored, plus where they were emitted (for reading one's own writes)."""
    pairs = zip(events, positions, strict=True)
    return [{**event_dict(e), "position": {"partition": p, "offset": o}} for e, (p, o) in pairs]


Answer = tuple[ReplyStatus, dict[str, Any]]  # a CommandReply's status and body


def accepted(state: MemberCart, events: Sequence[StoredEvent], positions: Sequence[Position]) -> Answer:
    """The cart after the command and its events; for a checkout also what was bought, in total."""
    body: dict[str, Any] = {"cart": cart_view(state), "events": emitted(events, positions)}
    if any(isinstance(e.event, ItemPurchased) for e in events):
        body["purchase_total"] = str(purchase_total(e.event for e in events))
    return ReplyStatus.ACCEPTED, body


def unavailable(error: Exception) -> Answer:
    return ReplyStatus.UNAVAILABLE, {"error": "StoreUnavailable", "reason": str(error)}


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


@dataclass
class CommandHandler:
    journal: Journal
    carts: CartStore
    emit: Emit
    snapshot_every: int = 100
    crash_after_append: str = ""  # fault injection for tests: exit right after appending this command id
    clock: Callable[[], datetime] = now_utc
    retry_delay_s: float = 0.5

    async def handle(self, envelope: CommandEnvelope) -> CommandReply:
        """The reply to one command. StoreUnavailable escapes only where events may already be in the journal
        (answering again, healing an expired command): the caller must retry then, never move on."""
        status, body = await self._answer(envelope)
        return CommandReply(correlation_id=envelope.correlation_id, status=status.value, body=body)

    async def _answer(self, envelope: CommandEnvelope) -> Answer:
        command_id, command_dict, deadline = envelope.command_id, envelope.command, envelope.deadline
        try:
            member_id = UUID(envelope.member_id)
            command = command_from_dict(command_dict)
        except (CodecError, ValueError, TypeError, AttributeError) as error:
            # Only a client that bypassed the API can send this; it changes nothing.
            return (ReplyStatus.INVALID, {"error": "InvalidCommand", "reason": str(error)})
        fingerprint = command_fingerprint(command_dict)
        if time.time() > deadline:
            return await self._expired(member_id, command_id)
        try:
            state = self.carts.get(member_id) or await self.journal.load(member_id)
        except StoreUnavailable as error:  # nothing was attempted: nothing applied
            return unavailable(error)
        for _ in range(MAX_CONFLICT_RETRIES):
            decision = decide_command(
                state,
                command_id,
                command,
                now=self.clock(),
                new_cart_id=uuid.uuid4(),
                new_event_id=uuid.uuid4,
                fingerprint=fingerprint,
            )
            match decision:
                case Unchanged():
                    return (ReplyStatus.UNCHANGED, {"cart": cart_view(state), "events": []})
                case KeyReused(outcome):
                    reason = f"Idempotency-Key {command_id!r} was used for another command"
                    return (ReplyStatus.INVALID, {"error": "IdempotencyKeyReused", "reason": reason})
                case Rejected(rejection):
                    state = state.remember_rejection(command_id, rejection, fingerprint)
                    self.carts.put(state)
                    return (ReplyStatus.REJECTED, {"rejection": rejection, "cart": cart_view(state)})
                case AlreadyHandled(outcome):
                    return await self._answer_again(state, outcome)
                case Accepted(events, expected_version, checkout):
                    try:
                        await self._append(member_id, expected_version, events)
                    except ConcurrencyConflict:
                        try:
                            state = (await self.journal.load(member_id)).keep_rejections_of(state)
                        except StoreUnavailable as error:  # our append was refused: nothing applied
                            return unavailable(error)
                        continue
                    except StoreUnavailable as error:  # _append made sure the batch did not land
                        return unavailable(error)
                    return await self._accepted(state, events, checkout, fingerprint)
        return (ReplyStatus.UNAVAILABLE, {"error": "Contention", "reason": "the cart kept changing; try again"})

    async def _append(self, member_id: UUID, expected_version: int, events: Sequence[StoredEvent]) -> None:
        try:
            await self.journal.append(member_id, expected_version, events)
        except StoreUnavailable:
            # The batch may or may not have landed. Moving on without knowing could leave journal events that
            # are never emitted, so wait until the journal answers and tell which it was.
            if not await self._landed(member_id, events):
                raise
        if self.crash_after_append and events[0].command_id == self.crash_after_append:
            log.warning("fault injection: exiting after the append of %s", self.crash_after_append)
            os._exit(70)

    async def _landed(self, member_id: UUID, events: Sequence[StoredEvent]) -> bool:
        while True:
            try:
                # A serial read completes a Paxos round still in flight, so "not there" is final.
                found = await self.journal.read(member_id, events[0].seq_nr, events[0].seq_nr, serial=True)
            except StoreUnavailable:
                await asyncio.sleep(self.retry_delay_s)
                continue
            if found and found[0].event_id != events[0].event_id:
                raise ConcurrencyConflict("another writer took the position while the journal was unreachable")
            return bool(found)

    async def _accepted(
        self, state: MemberCart, events: Sequence[StoredEvent], checkout: bool, fingerprint: str
    ) -> Answer:
        new_state = state.with_events(events)
        if checkout or new_state.version // self.snapshot_every > state.version // self.snapshot_every:
            try:
                await self.journal.save_snapshot(new_state)
            except StoreUnavailable as error:  # a snapshot is a shortcut; the next one will do
                log.warning("snapshot of %s skipped: %s", state.member_id, error)
        positions = await self.emit(events)
        # Kept after the emit: a cart in the table whose outcome has positions had its events emitted.
        new_state = new_state.remember_emitted(events[0].command_id, positions, fingerprint)
        self.carts.put(new_state)
        return accepted(new_state, events, positions)

    async def _answer_again(self, state: MemberCart, outcome: Outcome) -> Answer:
        if outcome.rejection is not None:
            return (ReplyStatus.REJECTED, {"rejection": dict(outcome.rejection), "cart": cart_view(state)})
        events = await self.journal.read(state.member_id, outcome.first_seq, outcome.last_seq)
        positions = list(outcome.positions)
        if not positions:  # maybe never emitted (a crash between append and emit): emit, same event ids
            positions = await self.emit(events)
            self.carts.put(state.remember_emitted(outcome.command_id, positions))
        return accepted(state, events, positions)

    async def _expired(self, member_id: UUID, command_id: str) -> Answer:
        """Nobody waits for this answer any more; but a redelivered command may already be in the journal (a crash
        between append and emit), so ask the journal, not the table, and emit its events if it is."""
        cached = self.carts.get(member_id)
        state = await self.journal.load(member_id)
        if cached is not None:
            # An up-to-date cached cart also knows which events were emitted; otherwise keep its rejections.
            state = cached if cached.version == state.version else state.keep_rejections_of(cached)
        self.carts.put(state)
        outcome = state.outcome_of(command_id)
        if outcome is not None and outcome.rejection is None:
            return await self._answer_again(state, outcome)
        return (ReplyStatus.EXPIRED, {"error": "Expired", "reason": "the command arrived after its deadline"})
