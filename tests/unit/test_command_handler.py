"""The command handler's decisions around the stores, a batch at a time: retries, rejections and poison commands
inside a batch, owners that lose their lease, answers after a crash between append and emit, stores that are down.

The journal here is the in-memory one (tests/memory_journal.py), which runs the same contract tests as the Cassandra
journal; these tests are about the handler, not the store."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from app.cart.command_codec import command_from_dict, command_to_dict
from app.cart.rules import AddItem, Checkout, GetCart, Item, RemoveItem
from app.cart.stored_event import StoredEvent
from app.command_side import handler as handler_module
from app.command_side.handler import CommandHandler
from app.command_side.indexer import INDEX_NOW
from app.command_side.journal import WRITES_IN_FLIGHT, IndexRow, MemberAppend
from app.command_side.member_carts import MemberCarts
from app.stores.cassandra import StoreUnavailable
from schemas.records import CommandEnvelope, CommandReply, ReplyStatus
from tests.memory_journal import MemoryJournal

PARTITION = 0


class Emitted:
    def __init__(self) -> None:
        self.events: list[StoredEvent] = []

    async def __call__(self, events: Sequence[StoredEvent]) -> list[tuple[int, int]]:
        self.events.extend(events)
        return [(PARTITION, len(self.events) - len(events) + i) for i in range(len(events))]


class Replies:
    def __init__(self) -> None:
        self.by_key: dict[str, list[CommandReply]] = {}

    async def __call__(self, envelope: CommandEnvelope, reply: CommandReply) -> None:
        self.by_key.setdefault(envelope.command_id, []).append(reply)

    def last(self, key: str) -> CommandReply:
        return self.by_key[key][-1]


class Owner:
    """A worker's view of its consumer group: which generation, which partitions."""

    def __init__(self) -> None:
        self.generation = 1

    def __call__(self) -> tuple[int, frozenset[int]]:
        return self.generation, frozenset([PARTITION])


class Worker:
    def __init__(self, journal: MemoryJournal, index_every_s: float = 0.0, **options: Any) -> None:
        self.emitted, self.replies, self.owner = Emitted(), Replies(), Owner()
        self.handler = CommandHandler(
            journal, self.emitted, self.replies, self.owner, owner="test", index_every_s=index_every_s, **options
        )

    async def run(self, *commands: tuple[UUID, str, dict[str, Any]], deadline: float | None = None) -> None:
        """One batch of these commands, in order."""
        envelopes = [envelope(m, key, c, deadline or later()) for m, key, c in commands]
        await self.handler.handle({PARTITION: [(offset, e) for offset, e in enumerate(envelopes)]})
        await self.handler.drain()

    async def ask(self, member: UUID, key: str, command: dict[str, Any], deadline: float | None = None) -> CommandReply:
        await self.run((member, key, command), deadline=deadline)
        return self.replies.last(key)


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


def stored(journal: MemoryJournal, member: UUID) -> list[int]:
    return sorted(journal.events.get(member, {}))


async def appended_by_an_owner_that_dies(journal: MemoryJournal, member: UUID, key: str) -> tuple[StoredEvent, ...]:
    """An owner adds an apple for the member, then appends a pear under `key` and dies before finishing it."""
    from app.cart.member_cart import Accepted, decide_command

    dead = Worker(journal)
    await dead.ask(member, "warm-up", add("apple"))
    assert dead.handler._lease is not None
    decision = decide_command(
        await journal.load(member), key, command_from_dict(add("pear")), now=handler_module.now_utc(),
        new_cart_id=uuid.uuid4(), new_event_id=uuid.uuid4,
    )  # fmt: skip
    assert isinstance(decision, Accepted)
    await journal.append_batch(dead.handler._lease, [MemberAppend(member, 1, decision.events)])
    return decision.events


@pytest.fixture()
def journal() -> MemoryJournal:
    return MemoryJournal()


