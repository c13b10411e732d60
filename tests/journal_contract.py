"""The journal's contract: the behaviour every journal backend must have (app/command_side/journal.py says it):
appends under a lease, one writer per partition, indexing, reads, loads, snapshots.

A backend's test class subclasses `JournalContract` and provides a `journal` fixture and `forget_events_through`
(remove old events, to prove `load` uses the snapshot): `tests/integration/test_journal.py` against Cassandra,
`tests/unit/test_memory_journal.py` against the in-memory journal the unit tests use. Every test uses fresh random
member ids, so nothing is torn down.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import count
from typing import Any
from uuid import UUID, uuid4

import pytest

from app.cart.member_cart import Accepted, MemberCart, decide_command
from app.cart.rules import (
    AddItem,
    AdjustQuantity,
    Checkout,
    Command,
    Item,
    ItemAdded,
    ItemPurchased,
    RemoveItem,
    replay,
)
from app.cart.stored_event import StoredEvent
from app.command_side.journal import LeaseLost, MemberAppend

T0 = datetime(2024, 5, 17, 12, 30, 15, 123000, tzinfo=UTC)
"""A start time at millisecond precision, the precision the journal keeps."""

VENDOR_ID = UUID("9a3d5c7e-2b4f-4e6a-8c1d-7f9e0a2b4c22")


def an_item(name: str, price: str = "19.99", quantity: int = 1) -> Item:
    return Item(uuid4(), VENDOR_ID, name, Decimal(price), quantity)


def batch(member_id: UUID, first_seq: int, size: int, command_id: str | None = None) -> list[StoredEvent]:
    """`size` events of one command (each adds a different product), at `first_seq`, `first_seq + 1`, ..."""
    command_id = command_id or f"cmd-{uuid4()}"
    cart_id = UUID(int=member_id.int ^ 1)
    return [
        StoredEvent(
            event_id=uuid4(),
            member_id=member_id,
            cart_id=cart_id,
            seq_nr=seq_nr,
            command_id=command_id,
            occurred_at=T0 + timedelta(seconds=first_seq),
            event=ItemAdded(cart_id, an_item(f"product {seq_nr}", price=f"{seq_nr}.{seq_nr:03d}")),
        )
        for seq_nr in range(first_seq, first_seq + size)
    ]


def a_partition() -> int:
    """A partition number no worker and no other test uses."""
    return random.randrange(100_000, 2**31 - 1)


async def test_lease(journal: Any) -> Any:
    """One lease per journal object, on a partition of its own, for tests that only append."""
    if getattr(journal, "test_lease", None) is None:
        journal.test_lease = await journal.claim([a_partition()], "test")
    return journal.test_lease


async def append(
    journal: Any, member_id: UUID, expected_version: int, events: Sequence[StoredEvent], lease: Any = None
) -> None:
    """Append one command's events and index them, as the owner does."""
    lease = lease or await test_lease(journal)
    appends = [MemberAppend(member_id, expected_version, tuple(events))]
    batch_nr = await journal.append_batch(lease, appends)
    await journal.index(lease, appends)
    lease.done(batch_nr)  # ...and emitted


async def append_batches(journal: Any, member_id: UUID, sizes: Sequence[int]) -> list[StoredEvent]:
    """Append one batch per size, each right after the previous one; return every event written, in order."""
    written: list[StoredEvent] = []
    for size in sizes:
        events = batch(member_id, len(written) + 1, size)
        await append(journal, member_id, len(written), events)
        written.extend(events)
    return written


