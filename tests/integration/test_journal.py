"""The journal's contract (tests/journal_contract.py) against the real Cassandra, no mocks.

`TestCassandraJournal` runs it against `CassandraJournal` with a tiny bucket size, so that batches straddle bucket
boundaries everywhere, and adds the checks that are about Cassandra's layout (buckets, the conditional batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest

from app.command_side.journal import CassandraJournal, ConcurrencyConflict
from app.settings import Settings
from app.stores.cassandra import connect_async, execute
from tests.journal_contract import JournalContract, Writer, append_batches, batch


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

    async def test_a_conditional_batch_that_meets_an_existing_row_anywhere_writes_none_of_its_rows(
        self, journal: CassandraJournal
    ) -> None:
        member_id = uuid4()
        # A row at seq 3 that no contract-abiding writer could have put there: only the conditional batch protects.
        await execute(
            journal.session,
            f"INSERT INTO {journal.keyspace}.journal (member_id, bucket, seq_nr) VALUES (%s, 0, 3)",
            (member_id,),
        )

        with pytest.raises(ConcurrencyConflict):
            await journal.append(member_id, 0, batch(member_id, 1, 3))

        assert await self.rows_by_bucket(journal, member_id, 2) == {0: [3], 1: []}

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