async def test_a_batch_of_many_members_is_appended_once_and_every_command_is_answered(journal: MemoryJournal) -> None:
    worker = Worker(journal)
    members = [uuid.uuid4() for _ in range(20)]
    await worker.run(
        *[(m, f"{m}-add", add()) for m in members], *[(m, f"{m}-out", command_to_dict(Checkout())) for m in members]
    )

    assert [len(batches) for batches in journal.logs.values()] == [1]  # one fenced write for the whole batch
    for m in members:
        assert worker.replies.last(f"{m}-add").status == ReplyStatus.ACCEPTED
        bought = worker.replies.last(f"{m}-out")
        assert bought.status == ReplyStatus.ACCEPTED and bought.body["purchase_total"] == "3.00"
        assert stored(journal, m) == [1, 2]
    assert len(worker.emitted.events) == 40


async def test_a_member_s_commands_in_one_batch_apply_in_order(journal: MemoryJournal) -> None:
    worker, member = Worker(journal), uuid.uuid4()
    await worker.run(
        (member, "a", add("a")),
        (member, "b", add("b")),
        (member, "r", remove("a")),
        (member, "g", command_to_dict(GetCart())),
    )

    assert [worker.replies.last(k).body["cart"]["version"] for k in "abrg"] == [1, 2, 3, 3]
    assert [i["name"] for i in worker.replies.last("g").body["cart"]["items"]] == ["b"]


async def test_a_rejection_inside_a_batch_is_answered_and_the_rest_of_the_batch_goes_on(journal: MemoryJournal) -> None:
    worker, one, other = Worker(journal), uuid.uuid4(), uuid.uuid4()
    await worker.run((one, "ok-1", add()), (other, "bad", remove()), (one, "dup", add()), (other, "ok-2", add()))

    assert worker.replies.last("bad").status == ReplyStatus.REJECTED
    assert worker.replies.last("bad").body["rejection"]["error"] == "ItemNotInCart"
    assert worker.replies.last("dup").body["rejection"]["error"] == "ItemAlreadyInCart"
    assert worker.replies.last("ok-1").status == worker.replies.last("ok-2").status == ReplyStatus.ACCEPTED
    assert stored(journal, one) == stored(journal, other) == [1]


