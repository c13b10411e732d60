"""The journal's contract (tests/journal_contract.py) against the real Cassandra, no mocks.

`TestCassandraJournal` runs it against `CassandraJournal` with a tiny bucket size, so that batches straddle bucket
boundaries everywhere, and adds the checks that are about Cassandra's layout (buckets, segments, a lost answer).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

import app.command_side.journal as journal_module
from app.cart.member_cart import MemberCart, Outcome
from app.cart.rules import AddItem
from app.cart.stored_event import StoredEvent
from app.command_side.journal import (
    MEMBER_SHARDS,
    REJECTION_TTL_S,
    CassandraJournal,
    Lease,
    LeaseLost,
    MemberAppend,
    _log_entry,
)
from app.settings import Settings
from app.stores.cassandra import StoreUnavailable, connect_async, execute
from tests.journal_contract import (
    JournalContract,
    Writer,
    a_partition,
    an_item,
    append,
    append_batches,
    batch,
)


class TestCassandraJournal(JournalContract):
    bucket_size = 3
    """Tiny, so that batches straddle bucket boundaries in every test; production uses at least 1000."""

    @pytest.fixture(scope="class")
    @classmethod
    async def journal(cls, settings: Settings) -> AsyncIterator[CassandraJournal]:
        cluster, session = await connect_async(settings, settings.cassandra_keyspace)
        try:
            yield CassandraJournal(session, settings.cassandra_keyspace, bucket_size=cls.bucket_size)
        finally:
            await asyncio.to_thread(cluster.shutdown)

    async def forget_events_through(self, journal: Any, member_id: UUID, seq_nr: int) -> None:
        for bucket in range(journal.bucket_of(seq_nr) + 1):
            await execute(
                journal.session,
                f"DELETE FROM {journal.keyspace}.journal WHERE member_id = %s AND bucket = %s AND seq_nr <= %s",
                (member_id, bucket, seq_nr),
            )

    async def rows_by_bucket(self, journal: CassandraJournal, member_id: UUID, buckets: int) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        for bucket in range(buckets):
            rows = await execute(
                journal.session,
                f"SELECT seq_nr FROM {journal.keyspace}.journal WHERE member_id = %s AND bucket = %s",
                (member_id, bucket),
            )
            found[bucket] = [row.seq_nr for row in rows]
        return found

    async def test_loading_members_with_short_histories_is_one_round_trip_however_many_they_are(
        self, journal: CassandraJournal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A batch's new members, and members with a few events and no snapshot, are loaded with one read of the
        snapshots and one of the journal, both at once, not two reads each, nor one after the other: most loads
        are of such members, and a load is in the path of its batch's answers."""
        ones = [Writer(journal) for _ in range(4)]
        for one in ones:
            await one.run(AddItem(an_item("Spoon")))  # seq_nr 1: the next one would be in bucket 0 too
        new = [uuid4() for _ in range(30)]
        requests, out, most = 0, 0, 0
        run = journal._run

        async def counted(statement: Any, params: Any = None) -> Any:
            nonlocal requests, out, most
            requests, out = requests + 1, out + 1
            most = max(most, out)
            try:
                return await run(statement, params)
            finally:
                out -= 1

        monkeypatch.setattr(journal, "_run", counted)
        loaded = await journal.load_many([*new, *(one.member_id for one in ones)])

        assert loaded == {**{m: MemberCart(m) for m in new}, **{one.member_id: one.state for one in ones}}
        assert (requests, most) == (2, 2)

    @pytest.mark.parametrize("first_events", [1, 2])
    async def test_loading_many_members_whose_first_bucket_is_longer_than_the_first_read(
        self, journal: CassandraJournal, monkeypatch: pytest.MonkeyPatch, first_events: int
    ) -> None:
        """The members whose first bucket has FIRST_EVENTS_READ events or more read on from their snapshot: with
        a first read of one or two events, most members of the contract's many-members test are such members."""
        monkeypatch.setattr(journal_module, "FIRST_EVENTS_READ", first_events)
        await self.test_loading_many_members_at_once_gives_each_its_own_cart(journal)

    @pytest.mark.parametrize("how", ["8 in flight", "gently", "gently, then hurried"])
    async def test_many_members_are_indexed_whole_with_at_most_so_many_requests_in_flight(
        self, journal: CassandraJournal, monkeypatch: pytest.MonkeyPatch, how: str
    ) -> None:
        """The owner's timed flush writes one request at a time until a reader waits for it (app/command_side/
        indexer.py): every row and every new member's listing still lands, in requests of many rows."""
        lease = await journal.claim([a_partition()], "owner")
        members = [uuid4() for _ in range(70)]
        appends = [MemberAppend(m, 0, tuple(batch(m, 1, 3))) for m in members]  # 70 listings + 210 rows
        await journal.append_batch(lease, appends)
        hurry = None if how == "8 in flight" else asyncio.Event()
        run, now, requests = journal._run, 0, 0
        most: list[int] = []  # requests out at once, at each request's start

        async def counted(statement: Any, params: Any = None) -> Any:
            nonlocal now, requests
            now, requests = now + 1, requests + 1
            most.append(now)
            if how == "gently, then hurried" and requests == 2 and hurry is not None:
                hurry.set()  # a reader asks for the index while the second request is out
            try:
                await asyncio.sleep(0.005)  # long enough for any other request to start meanwhile
                return await run(statement, params)
            finally:
                now -= 1

        monkeypatch.setattr(journal, "_run", counted)
        await journal.index(lease, appends, hurry=hurry)

        assert requests == 5  # 280 statements, 64 a request
        if how == "8 in flight":
            assert max(most) == 5
        elif how == "gently":
            assert max(most) == 1
        else:
            assert most[:2] == [1, 1] and max(most[2:]) == 3  # the last three at once
        monkeypatch.undo()
        for m, append_ in zip(members, appends, strict=True):
            assert await journal.read(m) == list(append_.events)
        listed = {
            row.member_id
            for shard in range(MEMBER_SHARDS)
            for row in await execute(
                journal.session, f"SELECT member_id FROM {journal.keyspace}.members WHERE shard = %s", (shard,)
            )
        }
        assert set(members) <= listed

    async def test_a_batch_is_stored_whole_in_the_bucket_of_its_first_seq_nr(self, journal: CassandraJournal) -> None:
        member_id = uuid4()
        await append_batches(journal, member_id, [1, 3, 1, 3])  # batches at 1, 2..4, 5, 6..8

        assert await self.rows_by_bucket(journal, member_id, 5) == {
            0: [1, 2, 3, 4],
            1: [5],
            2: [6, 7, 8],
            3: [],
            4: [],
        }

    async def test_the_first_bucket_deleted_leaves_the_rest_of_the_journal_readable(
        self, journal: CassandraJournal
    ) -> None:
        member_id = uuid4()
        written = await append_batches(journal, member_id, [1, 1, 1, 2, 1])  # buckets 0, 0, 1, 1, 2

        await execute(
            journal.session,
            f"DELETE FROM {journal.keyspace}.journal WHERE member_id = %s AND bucket = 0",
            (member_id,),
        )

        assert (await self.rows_by_bucket(journal, member_id, 3))[0] == []
        assert await journal.read(member_id, 3) == written[2:]

    async def test_a_lease_writes_across_segments_and_a_seal_finds_where_it_ended(self, settings: Settings) -> None:
        """Segments bound a lease's Cassandra partitions; the owner moves on to the next by itself, and a new owner
        seals the right one and indexes what was not, wherever the lease had got to."""
        cluster, session = await connect_async(settings, settings.cassandra_keyspace)
        try:
            journal = CassandraJournal(session, settings.cassandra_keyspace, segment_batches=2)
            partition, member_id = a_partition(), uuid4()
            lease = await journal.claim([partition], "owner")
            written: list[Any] = []
            for n in range(5):  # batches 0..4: segments 0, 0, 1, 1, 2
                events = batch(member_id, n + 1, 1)
                appends = [MemberAppend(member_id, n, tuple(events))]
                batch_nr = await journal.append_batch(lease, appends)
                written += events
                if n < 3:  # batches 3 and 4 are never finished by their owner
                    await journal.index(lease, appends)
                    lease.done(batch_nr)
            assert await journal.read(member_id) == written[:3]

            successor = await journal.claim([partition], "next owner")

            assert await journal.read(member_id) == written
            assert successor.unfinished == written[3:]
            with pytest.raises(LeaseLost):
                await journal.append_batch(lease, [MemberAppend(member_id, 5, tuple(batch(member_id, 6, 1)))])
        finally:
            await asyncio.to_thread(cluster.shutdown)

    async def test_a_lease_at_the_end_of_a_full_segment_is_sealed_before_it_can_enter_the_next(
        self, settings: Settings
    ) -> None:
        cluster, session = await connect_async(settings, settings.cassandra_keyspace)
        try:
            journal = CassandraJournal(session, settings.cassandra_keyspace, segment_batches=2)
            partition, member_id = a_partition(), uuid4()
            lease = await journal.claim([partition], "owner")
            for n in range(2):  # segment 0 is full; the next batch would open segment 1
                await append(journal, member_id, n, batch(member_id, n + 1, 1), lease=lease)

            await journal.claim([partition], "next owner")

            with pytest.raises(LeaseLost):
                await journal.append_batch(lease, [MemberAppend(member_id, 2, tuple(batch(member_id, 3, 1)))])
            assert [e.seq_nr for e in await journal.read(member_id)] == [1, 2]
        finally:
            await asyncio.to_thread(cluster.shutdown)

    async def test_a_batch_whose_answer_is_lost_is_written_again_as_the_same_row(
        self, journal: CassandraJournal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The write lands but its answer does not arrive (a time-out): the journal writes the same row again
        until Cassandra answers, before it checks the seal and returns; the lease goes on at the next batch."""
        lease = await journal.claim([a_partition()], "owner")
        member_id = uuid4()
        real_run = journal._run
        lost: list[Any] = []

        async def answer_lost(statement: Any, params: Any = None) -> Any:
            result = await real_run(statement, params)
            if statement is journal._write_batch and not lost:
                lost.append(statement)
                raise StoreUnavailable("Cassandra did not answer within 5.0s")
            return result

        monkeypatch.setattr(journal, "_run", answer_lost)
        events = batch(member_id, 1, 2)
        await append(journal, member_id, 0, events, lease=lease)

        assert lost and lease.next_batch == 1
        assert await log_of(journal, lease.id) == [0]
        assert await journal.read(member_id) == events
        following = batch(member_id, 3, 1)
        await append(journal, member_id, 2, following, lease=lease)  # the lease goes on at the right batch
        assert await journal.read(member_id) == events + following

    async def test_a_snapshot_records_its_version_and_bucket(self, journal: CassandraJournal) -> None:
        writer = Writer(journal)
        await writer.shop()
        await journal.save_snapshot(writer.state)

        [row] = await execute(
            journal.session,
            f"SELECT seq_nr, bucket FROM {journal.keyspace}.snapshots WHERE member_id = %s",
            (writer.member_id,),
        )

        assert (row.seq_nr, row.bucket) == (9, journal.bucket_of(9))

    async def test_a_rejection_survives_an_older_state_written_after_it(self, journal: CassandraJournal) -> None:
        """A new owner remembers a rejection (its snapshot, saved before the answer); then a stale owner's snapshot
        of an older state lands: the state goes back (a shortcut, the journal fills it in), the rejection stays."""
        writer = Writer(journal)
        await writer.shop()
        older = writer.state
        rejection = {"error": "ItemNotInCart", "reason": "not in the cart", "product_id": str(uuid4())}
        newer = older.remember_rejection("rejected-by-the-new-owner", rejection, "fp")
        await journal.save_snapshot(newer)
        await journal.save_snapshot(older)  # the stale owner's, written last

        loaded = await journal.load(writer.member_id)

        assert loaded.outcome_of("rejected-by-the-new-owner") == Outcome(
            "rejected-by-the-new-owner", older.version + 1, older.version, rejection, fingerprint="fp"
        )
        assert (loaded.version, loaded.cart) == (older.version, older.cart)
        [row] = await execute(
            journal.session,
            f"SELECT TTL(rejections) AS ttl FROM {journal.keyspace}.snapshots WHERE member_id = %s",
            (writer.member_id,),
        )
        assert row.ttl and all(0 < ttl <= REJECTION_TTL_S for ttl in row.ttl)  # one per entry


async def test_a_partition_is_finished_once_its_owner_s_done_mark_covers_its_log(settings: Settings) -> None:
    """What `cart verify`, `cart rebuild` and the drills rely on when no live owner can be asked to index: a clean
    stop records the mark (finished), a crash after appending leaves it behind (not finished until the next claim),
    and a partition nobody owned has nothing to finish."""
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    try:
        journal = CassandraJournal(session, settings.cassandra_keyspace, segment_batches=2)
        partition, member_id = a_partition(), uuid4()
        assert await journal.finished(partition)

        lease = await journal.claim([partition], "owner")
        for expected in range(3):  # three batches: the log goes on into its second segment
            appends = [MemberAppend(member_id, expected, tuple(batch(member_id, expected + 1, 1)))]
            await journal.append_batch(lease, appends)
            await journal.index(lease, appends)
        assert not await journal.finished(partition)  # appended, and no mark recorded: as after a crash

        lease.done(1)
        await journal.mark_done(lease)
        assert not await journal.finished(partition)  # the last batch is not covered
        lease.done(2)
        await journal.mark_done(lease)
        assert await journal.finished(partition)  # as after a clean stop

        successor = await journal.claim([partition], "next owner")
        assert successor.unfinished == [] and await journal.finished(partition)
    finally:
        await asyncio.to_thread(cluster.shutdown)


class ClaimerThatDiesAfterTakingOver(CassandraJournal):
    """A claim that stops (the process dies) right after it moved a partition to its own lease."""

    async def _run(self, statement: Any, params: Any = None) -> Any:
        result = await super()._run(statement, params)
        if statement is self._next_owner:
            raise SystemExit("killed after taking the partition over")
        return result


async def an_owner_with_one_batch(
    journal: CassandraJournal, owner_name: str
) -> tuple[int, UUID, Lease, list[StoredEvent]]:
    """A fresh partition, its owner's lease, and one appended (answered, not indexed) batch of two events."""
    partition, member_id = a_partition(), uuid4()
    owner = await journal.claim([partition], owner_name)
    events = batch(member_id, 1, 2)
    await journal.append_batch(owner, [MemberAppend(member_id, 0, tuple(events))])
    return partition, member_id, owner, events


async def test_what_a_sealed_owner_did_not_index_is_indexed_even_if_its_claimer_dies_right_after_taking_over(
    settings: Settings,
) -> None:
    """The owner indexes behind its answers, so a sealed lease can hold many batches the member journal lacks; the
    claimer indexes them before it moves the partition, not after, or a claimer killed in between (seen in the
    SIGKILL drill) would leave them to nobody: the next claim finds the dead claimer's empty lease as the owner."""
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    try:
        journal = CassandraJournal(session, settings.cassandra_keyspace)
        partition, member_id, _, events = await an_owner_with_one_batch(journal, "owner that dies before indexing")

        dying = ClaimerThatDiesAfterTakingOver(session, settings.cassandra_keyspace)
        with pytest.raises(SystemExit):
            await dying.claim([partition], "claimer killed mid-claim")

        assert await journal.read(member_id) == events
        successor = await journal.claim([partition], "next owner")
        assert successor.unfinished == []  # the dead claimer's lease had nothing; the first lease was indexed
    finally:
        await asyncio.to_thread(cluster.shutdown)


async def log_of(journal: CassandraJournal, lease_id: UUID, segment: int = 0) -> list[int]:
    """The batch numbers in a segment of a lease's log, whether they count or not."""
    rows = await execute(
        journal.session,
        f"SELECT batch_nr FROM {journal.keyspace}.journal_log WHERE lease = %s AND segment = %s",
        (lease_id, segment),
    )
    return [row.batch_nr for row in rows if row.batch_nr is not None]


async def test_an_owner_that_finds_a_seal_with_no_end_yet_records_one_past_its_batch_and_the_batch_counts(
    settings: Settings,
) -> None:
    """Write then read, the owner's side: a claimer has written the seal and not yet read the log (its first step,
    done here by hand). The owner's write lands and its read finds the seal, so it records the log's end past its
    batch: the batch counts (the append returns), the lease writes no more, and the claim that follows finds that
    end, indexes the batch and hands its events on to be emitted."""
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    try:
        journal = CassandraJournal(session, settings.cassandra_keyspace)
        partition, member_id = a_partition(), uuid4()
        lease = await journal.claim([partition], "owner")
        await execute(
            session,
            f"UPDATE {journal.keyspace}.journal_seals SET sealed_at = %s, sealed_by = 'claimer' WHERE lease = %s",
            (datetime.now(UTC), lease.id),
        )
        events = batch(member_id, 1, 2)

        assert await journal.append_batch(lease, [MemberAppend(member_id, 0, tuple(events))]) == 0

        assert lease.sealed
        with pytest.raises(LeaseLost):
            await journal.append_batch(lease, [MemberAppend(member_id, 2, tuple(batch(member_id, 3, 1)))])
        assert await log_of(journal, lease.id) == [0]  # the second append wrote nothing
        successor = await journal.claim([partition], "claimer")
        assert successor.unfinished == events
        assert await journal.read(member_id) == events
    finally:
        await asyncio.to_thread(cluster.shutdown)


class ClaimerThatDiesBeforeTakingOver(CassandraJournal):
    """A claim that stops (the process dies) after it sealed the previous lease, before it moved the partition."""

    async def _run(self, statement: Any, params: Any = None) -> Any:
        if statement is self._next_owner:
            raise SystemExit("killed before taking the partition over")
        return await super()._run(statement, params)


async def test_a_batch_a_sealed_owner_writes_past_the_recorded_end_is_never_read(settings: Settings) -> None:
    """Write then read, the claimer's side: the claimer sealed the lease and recorded where its log ends. The owner,
    a zombie now, writes its next batch all the same (a plain write is not refused), reads the seal and the end
    before its batch, and loses its lease. Its row stays in the log, and nobody reads it: not a second claim of
    the same lease (the first claimer died before moving the partition), not a member's history."""
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    try:
        journal = CassandraJournal(session, settings.cassandra_keyspace)
        partition, member_id, owner, events = await an_owner_with_one_batch(journal, "owner")
        dying = ClaimerThatDiesBeforeTakingOver(session, settings.cassandra_keyspace)
        with pytest.raises(SystemExit):
            await dying.claim([partition], "claimer killed mid-claim")

        with pytest.raises(LeaseLost):
            await journal.append_batch(owner, [MemberAppend(member_id, 2, tuple(batch(member_id, 3, 1)))])

        assert await log_of(journal, owner.id) == [0, 1]  # written, past the end
        successor = await journal.claim([partition], "next owner")  # the same lease to seal: its end is recorded
        assert successor.unfinished == events
        assert await journal.read(member_id) == events
    finally:
        await asyncio.to_thread(cluster.shutdown)


async def test_a_lease_of_the_conditional_format_is_sealed_the_way_its_owner_checks(settings: Settings) -> None:
    """A lease written before the write-then-read fence (one `IF next_batch = n` per batch, no `fence` in
    journal_owners; its rows are written here by hand, as its owner wrote them) is sealed with the conditional
    write its owner's appends check, and what it had not marked done is indexed and handed on."""
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    try:
        journal = CassandraJournal(session, settings.cassandra_keyspace)
        ks, partition, member_id, old = journal.keyspace, a_partition(), uuid4(), uuid4()
        first, second = batch(member_id, 1, 1), batch(member_id, 2, 1)
        await execute(
            session,
            f"INSERT INTO {ks}.journal_owners (topic, partition, lease, owner, claimed_at) VALUES (%s, %s, %s, %s, %s)",
            (journal.topic, partition, old, "old owner", datetime.now(UTC)),
        )
        await execute(
            session,
            f"UPDATE {ks}.journal_log SET next_batch = 2, done_batch = 0, owner = 'old owner' "
            "WHERE lease = %s AND segment = 0",
            (old,),
        )
        for batch_nr, events in enumerate((first, second)):
            await execute(
                session,
                f"INSERT INTO {ks}.journal_log (lease, segment, batch_nr, batch_id, events) VALUES (%s, 0, %s, %s, %s)",
                (old, batch_nr, uuid4(), orjson.dumps([_log_entry(e, 0) for e in events]).decode()),
            )
        await journal.index(Lease(old, "old owner", frozenset([partition])), [MemberAppend(member_id, 0, tuple(first))])

        successor = await journal.claim([partition], "new owner")

        assert successor.unfinished == second  # batch 0 was marked done
        [head] = await execute(
            session,
            f"SELECT next_batch, end_batch FROM {ks}.journal_log WHERE lease = %s AND segment = 0 LIMIT 1",
            (old,),
        )
        assert (head.next_batch, head.end_batch) == (-1, 2)  # its owner's next `IF next_batch = 2` fails
        assert await journal.read(member_id) == first + second
    finally:
        await asyncio.to_thread(cluster.shutdown)


class ClaimerThatLetsTheOwnerWriteRightAfterItReadTheLog(CassandraJournal):
    """A claim during which the owner writes a batch, and checks the seal, between the claimer's read of the log
    and its recording of the end (the claimer is slow there, or the owner fast)."""

    owner_writes: Callable[[], Awaitable[None]] | None = None

    async def _first_missing(self, lease_id: UUID) -> int:
        end = await super()._first_missing(lease_id)
        if self.owner_writes is not None:
            await self.owner_writes()
        return end


async def test_a_batch_written_after_the_claimer_read_the_log_counts_because_the_seal_was_written_first(
    settings: Settings,
) -> None:
    """Write then read, both sides at once: the claimer has read the log without the owner's next batch, and the
    owner writes it then. The claimer wrote the seal before it read, so the owner's read finds it and records the
    end past its batch before the claimer records its own: the batch counts on both sides (with the seal written
    after the read, or not at all, the owner would find none and be told its batch was appended while the claimer
    recorded an end before it: an acknowledged batch lost)."""
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    try:
        journal = CassandraJournal(session, settings.cassandra_keyspace)
        partition, member_id = a_partition(), uuid4()
        owner = await journal.claim([partition], "owner")
        first, late = batch(member_id, 1, 1), batch(member_id, 2, 1)
        await journal.append_batch(owner, [MemberAppend(member_id, 0, tuple(first))])
        acked: list[int] = []

        async def owner_writes() -> None:
            acked.append(await journal.append_batch(owner, [MemberAppend(member_id, 1, tuple(late))]))

        claimer = ClaimerThatLetsTheOwnerWriteRightAfterItReadTheLog(session, settings.cassandra_keyspace)
        claimer.owner_writes = owner_writes
        successor = await claimer.claim([partition], "claimer")

        assert acked == [1] and owner.sealed
        assert successor.unfinished == first + late
        assert await journal.read(member_id) == first + late
    finally:
        await asyncio.to_thread(cluster.shutdown)


class ClaimerWhoseEndGetsNoAnswer(CassandraJournal):
    """Cassandra does not answer the claimer's recording of where the sealed lease ends (it may or may not land)."""

    async def _run(self, statement: Any, params: Any = None) -> Any:
        if statement is self._record_end:
            await super()._run(statement, params)  # it lands; the answer is lost
            raise StoreUnavailable("Cassandra did not answer within 5.0s")
        return await super()._run(statement, params)


async def test_a_claim_whose_recording_of_the_end_gets_no_answer_raises_and_the_next_claim_finds_that_end(
    settings: Settings,
) -> None:
    """`claim`'s contract: StoreUnavailable when Cassandra does not answer, nothing owned, claiming again is safe."""
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    try:
        journal = CassandraJournal(session, settings.cassandra_keyspace)
        partition, member_id, owner, events = await an_owner_with_one_batch(journal, "owner")

        with pytest.raises(StoreUnavailable):
            await ClaimerWhoseEndGetsNoAnswer(session, settings.cassandra_keyspace).claim([partition], "claimer")

        successor = await journal.claim([partition], "claimer, again")
        assert successor.unfinished == events and await journal.read(member_id) == events
        with pytest.raises(LeaseLost):
            await journal.append_batch(owner, [MemberAppend(member_id, 2, tuple(batch(member_id, 3, 1)))])
    finally:
        await asyncio.to_thread(cluster.shutdown)
