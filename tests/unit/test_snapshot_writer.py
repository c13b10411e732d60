"""Snapshots behind the answers (app/command_side/snapshots.py): the newest state given for a member is the one
that stays, whatever order the writes are made in, and a failed snapshot is skipped, not fatal.

The store here records each write as it is sent (which is when Cassandra's driver stamps it: the last one sent
wins) and can hold every write until it is let go."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from uuid import UUID, uuid4

from app.cart.member_cart import MemberCart
from app.command_side.snapshots import SnapshotWriter


class Store:
    def __init__(self) -> None:
        self.sent: list[tuple[UUID, int]] = []
        self.go = asyncio.Event()
        self.go.set()
        self.failing: set[UUID] = set()

    async def save_snapshot(self, state: MemberCart) -> None:
        self.sent.append((state.member_id, state.version))
        if state.member_id in self.failing:
            raise ConnectionError("Cassandra is away")
        await self.go.wait()

    def kept(self, member_id: UUID) -> int:
        """The version the store keeps for the member: its last write sent."""
        return [version for m, version in self.sent if m == member_id][-1]


async def until(condition: Callable[[], bool]) -> None:
    """Let the writer's tasks run until the condition holds (a few loop turns)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the writer did not get there")


def cart(member_id: UUID, version: int) -> MemberCart:
    return MemberCart(member_id, version=version)


async def test_a_later_snapshot_does_not_wait_and_is_saved_soon() -> None:
    store, member = Store(), uuid4()
    writer = SnapshotWriter(store)

    writer.later(cart(member, 3))
    assert store.sent == []  # not even sent yet: the caller goes on at once

    await writer.flush()
    assert store.sent == [(member, 3)]


async def test_of_a_member_s_states_waiting_only_the_newest_is_written() -> None:
    store, member, other = Store(), uuid4(), uuid4()
    writer = SnapshotWriter(store)

    for version in (1, 2, 3):
        writer.later(cart(member, version))
    writer.later(cart(other, 7))
    await writer.flush()

    assert sorted(store.sent) == sorted([(member, 3), (other, 7)])


async def test_a_snapshot_saved_now_is_not_overwritten_by_an_older_one_still_waiting() -> None:
    """A rejection's snapshot (saved before its answer) after a checkout's (waiting): the older one must not be
    sent after it, or the rejection a retry relies on would be lost."""
    store, member = Store(), uuid4()
    writer = SnapshotWriter(store)
    busy = [uuid4() for _ in range(writer.in_flight)]
    store.go.clear()
    for m in busy:  # every write slot taken: the member's state, taken with them, waits in line behind them
        writer.later(cart(m, 1))
    writer.later(cart(member, 5))
    await until(lambda: len(store.sent) == len(busy))

    saving = asyncio.ensure_future(writer.now(cart(member, 6)))
    await asyncio.sleep(0)
    store.go.set()
    await saving
    await writer.flush()

    assert [v for m, v in store.sent if m == member] == [6] and store.kept(member) == 6


async def test_an_older_snapshot_already_sent_is_sent_before_the_newer_one() -> None:
    store, member = Store(), uuid4()
    writer = SnapshotWriter(store)
    store.go.clear()
    writer.later(cart(member, 5))
    await until(lambda: store.sent == [(member, 5)])  # sent, not answered yet

    saving = asyncio.ensure_future(writer.now(cart(member, 6)))
    await asyncio.sleep(0)
    store.go.set()
    await saving
    await writer.flush()

    assert store.sent == [(member, 5), (member, 6)] and store.kept(member) == 6


async def test_a_snapshot_that_fails_is_skipped_and_the_others_are_saved() -> None:
    store, failing, member = Store(), uuid4(), uuid4()
    store.failing.add(failing)
    writer = SnapshotWriter(store)

    writer.later(cart(failing, 1))
    writer.later(cart(member, 2))
    await writer.flush()
    await writer.now(cart(failing, 3))  # logged, not raised

    assert (member, 2) in store.sent and (failing, 3) in store.sent