class Writer:
    """Decides commands the way the cart agent does and appends their events, keeping the state it expects."""

    def __init__(self, journal: Any, member_id: UUID | None = None) -> None:
        self.journal = journal
        self.member_id = member_id or uuid4()
        self.state = MemberCart(self.member_id)
        self.written: list[StoredEvent] = []
        self._ticks = count()

    async def run(self, command: Command, command_id: str | None = None) -> tuple[StoredEvent, ...]:
        now = T0 + timedelta(seconds=next(self._ticks), milliseconds=7)
        decision = decide_command(
            self.state, command_id or f"cmd-{uuid4()}", command, now=now, new_cart_id=uuid4(), new_event_id=uuid4
        )
        assert isinstance(decision, Accepted), decision
        await append(self.journal, self.member_id, decision.expected_version, decision.events)
        self.state = self.state.with_events(decision.events)
        self.written.extend(decision.events)
        return decision.events

    async def shop(self) -> None:
        """A realistic history: every event type, a checkout of two items, then a new cart."""
        teapot, cups, kettle = an_item("Teapot", "19.99", 2), an_item("Cups", "1234567890.123456789"), an_item("Kettle")
        await self.run(AddItem(teapot))
        await self.run(AddItem(cups))
        await self.run(AdjustQuantity(teapot.product_id, 3))
        await self.run(AdjustQuantity(teapot.product_id, -1))
        await self.run(AddItem(kettle))
        await self.run(RemoveItem(kettle.product_id))
        await self.run(Checkout())
        await self.run(AddItem(an_item("Mug", "0.10", 4)))