async def test_a_poison_command_gets_its_own_error_and_the_rest_of_the_batch_goes_on(
    journal: MemoryJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = handler_module.decide_command

    def decide(state: Any, command_id: str, *args: Any, **kwargs: Any) -> Any:
        if command_id == "poison":
            raise ArithmeticError("a command no rule foresaw")
        return real(state, command_id, *args, **kwargs)

    monkeypatch.setattr(handler_module, "decide_command", decide)
    worker, member = Worker(journal), uuid.uuid4()
    malformed = {"type": "AddItem", "item": "not an item"}
    await worker.run(
        (member, "before", add("a")),
        (member, "poison", add("b")),
        (member, "garbled", malformed),
        (member, "after", add("c")),
    )

    assert worker.replies.last("poison").status == ReplyStatus.INVALID
    assert worker.replies.last("garbled").body["error"] == "InvalidCommand"
    assert worker.replies.last("after").body["cart"]["version"] == 2
    assert stored(journal, member) == [1, 2]


async def test_a_retry_gets_the_first_reply_without_writing_or_emitting_again(journal: MemoryJournal) -> None:
    worker, member = Worker(journal), uuid.uuid4()
    first = await worker.ask(member, "k1", add())
    again = await worker.ask(member, "k1", add())

    assert first.status == again.status == ReplyStatus.ACCEPTED
    assert again.body["events"] == first.body["events"]
    assert stored(journal, member) == [1] and len(worker.emitted.events) == 1


async def test_the_same_key_twice_in_one_batch_has_one_effect(journal: MemoryJournal) -> None:
    worker, member = Worker(journal), uuid.uuid4()
    await worker.run((member, "k", add()), (member, "k", add()))

    first, second = worker.replies.by_key["k"]
    assert first.body["events"] == second.body["events"] and stored(journal, member) == [1]


async def test_a_key_used_for_another_command_is_refused(journal: MemoryJournal) -> None:
    worker, member = Worker(journal), uuid.uuid4()
    assert (await worker.ask(member, "k", add())).status == ReplyStatus.ACCEPTED
    reused = await worker.ask(member, "k", remove("apple"))
    assert reused.status == ReplyStatus.INVALID and reused.body["error"] == "IdempotencyKeyReused"


async def test_a_remembered_rejection_survives_a_new_owner(journal: MemoryJournal) -> None:
    first, member = Worker(journal), uuid.uuid4()
    assert (await first.ask(member, "bad", remove())).status == ReplyStatus.REJECTED
    assert (await first.ask(member, "add", add())).status == ReplyStatus.ACCEPTED

    successor = Worker(journal)  # another process: nothing in memory, a lease of its own
    retry = await successor.ask(member, "bad", remove())

    assert retry.status == ReplyStatus.REJECTED  # not accepted now that orange is in the cart
    assert retry.body["rejection"]["error"] == "ItemNotInCart"


async def test_a_command_appended_by_a_dead_owner_is_emitted_by_the_next_and_a_retry_gets_its_events(
    journal: MemoryJournal,
) -> None:
    """An owner appended the command's events and died before emitting them or answering."""
    member = uuid.uuid4()
    events = await appended_by_an_owner_that_dies(journal, member, "k")

    successor = Worker(journal)
    late = await successor.ask(member, "k", add("pear"), deadline=time.time() - 1)  # redelivered after its deadline
    ids = [e.event_id for e in events]
    assert late.status == ReplyStatus.EXPIRED  # nobody waits for it: not applied again, not loaded
    assert [e.event_id for e in successor.emitted.events] == ids  # emitted by the claim, with the same ids

    retry = await successor.ask(member, "k", add("pear"))  # the client tries again with the same key
    assert retry.status == ReplyStatus.ACCEPTED
    assert [e["event_id"] for e in retry.body["events"]] == [str(i) for i in ids]
    assert stored(journal, member) == [1, 2]


async def test_an_owner_whose_lease_was_taken_writes_nothing_and_answers_503_until_it_owns_again(
    journal: MemoryJournal,
) -> None:
    old, member = Worker(journal), uuid.uuid4()
    assert (await old.ask(member, "1", add("a"))).status == ReplyStatus.ACCEPTED
    new = Worker(journal)  # a rebalance gave the partition to another worker; the old one has not noticed yet
    assert (await new.ask(member, "2", add("b"))).status == ReplyStatus.ACCEPTED

    zombie = await old.ask(member, "3", add("c"))
    assert zombie.status == ReplyStatus.UNAVAILABLE
    assert (await old.ask(member, "4", add("d"))).status == ReplyStatus.UNAVAILABLE  # no claim in this generation
    assert stored(journal, member) == [1, 2]

    old.owner.generation += 1  # it rejoins the group and gets the partition back
    again = await old.ask(member, "5", add("e"))
    assert again.status == ReplyStatus.ACCEPTED
    assert again.body["cart"]["version"] == 3  # loaded from the journal, not from its stale memory: no fork
    assert stored(journal, member) == [1, 2, 3]


async def test_an_owner_that_keeps_its_partitions_across_a_rebalance_keeps_its_carts(journal: MemoryJournal) -> None:
    worker, member = Worker(journal), uuid.uuid4()
    await worker.ask(member, "1", add("a"))
    journal.snapshots.clear()
    journal.events.clear()  # were the cart loaded again, it would be empty now

    worker.owner.generation += 1
    reply = await worker.ask(member, "2", add("b"))

    assert reply.body["cart"]["version"] == 2


async def test_an_unreachable_journal_before_anything_is_written_escapes_and_nothing_is_written(
    journal: MemoryJournal,
) -> None:
    worker, member = Worker(journal), uuid.uuid4()
    journal.down = True
    with pytest.raises(StoreUnavailable):  # the agent takes the batch again; nothing was answered
        await worker.run((member, "k", add()))
    journal.down = False
    assert worker.replies.by_key == {} and stored(journal, member) == []
    assert (await worker.ask(member, "k", add())).status == ReplyStatus.ACCEPTED


async def test_an_owner_back_after_another_owner_wrote_for_its_partition_loads_its_carts_again(
    journal: MemoryJournal,
) -> None:
    """It never noticed it had lost the partition (it wrote nothing meanwhile): its memory of the cart is stale."""
    first, member = Worker(journal), uuid.uuid4()
    await first.ask(member, "1", add("a"))
    await Worker(journal).ask(member, "2", add("b"))  # another owner, in between

    first.owner.generation += 1  # a later rebalance gives the partition back
    reply = await first.ask(member, "3", add("c"))

    assert reply.body["cart"]["version"] == 3
    assert stored(journal, member) == [1, 2, 3]
    assert [i["name"] for i in reply.body["cart"]["items"]] == ["a", "b", "c"]


async def test_a_batch_an_owner_appended_but_never_finished_is_emitted_by_the_next_owner_s_claim(
    journal: MemoryJournal,
) -> None:
    """Its offsets may have been committed already (a batch is acknowledged to Kafka once it is appended, while it
    is being finished): the command never comes back, so the claim is what emits it."""
    member, other = uuid.uuid4(), uuid.uuid4()
    events = await appended_by_an_owner_that_dies(journal, member, "never-finished")

    successor = Worker(journal)
    await successor.ask(other, "unrelated", add())

    assert [e.event_id for e in events] == [e.event_id for e in successor.emitted.events[:1]]
    assert stored(journal, member) == [1, 2]


# --- The member-keyed journal written behind the answers (app/command_side/indexer.py) ---------------------------

INDEX = {"type": INDEX_NOW}
LAZY = 3600.0  # long enough that only what a test does makes the owner index


def logged(journal: MemoryJournal) -> list[int]:
    """Every seq_nr in the owners' logs (what is durable), in order."""
    return [e.seq_nr for batches in journal.logs.values() for _, events in batches for e in events]


async def test_an_owner_that_indexes_behind_its_answers_answers_from_the_log_and_indexes_when_asked(
    journal: MemoryJournal,
) -> None:
    worker = Worker(journal, index_every_s=LAZY)
    member = uuid.uuid4()
    assert (await worker.ask(member, "1", add("apple"))).status == ReplyStatus.ACCEPTED
    assert (await worker.ask(member, "2", add("pear"))).status == ReplyStatus.ACCEPTED
    assert logged(journal) == [1, 2] and stored(journal, member) == []  # durable, not indexed yet
    lease = worker.handler._lease
    assert lease is not None and lease.done_batch == -1  # a claim now would index and emit both again

    indexed = await worker.ask(uuid.uuid4(), "index", INDEX)  # any member: the owner indexes all it holds

    assert indexed.status == ReplyStatus.UNCHANGED and indexed.body == {"indexed": True}
    assert stored(journal, member) == [1, 2]
    assert lease.done_batch == 1  # indexed and emitted: the next append records it


async def test_a_member_loaded_again_before_its_events_are_indexed_is_decided_on_all_of_them(
    journal: MemoryJournal,
) -> None:
    worker = Worker(journal, index_every_s=LAZY, carts=MemberCarts(capacity=1))
    member, other = uuid.uuid4(), uuid.uuid4()
    await worker.ask(member, "1", add("apple"))
    await worker.ask(other, "2", add("apple"))  # the cache holds one cart: the member's is dropped
    assert stored(journal, member) == []

    again = await worker.ask(member, "3", add("apple"))
    more = await worker.ask(member, "4", add("pear"))

    assert again.status == ReplyStatus.REJECTED and again.body["rejection"]["error"] == "ItemAlreadyInCart"
    assert more.status == ReplyStatus.ACCEPTED and more.body["cart"]["version"] == 2
    await worker.ask(other, "index", INDEX)
    assert stored(journal, member) == [1, 2]


async def test_what_waits_to_be_indexed_is_kept_as_values_the_garbage_collector_does_not_walk(
    journal: MemoryJournal,
) -> None:
    """An owner keeps up to CART_INDEX_EVERY_S of appended events; as objects, they were most of what each full
    collection walked, and a full collection stalls every command in flight."""
    worker = Worker(journal, index_every_s=LAZY)
    member = uuid.uuid4()
    await worker.ask(member, "1", add("apple"))
    await worker.ask(member, "2", add("pear"))
    gc.collect()

    waiting = worker.handler._indexer._waiting
    rows = [row for _, _, batch in waiting.batches for row in batch]
    assert len(rows) == 2 and not any(gc.is_tracked(row) for row in rows)
    assert list(waiting.by_member) == [member.int]
    assert worker.handler._indexer.pending(member) == worker.emitted.events  # read back, they are the events


async def test_a_retry_of_a_command_not_yet_indexed_gets_its_events(journal: MemoryJournal) -> None:
    worker = Worker(journal, index_every_s=LAZY)
    member = uuid.uuid4()
    first = await worker.ask(member, "1", add("apple"))
    await worker.ask(member, "2", add("pear"))

    retry = await worker.ask(member, "1", add("apple"))

    assert retry.status == ReplyStatus.ACCEPTED and retry.body["events"] == first.body["events"]
    assert len(worker.emitted.events) == 2 and stored(journal, member) == []  # nothing written or emitted again


async def test_a_crash_before_the_owner_indexed_loses_nothing(journal: MemoryJournal) -> None:
    dead = Worker(journal, index_every_s=LAZY)
    member = uuid.uuid4()
    await dead.ask(member, "1", add("apple"))
    await dead.ask(member, "2", add("pear"))  # ...and the owner dies before indexing either

    successor = Worker(journal, index_every_s=LAZY)
    reply = await successor.ask(member, "3", add("apple"))

    assert reply.status == ReplyStatus.REJECTED  # the successor's claim indexed the dead owner's log first
    assert stored(journal, member) == [1, 2]
    assert [e.seq_nr for e in successor.emitted.events] == [1, 2]  # maybe never emitted: emitted again


async def test_an_owner_that_settles_leaves_the_next_claim_nothing_to_emit_again(journal: MemoryJournal) -> None:
    stopping = Worker(journal, index_every_s=LAZY)
    member = uuid.uuid4()
    await stopping.ask(member, "1", add("apple"))
    await stopping.ask(member, "2", add("pear"))

    await stopping.handler.settle()  # a clean stop

    assert stored(journal, member) == [1, 2]
    successor = Worker(journal, index_every_s=LAZY)
    await successor.ask(member, "3", remove("apple"))
    assert [e.seq_nr for e in successor.emitted.events] == [3]


async def test_an_owner_indexes_once_enough_events_wait(journal: MemoryJournal) -> None:
    worker = Worker(journal, index_every_s=LAZY, index_max_pending=3)
    members = [uuid.uuid4() for _ in range(3)]
    await worker.run(*[(m, f"{m}", add()) for m in members[:2]])
    assert all(stored(journal, m) == [] for m in members)

    await worker.run((members[2], "third", add()))
    for _ in range(10):  # the flush runs in the background
        await asyncio.sleep(0)

    assert all(stored(journal, m) == [1] for m in members)


async def test_the_timed_index_writes_one_request_at_a_time_and_an_asked_one_at_full_speed(
    journal: MemoryJournal,
) -> None:
    """The timed flush runs beside the command path, so it must not put many requests in front of the next
    conditional write; a reader that asked (INDEX_NOW) is waiting, so its flush goes as fast as it can."""
    worker = Worker(journal, index_every_s=0.01)
    member = uuid.uuid4()
    await worker.ask(member, "1", add("apple"))
    for _ in range(100):  # the timer flushes in the background
        if stored(journal, member):
            break
        await asyncio.sleep(0.01)
    assert stored(journal, member) == [1] and journal.index_requests_in_flight == [1]
    await worker.handler._indexer.close()

    other = MemoryJournal()
    asking = Worker(other, index_every_s=LAZY)
    await asking.ask(member, "1", add("apple"))
    await asking.ask(member, "index", INDEX)

    assert stored(other, member) == [1] and other.index_requests_in_flight == [WRITES_IN_FLIGHT]


class SlowJournal(MemoryJournal):
    """A gentle index takes until someone hurries it (or a while), as a long one in Cassandra does."""

    def __init__(self) -> None:
        super().__init__()
        self.hurried: list[bool] = []

    async def index_rows(self, rows: Sequence[IndexRow], hurry: asyncio.Event | None = None) -> None:
        await super().index_rows(rows, hurry)
        if hurry is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hurry.wait(), 5)
            self.hurried.append(hurry.is_set())


