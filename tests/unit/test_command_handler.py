"""The command handler's decisions around the stores: retries, conflicts, lost answers, unreachable stores.

The journal here is the in-memory one (tests/memory_journal.py), which runs the same contract tests as the Cassandra
journal; these tests are about the handler, not the store."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from app.cart.command_codec import command_to_dict
from app.cart.member_cart import MemberCart
from app.cart.rules import AddItem, Item, RemoveItem
from app.cart.stored_event import StoredEvent
from app.command_side.handler import CommandHandler
from app.stores.cassandra import StoreUnavailable
from schemas.records import CommandEnvelope, ReplyStatus
from tests.memory_journal import MemoryJournal


class MemoryCarts:
    def __init__(self) -> None:
        self.carts: dict[UUID, MemberCart] = {}

    def get(self, member_id: UUID) -> MemberCart | None:
        return self.carts.get(member_id)

    def put(self, state: MemberCart) -> None:
        self.carts[state.member_id] = state


class Emitted:
    def __init__(self) -> None:
        self.events: list[StoredEvent] = []

    async def __call__(self, events: Sequence[StoredEvent]) -> list[tuple[int, int]]:
        self.events.extend(events)
        return [(0, len(self.events) - len(events) + i) for i in range(len(events))]


@pytest.fixture()
def parts() -> tuple[MemoryJournal, MemoryCarts, Emitted, CommandHandler]:
    journal, carts, emitted = MemoryJournal(), MemoryCarts(), Emitted()
    return journal, carts, emitted, CommandHandler(journal, carts, emitted)


MEMBER = uuid.uuid4()


def envelope(member_id: UUID, key: str, command: dict[str, Any], deadline: float) -> CommandEnvelope:
    return CommandEnvelope(
        command_id=key,
        member_id=str(member_id),
        command=command,
        correlation_id=key,
        reply_partition=0,
        deadline=deadline,
    )


def later() -> float:
    """A deadline that has not passed (computed per call: the suite may run long after collection)."""
    return time.time() + 60


def add(name: str = "orange") -> dict[str, Any]:
    item = Item(
        uuid.uuid5(uuid.NAMESPACE_DNS, name), uuid.uuid5(uuid.NAMESPACE_DNS, "vendor"), name, Decimal("1.50"), 2
    )
    return command_to_dict(AddItem(item))


def remove(name: str = "orange") -> dict[str, Any]:
    return command_to_dict(RemoveItem(uuid.uuid5(uuid.NAMESPACE_DNS, name)))


async def test_a_retry_gets_the_first_reply_without_writing_or_emitting_again(parts: Any) -> None:
    journal, _, emitted, handler = parts
    first = await handler.handle(envelope(MEMBER, "k1", add(), later()))
    again = await handler.handle(envelope(MEMBER, "k1", add(), later()))
    assert first.status == again.status == ReplyStatus.ACCEPTED
    assert again.body["events"] == first.body["events"]
    assert len(journal.events[MEMBER]) == 1 and len(emitted.events) == 1


async def test_a_remembered_rejection_survives_a_reload_after_a_conflict(parts: Any) -> None:
    journal, _, _, handler = parts
    member = uuid.uuid4()
    assert (await handler.handle(envelope(member, "bad", remove(), later()))).status == ReplyStatus.REJECTED
    # Another owner appends behind this one's back: the cached cart is now stale.
    other = CommandHandler(journal, MemoryCarts(), Emitted())
    assert (await other.handle(envelope(member, "other", add(), later()))).status == ReplyStatus.ACCEPTED
    assert (
        await handler.handle(envelope(member, "next", add("apple"), later()))
    ).status == ReplyStatus.ACCEPTED  # conflict, reload
    retry = await handler.handle(envelope(member, "bad", remove(), later()))
    assert retry.status == ReplyStatus.REJECTED  # not accepted now that orange is in the cart
    assert retry.body["rejection"]["error"] == "ItemNotInCart"


async def test_a_key_used_for_another_command_is_refused(parts: Any) -> None:
    _, _, _, handler = parts
    member = uuid.uuid4()
    assert (await handler.handle(envelope(member, "k", add(), later()))).status == ReplyStatus.ACCEPTED
    reused = await handler.handle(envelope(member, "k", remove("apple"), later()))
    assert reused.status == ReplyStatus.INVALID
    assert reused.body["error"] == "IdempotencyKeyReused"


async def test_a_command_found_in_the_journal_after_its_deadline_is_emitted_with_the_same_event_ids(
    parts: Any,
) -> None:
    journal, _, emitted, _ = parts
    member = uuid.uuid4()
    # Appended by an owner that died before emitting: in the journal, on no topic, and in no table.
    written = CommandHandler(journal, MemoryCarts(), Emitted())
    await written.handle(envelope(member, "k", add(), later()))
    fresh = CommandHandler(journal, MemoryCarts(), emitted)
    reply = await fresh.handle(envelope(member, "k", add(), time.time() - 1))  # redelivered after its deadline
    assert reply.status == ReplyStatus.ACCEPTED
    assert [e.event_id for e in emitted.events] == [e.event_id for e in journal.events[member].values()]


async def test_an_unreachable_journal_before_anything_is_written_is_a_clean_unavailable(parts: Any) -> None:
    journal, _, _, handler = parts
    journal.down = True
    reply = await handler.handle(envelope(uuid.uuid4(), "k", add(), later()))
    assert reply.status == ReplyStatus.UNAVAILABLE


async def test_an_unreachable_journal_while_answering_again_is_not_swallowed(parts: Any) -> None:
    journal, carts, _, handler = parts
    member = uuid.uuid4()
    await handler.handle(envelope(member, "k", add(), later()))
    carts.carts[member] = MemberCart(member).with_events(
        list(journal.events[member].values())
    )  # outcome without emitted positions
    journal.down = True
    with pytest.raises(StoreUnavailable):  # the agent retries the message; it must not be acknowledged
        await handler.handle(envelope(member, "k", add(), later()))