class JournalContract:
    """What every journal must do. Subclasses provide the `journal` fixture and `forget_events_through`."""

    async def forget_events_through(self, journal: Any, member_id: UUID, seq_nr: int) -> None:
        """Delete the member's events up to and including `seq_nr` behind the journal's back."""
        raise NotImplementedError

    # --- append and read ----------------------------------------------------------------------------------

    async def test_appended_events_are_read_back_exactly(self, journal: Any) -> None:
        writer = Writer(journal)
        await writer.shop()

        read = await journal.read(writer.member_id)

        assert read == writer.written
        assert [e.seq_nr for e in read] == list(range(1, 10))
        assert [e.event_id for e in read] == [e.event_id for e in writer.written]
        assert [e.type for e in read] == [
            "ItemAdded", "ItemAdded", "ItemQuantityIncreased", "ItemQuantityDecreased", "ItemAdded", "ItemRemoved",
            "ItemPurchased", "ItemPurchased", "ItemAdded",
        ]  # fmt: skip
        prices = [e.event.item.price for e in read if isinstance(e.event, ItemAdded | ItemPurchased)]
        assert str(prices[1]) == "1234567890.123456789"
        assert all(isinstance(p, Decimal) for p in prices)

    async def test_a_checkout_is_read_back_as_one_command_with_the_same_purchase_time(self, journal: Any) -> None:
        writer = Writer(journal)
        await writer.run(AddItem(an_item("Teapot")))
        await writer.run(AddItem(an_item("Cups", "2.50", 6)))
        checkout = await writer.run(Checkout(), command_id="checkout-1")

        read = await journal.read(writer.member_id, from_seq=3)

        assert read == list(checkout)
        assert {e.command_id for e in read} == {"checkout-1"}
        assert {e.event.purchased_at for e in read if isinstance(e.event, ItemPurchased)} == {read[0].occurred_at}

    async def test_times_are_kept_in_utc_to_the_millisecond(self, journal: Any) -> None:
        member_id = uuid4()
        in_paris = datetime(2024, 5, 17, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
        purchased_at = datetime(2024, 5, 17, 12, 30, 15, 123456, tzinfo=UTC)
        cart_id = uuid4()
        event = StoredEvent(
            uuid4(), member_id, cart_id, 1, "c1", in_paris, ItemPurchased(cart_id, an_item("Teapot"), purchased_at)
        )
        await append(journal, member_id, 0, [event])

        [read] = await journal.read(member_id)

        assert read.occurred_at == datetime(2024, 5, 17, 12, 30, 15, 123000, tzinfo=UTC)
        assert read.occurred_at.utcoffset() == timedelta(0)
        assert isinstance(read.event, ItemPurchased)
        assert read.event.purchased_at == purchased_at  # a time inside the payload is not truncated

    async def test_a_serial_read_sees_what_a_plain_read_sees(self, journal: Any) -> None:
        """The read that settles whether an append landed (after a time-out) is at LOCAL_SERIAL."""
        writer = Writer(journal)
        await writer.shop()

        assert await journal.read(writer.member_id, 3, 5, serial=True) == writer.written[2:5]
        assert await journal.read(writer.member_id, 10, 10, serial=True) == []
        assert await journal.read(uuid4(), serial=True) == []

    async def test_a_member_without_events_reads_nothing_and_loads_an_empty_cart(self, journal: Any) -> None:
        member_id = uuid4()

        assert await journal.read(member_id) == []
        assert await journal.load(member_id) == MemberCart(member_id)

    async def test_appending_no_events_writes_nothing(self, journal: Any) -> None:
        member_id = uuid4()

        await append(journal, member_id, 0, [])

        assert await journal.read(member_id) == []

    async def test_events_that_do_not_continue_the_expected_version_are_refused_before_anything_is_written(
        self, journal: Any
    ) -> None:
        member_id = uuid4()

        with pytest.raises(ValueError, match="right after the expected version"):
            await append(journal, member_id, 0, batch(member_id, 2, 2))
        with pytest.raises(ValueError, match="right after the expected version"):
            await append(journal, member_id, 0, [*batch(member_id, 1, 1), *batch(member_id, 3, 1)])

        assert await journal.read(member_id) == []

    async def test_events_of_another_member_are_refused_before_anything_is_written(self, journal: Any) -> None:
        member_id, other = uuid4(), uuid4()
        lease = await test_lease(journal)
        with pytest.raises(ValueError, match="the member's"):
            await journal.append_batch(lease, [MemberAppend(member_id, 0, tuple(batch(other, 1, 1)))])
        assert await journal.read(member_id) == [] and await journal.read(other) == []

    # --- the lease: one writer per partition --------------------------------------------------------------

    async def test_many_members_are_appended_in_one_batch_all_or_none(self, journal: Any) -> None:
        members = [uuid4() for _ in range(5)]
        lease = await journal.claim([a_partition()], "owner")
        appends = [MemberAppend(m, 0, tuple(batch(m, 1, n % 3 + 1))) for n, m in enumerate(members)]

        await journal.append_batch(lease, appends)
        await journal.index(lease, appends)

        for append_ in appends:
            assert await journal.read(append_.member_id) == list(append_.events)

    async def test_a_lease_whose_partition_was_claimed_again_writes_nothing_and_finds_out(self, journal: Any) -> None:
        partition, member_id = a_partition(), uuid4()
        stale = await journal.claim([partition], "first owner")
        history = batch(member_id, 1, 2)
        await append(journal, member_id, 0, history, lease=stale)

        fresh = await journal.claim([partition], "second owner")  # a rebalance: the first owner may not know yet
        for size in (1, 3):
            with pytest.raises(LeaseLost):
                await journal.append_batch(stale, [MemberAppend(member_id, 2, tuple(batch(member_id, 3, size)))])
        await journal.claim([a_partition()], "anyone")  # any later claim would index what the stale one wrote

        assert await journal.read(member_id) == history
        mine = batch(member_id, 3, 1)
        await append(journal, member_id, 2, mine, lease=fresh)
        assert await journal.read(member_id) == history + mine

    async def test_a_lease_sealed_through_one_partition_can_write_for_none_of_them(self, journal: Any) -> None:
        first, second, member_id = a_partition(), a_partition(), uuid4()
        lease = await journal.claim([first, second], "owner")
        await journal.claim([second], "new owner of one partition")

        with pytest.raises(LeaseLost):
            await journal.append_batch(lease, [MemberAppend(member_id, 0, tuple(batch(member_id, 1, 1)))])
        assert await journal.read(member_id) == []

    async def test_of_two_processes_claiming_one_partition_at_once_exactly_one_can_write(self, journal: Any) -> None:
        partition = a_partition()
        leases = await asyncio.gather(journal.claim([partition], "a"), journal.claim([partition], "b"))

        results = []
        for lease in leases:
            member_id = uuid4()
            try:
                await append(journal, member_id, 0, batch(member_id, 1, 1), lease=lease)
                results.append("wrote")
            except LeaseLost:
                results.append("lost")
        assert sorted(results) == ["lost", "wrote"], results

    async def test_a_claim_indexes_what_the_previous_owner_appended_but_did_not_finish(self, journal: Any) -> None:
        """A crash between the append and the copy to the member-keyed journal (or the emission) loses nothing."""
        partition, member_id = a_partition(), uuid4()
        dead = await journal.claim([partition], "owner that dies")
        indexed, unindexed = batch(member_id, 1, 1), batch(member_id, 2, 2)
        await append(journal, member_id, 0, indexed, lease=dead)
        await journal.append_batch(dead, [MemberAppend(member_id, 1, tuple(unindexed))])  # ...and it dies here
        assert await journal.read(member_id) == indexed

        successor = await journal.claim([partition], "next owner")

        assert await journal.read(member_id) == indexed + unindexed
        assert successor.unfinished == unindexed  # for the successor to emit: they may never have been

    async def test_a_done_mark_recorded_without_an_append_spares_the_next_claim_what_was_done(
        self, journal: Any
    ) -> None:
        """An owner that indexes behind its answers records its done mark when it stops (or before it claims again),
        not only with its next append: the next owner then neither indexes nor emits those batches again."""
        partition, member_id = a_partition(), uuid4()
        stopping = await journal.claim([partition], "owner that stops cleanly")
        first, second = batch(member_id, 1, 1), batch(member_id, 2, 2)
        for expected, events in ((0, first), (1, second)):
            appends = [MemberAppend(member_id, expected, tuple(events))]
            await journal.append_batch(stopping, appends)
            await journal.index(stopping, appends)
        stopping.done(1)  # both indexed and emitted, and no append after the second to record it
        await journal.mark_done(stopping)

        successor = await journal.claim([partition], "next owner")

        assert successor.unfinished == []
        assert await journal.read(member_id) == first + second

    async def test_a_new_member_whose_first_batch_was_not_finished_is_listed_by_the_next_claim(
        self, journal: Any
    ) -> None:
        """The member is listed with its first event's row, so a crash before the copy still lists it in the end."""
        partition, member_id = a_partition(), uuid4()
        dead = await journal.claim([partition], "owner that dies")
        await journal.append_batch(dead, [MemberAppend(member_id, 0, tuple(batch(member_id, 1, 2)))])  # ...dies

        await journal.claim([partition], "next owner")

        assert (await journal.members()).count(member_id) == 1

    async def test_a_lease_cannot_write_for_a_member_of_a_partition_it_does_not_own(self, journal: Any) -> None:
        """A process that writes for a member it does not own is refused, whatever lease it holds."""
        from app.command_side.journal import NotOwner
        from app.streams.partitioning import partition_of

        partitions = 4
        members = [uuid4() for _ in range(8)]
        mine = partition_of(str(members[0]), partitions)
        others = [m for m in members if partition_of(str(m), partitions) != mine]
        journal.partitions = partitions
        try:
            lease = await journal.claim([mine], "owner of one partition")
            await append(journal, members[0], 0, batch(members[0], 1, 1), lease=lease)
            with pytest.raises(NotOwner):
                await journal.append_batch(lease, [MemberAppend(others[0], 0, tuple(batch(others[0], 1, 1)))])
            assert await journal.read(others[0]) == []
        finally:
            journal.partitions = None

    async def test_a_claim_says_which_partitions_come_from_a_given_previous_lease(self, journal: Any) -> None:
        kept, moved = a_partition(), a_partition()
        mine = await journal.claim([kept, moved], "me")
        await journal.claim([moved], "someone else")

        again = await journal.claim([kept, moved], "me")

        assert again.kept_from(mine.id) == frozenset([kept])
        assert again.kept_from(None) == frozenset()

    # --- reading parts of the journal ---------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("from_seq", "to_seq", "limit", "expected"),
        [
            (1, None, None, range(1, 11)),
            (4, None, None, range(4, 11)),
            (1, 6, None, range(1, 7)),
            (3, 8, None, range(3, 9)),
            (5, 5, None, range(5, 6)),
            (1, None, 4, range(1, 5)),
            (2, None, 5, range(2, 7)),
            (3, 9, 3, range(3, 6)),
            (3, 4, 10, range(3, 5)),
            (9, None, 10, range(9, 11)),
            (10, None, None, range(10, 11)),
            (11, None, None, range(0)),
            (6, 5, None, range(0)),
            (1, None, 0, range(0)),
        ],
    )
    async def test_read_returns_the_events_from_to_and_at_most_limit_in_order(
        self, journal: Any, from_seq: int, to_seq: int | None, limit: int | None, expected: range
    ) -> None:
        member_id = uuid4()
        written = await append_batches(journal, member_id, [1, 3, 2, 1, 3])

        read = await journal.read(member_id, from_seq, to_seq, limit)

        assert read == [written[n - 1] for n in expected]

    @pytest.mark.parametrize(
        "sizes",
        [
            [1, 1, 1, 1, 1, 1, 1],
            [2, 1, 3, 1, 2],
            [1, 3, 2, 1, 3],
            [3, 3, 3, 1],
            [2, 3, 3, 2],
        ],
        ids=str,
    )
    async def test_read_and_load_see_every_event_in_order_from_any_position(
        self, journal: Any, sizes: list[int]
    ) -> None:
        member_id = uuid4()
        written = await append_batches(journal, member_id, sizes)

        for from_seq in range(1, len(written) + 2):
            assert await journal.read(member_id, from_seq) == written[from_seq - 1 :], f"from {from_seq}"
        for to_seq in range(1, len(written) + 1):
            assert await journal.read(member_id, 1, to_seq) == written[:to_seq], f"to {to_seq}"
        assert await journal.load(member_id) == MemberCart(member_id).with_events(written)

    async def test_a_batch_larger_than_a_bucket_is_refused_and_writes_nothing(self, journal: Any) -> None:
        # Readers rely on a batch fitting in one bucket (they stop at the first empty bucket); the journal enforces
        # it rather than silently losing events. Carts hold at most MAX_ITEMS, far below the configured bucket size.
        member_id = uuid4()
        with pytest.raises(ValueError, match="bucket"):
            await append_batches(journal, member_id, [journal.bucket_size + 1])
        assert await journal.read(member_id) == []

    # --- load and snapshots -------------------------------------------------------------------------------

    async def test_load_without_a_snapshot_replays_every_event_into_the_cart(self, journal: Any) -> None:
        writer = Writer(journal)
        await writer.shop()

        loaded = await journal.load(writer.member_id)

        assert loaded == writer.state
        assert loaded.version == 9
        assert loaded.cart == replay(e.event for e in writer.written)
        assert [item.name for item in loaded.cart.items] == ["Mug"]
        assert loaded.cart.cart_id == writer.written[-1].cart_id != writer.written[0].cart_id

    async def test_load_from_a_snapshot_and_later_events_equals_replaying_everything(self, journal: Any) -> None:
        writer = Writer(journal)
        teapot = an_item("Teapot", "19.99", 2)
        await writer.run(AddItem(teapot))
        await writer.run(AddItem(an_item("Cups", "2.50", 6)))
        await journal.save_snapshot(writer.state)
        await writer.run(AdjustQuantity(teapot.product_id, 5))
        await writer.run(Checkout())
        await writer.run(AddItem(an_item("Kettle", "45.00")))

        loaded = await journal.load(writer.member_id)

        assert loaded == writer.state
        assert loaded == MemberCart(writer.member_id).with_events(await journal.read(writer.member_id))
        assert loaded.version == 6

    async def test_load_starts_from_the_snapshot_so_it_works_when_older_events_are_gone(self, journal: Any) -> None:
        writer = Writer(journal)
        teapot = an_item("Teapot", "19.99", 2)
        await writer.run(AddItem(teapot))
        await writer.run(AddItem(an_item("Cups", "2.50", 6)))
        await journal.save_snapshot(writer.state)  # at version 2
        await writer.run(AdjustQuantity(teapot.product_id, 5))
        await writer.run(Checkout())  # versions 4 and 5
        await writer.run(AddItem(an_item("Kettle", "45.00")))

        await self.forget_events_through(journal, writer.member_id, 2)

        assert await journal.read(writer.member_id, 1, 2) == []
        assert await journal.read(writer.member_id, 3) == writer.written[2:]
        assert await journal.load(writer.member_id) == writer.state

    async def test_load_of_a_snapshot_with_no_later_events_is_the_snapshot(self, journal: Any) -> None:
        writer = Writer(journal)
        await writer.shop()
        await journal.save_snapshot(writer.state)

        assert await journal.load(writer.member_id) == writer.state

    async def test_saving_a_snapshot_again_or_an_older_one_loses_nothing(self, journal: Any) -> None:
        writer = Writer(journal)
        await writer.run(AddItem(an_item("Teapot")))
        older = writer.state
        await writer.run(AddItem(an_item("Cups")))
        await writer.run(Checkout())
        await journal.save_snapshot(writer.state)
        await journal.save_snapshot(writer.state)
        await journal.save_snapshot(older)

        assert await journal.load(writer.member_id) == writer.state

    async def test_loading_many_members_at_once_gives_each_its_own_cart(self, journal: Any) -> None:
        """However their histories lie (none, across buckets, from a snapshot, a snapshot with nothing after
        it, a snapshot whose older events are gone), each member loads as it does alone."""
        never = uuid4()
        shopper = Writer(journal)
        await shopper.shop()  # 9 events: across buckets of 3
        snapshotted = Writer(journal)
        await snapshotted.run(AddItem(an_item("Teapot")))
        await snapshotted.run(AddItem(an_item("Cups", "2.50", 6)))
        await journal.save_snapshot(snapshotted.state)
        await snapshotted.run(Checkout())
        await snapshotted.run(AddItem(an_item("Kettle", "45.00")))
        up_to_date = Writer(journal)
        await up_to_date.shop()
        await journal.save_snapshot(up_to_date.state)
        forgotten = Writer(journal)
        await forgotten.run(AddItem(an_item("Teapot")))
        await forgotten.run(AddItem(an_item("Cups")))
        await forgotten.run(AddItem(an_item("Mug")))
        await journal.save_snapshot(forgotten.state)
        await forgotten.run(Checkout())
        await self.forget_events_through(journal, forgotten.member_id, 3)
        ones = [Writer(journal) for _ in range(3)]
        for one in ones:
            await one.run(AddItem(an_item("Spoon")))
        writers = [shopper, snapshotted, up_to_date, forgotten, *ones]
        asked = [never, *(w.member_id for w in writers), shopper.member_id]  # one twice

        loaded = await journal.load_many(asked)

        assert loaded == {never: MemberCart(never), **{w.member_id: w.state for w in writers}}
        for member_id in set(asked):
            assert await journal.load(member_id) == loaded[member_id]
        assert await journal.load_many([]) == {}

    # --- members ------------------------------------------------------------------------------------------

    async def test_a_member_is_listed_once_after_its_first_append(self, journal: Any) -> None:
        member_id, never_appended = uuid4(), uuid4()
        await append_batches(journal, member_id, [1])
        assert member_id in await journal.members()

        await append(journal, member_id, 1, batch(member_id, 2, 2))
        members = await journal.members()

        assert members.count(member_id) == 1
        assert never_appended not in members