async def test_a_reader_that_asks_for_the_index_hurries_a_gentle_flush_under_way() -> None:
    """Else the command batch that carries its IndexNow, and every batch behind it, would wait out the gentle flush."""
    journal = SlowJournal()
    worker = Worker(journal, index_every_s=LAZY)
    member = uuid.uuid4()
    await worker.ask(member, "1", add("apple"))
    gentle = asyncio.ensure_future(worker.handler._indexer.flush(gently=True))
    await asyncio.sleep(0)  # the gentle flush is writing
    assert journal.index_requests_in_flight == [1] and journal.hurried == []

    asked = await asyncio.wait_for(worker.ask(uuid.uuid4(), "index", INDEX), 2)
    await gentle

    assert asked.body == {"indexed": True} and journal.hurried == [True]
    assert stored(journal, member) == [1]


async def test_an_owner_whose_lease_was_taken_forgets_what_it_did_not_index(journal: MemoryJournal) -> None:
    old = Worker(journal, index_every_s=LAZY)
    member = uuid.uuid4()
    await old.ask(member, "1", add("apple"))
    new = Worker(journal, index_every_s=LAZY)
    await new.ask(member, "2", add("pear"))  # its claim sealed the old lease and indexed it

    lost = await old.ask(member, "3", add("plum"))

    assert lost.status == ReplyStatus.UNAVAILABLE
    assert old.handler._indexer.pending(member) == []
    await new.ask(member, "index", INDEX)
    assert stored(journal, member) == [1, 2]


class HeldSnapshots(MemoryJournal):
    """Snapshots are written only once let go."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def save_snapshot(self, state: Any) -> None:
        await self.go.wait()
        await super().save_snapshot(state)


async def test_a_checkout_takes_no_snapshot_of_its_own() -> None:
    """Snapshots are taken every `snapshot_every` events only: one at each checkout cost more than it saved."""
    journal, member = MemoryJournal(), uuid.uuid4()
    worker = Worker(journal)
    await worker.ask(member, "1", add("apple"))
    assert (await worker.ask(member, "out", command_to_dict(Checkout()))).status == ReplyStatus.ACCEPTED
    await worker.handler._snapshots.flush()
    assert member not in journal.snapshots


async def test_a_due_snapshot_is_saved_after_the_answer_and_a_rejection_only_before() -> None:
    """A snapshot every `snapshot_every` events is a shortcut for loads: saved behind the answer. A rejection's is
    what remembers the answer for a retry on another owner (the journal has no trace of it): saved before the
    answer."""
    journal, member = HeldSnapshots(), uuid.uuid4()
    worker = Worker(journal, snapshot_every=2)
    await worker.ask(member, "1", add("apple"))

    out = await asyncio.wait_for(worker.ask(member, "out", command_to_dict(Checkout())), 2)  # the 2nd event

    assert out.status == ReplyStatus.ACCEPTED and member not in journal.snapshots
    journal.go.set()
    await worker.handler._snapshots.flush()
    assert journal.snapshots[member]["version"] == 2

    journal.go.clear()
    rejected = asyncio.ensure_future(worker.ask(member, "bad", remove("plum")))
    await asyncio.sleep(0.1)
    assert not rejected.done()  # waiting for the snapshot
    journal.go.set()
    assert (await rejected).status == ReplyStatus.REJECTED
    assert "bad" in {o["command_id"] for o in journal.snapshots[member]["recent"]}
