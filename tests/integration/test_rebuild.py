"""Verify and rebuild (app/query_side/rebuild.py) over a journal written by the bulk loader (app/tools/bulk_load.py),
against the real Cassandra and PostgreSQL, no mocks. Every test loads fresh random members and vendors into the
test keyspace, which other tests also write to, so each looks only at its own members' and vendors' rows."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest

from app.command_side.journal import CassandraJournal, JournalPage, MemberAppend
from app.query_side.projections import POPULAR_ITEMS, VENDOR_BILLING
from app.query_side.rebuild import READ_MODELS, VENDOR_BILLING_SQL, Difference, expected_rows, rebuild, verify
from app.runtime import Runtime, prepared
from app.settings import Settings
from app.stores.cassandra import execute
from app.tools.bulk_load import Catalogue, KeyspaceHasJournal, Loaded, load_journal, member_history

ROOT = Path(__file__).resolve().parents[2]
EVENT_TYPES = {"ItemAdded", "ItemRemoved", "ItemQuantityIncreased", "ItemQuantityDecreased", "ItemPurchased"}


@pytest.fixture()
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings, migrate_first=False)
    try:
        yield runtime
    finally:
        await runtime.aclose()


async def load(runtime: Runtime, catalogue: Catalogue, events: int = 3000, members: int = 60) -> Loaded:
    journal = await runtime.journal()
    return await load_journal(journal, events, members, catalogue, random.Random(), days=40, into_existing=True)


def of_vendors(differences: list[Difference], catalogue: Catalogue) -> list[Difference]:
    vendors = {str(item.vendor_id) for item in catalogue.items}
    return [d for d in differences if d.row[0] in vendors]


async def journal_rows(journal: CassandraJournal, member_id: UUID) -> list[tuple[object, ...]]:
    """Every journal row of a member, as stored, without the member id (buckets 0..9 hold the tests' histories)."""
    found = []
    for bucket in range(10):
        rows = await execute(
            journal.session, f"SELECT * FROM {journal.keyspace}.journal WHERE member_id = %s AND bucket = %s",
            (member_id, bucket),
        )  # fmt: skip
        found += [(r.bucket, r.seq_nr, r.event_id, r.cart_id, r.command_id, r.type, r.schema_version,
                   r.occurred_at, r.payload) for r in rows]  # fmt: skip
    return found


async def test_a_bulk_written_history_is_stored_exactly_as_an_owner_stores_it(settings: Settings) -> None:
    runtime = Runtime(settings, migrate_first=False)
    try:
        session = await runtime.cassandra()
        # Buckets of 5 (a generated checkout has at most 5 events): histories straddle many buckets.
        journal = await prepared(CassandraJournal, session, settings.cassandra_keyspace, 5)
        rng = random.Random(11)
        appended, written = uuid4(), uuid4()
        history = member_history(appended, 37, Catalogue.random(2, 8, rng), rng, *two_dates())
        version = 0
        lease = await journal.claim([random.randrange(100_000, 2**31 - 1)], "test")
        for batch in history:
            appends = [MemberAppend(appended, version, tuple(batch))]
            await journal.append_batch(lease, appends)
            await journal.index(lease, appends)
            version += len(batch)
        await journal.write_history(written, [tuple(replace(e, member_id=written) for e in b) for b in history])

        stored = await journal_rows(journal, written)
        assert stored == await journal_rows(journal, appended) and len(stored) == 37
        assert len({row[0] for row in stored}) > 3  # several buckets
        assert {appended, written} <= set(await journal.members())
        assert await journal.read(written) == [replace(e, member_id=written) for b in history for e in b]
    finally:
        await runtime.aclose()


def two_dates() -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(microsecond=0)
    return end - timedelta(days=10), end


async def test_the_journal_scan_brings_every_loaded_event_exactly_once(runtime: Runtime) -> None:
    loaded = await load(runtime, Catalogue.random(2, 10, random.Random()), events=1200, members=30)
    journal = await runtime.journal()
    mine = set(loaded.member_ids)
    scanned: list[tuple[UUID, int]] = []

    def consume(page: JournalPage) -> None:
        # Every event type, which leaves out the row without an event that test_journal.py plants in this keyspace.
        scanned.extend((e.member_id, e.seq_nr) for e in page.events(EVENT_TYPES) if e.member_id in mine)

    await journal.scan(consume, splits=16, concurrency=3, page_size=100)  # small pages: many pages per range

    read = [(m, e.seq_nr) for m in mine for e in await journal.read(m)]
    assert sorted(scanned) == sorted(read)
    assert len(scanned) == 1200 == loaded.events


async def test_rebuild_then_verify_finds_no_difference_and_verify_lists_a_planted_one(
    runtime: Runtime, settings: Settings
) -> None:
    catalogue = Catalogue.random(3, 30, random.Random())
    loaded = await load(runtime, catalogue)
    assert loaded.events == 3000 and loaded.members == 60 and loaded.purchases > 0
    assert len(of_vendors(await verify(runtime, list(READ_MODELS)), catalogue)) > 0  # not projected yet

    for read_model in READ_MODELS:
        await rebuild(runtime, read_model)
    progress: list[tuple[int, int | None, str]] = []
    assert of_vendors(await verify(runtime, list(READ_MODELS), lambda *p: progress.append(p)), catalogue) == []
    seen, indexed, detail = progress[-1]
    assert indexed is not None and seen >= 60 and detail.endswith(" events")

    expected = await expected_rows(runtime)
    vendor = str(catalogue.items[0].vendor_id)
    billing = sorted(row for row in expected[VENDOR_BILLING] if row[0] == vendor)
    popular = sorted(row for row in expected[POPULAR_ITEMS] if row[0] == vendor)
    assert billing and popular
    await plant(runtime, settings, billing[0], popular[0])

    found = of_vendors(await verify(runtime, list(READ_MODELS)), catalogue)
    sums = {name: {row: state.total for row, state in rows.items()} for name, rows in expected.items()}
    assert sorted(found, key=str) == sorted(
        [
            Difference(POPULAR_ITEMS, popular[0], sums[POPULAR_ITEMS][popular[0]], None),
            Difference(VENDOR_BILLING, billing[0], sums[VENDOR_BILLING][billing[0]], Decimal("-1.00")),
            Difference(
                VENDOR_BILLING_SQL, billing[0], sums[VENDOR_BILLING][billing[0]],
                sums[VENDOR_BILLING][billing[0]] + Decimal("0.01"),
            ),
        ],
        key=str,
    )  # fmt: skip


async def test_the_journal_read_by_worker_processes_adds_up_to_the_same_rows_as_read_by_one(runtime: Runtime) -> None:
    catalogue = Catalogue.random(2, 10, random.Random())
    await load(runtime, catalogue, events=600, members=20)
    progress: list[tuple[int, int | None, str]] = []

    by_one = await expected_rows(runtime, processes=1)
    by_two = await expected_rows(runtime, lambda *p: progress.append(p), processes=2)

    assert by_two == by_one
    assert any(row[0] == str(catalogue.items[0].vendor_id) for row in by_two[VENDOR_BILLING])
    assert progress[0] == (0, progress[0][1], "0 events") and progress[-1][0] >= 20


async def plant(runtime: Runtime, settings: Settings, billing: tuple[str, ...], popular: tuple[str, ...]) -> None:
    """Lose a popular-items row, break a Cassandra balance, and add a cent to a PostgreSQL balance."""
    session, ks = await runtime.cassandra(), settings.cassandra_keyspace
    vendor, year, month = UUID(billing[0]), int(billing[1]), int(billing[2])
    await execute(
        session, f"DELETE FROM {ks}.item_quantity_by_vendor_month WHERE vendorid = %s AND year = %s AND month = %s "
        "AND productid = %s AND day = %s",
        (UUID(popular[0]), int(popular[2]), int(popular[3]), UUID(popular[1]), int(popular[4])),
    )  # fmt: skip
    await execute(
        session, f"UPDATE {ks}.balance_by_vendor SET balance = -1.00 "
        "WHERE vendorid = %s AND year = %s AND month = %s", (vendor, year, month),
    )  # fmt: skip
    conn = await asyncpg.connect(settings.postgres_dsn)
    try:
        await conn.execute(
            "UPDATE vendor_billing SET balance = balance + 0.01 WHERE vendor_id = $1 AND year = $2 AND month = $3",
            vendor, year, month,
        )  # fmt: skip
    finally:
        await conn.close()


async def test_the_loader_refuses_a_keyspace_that_has_a_journal_unless_told_to_add_to_it(runtime: Runtime) -> None:
    await load(runtime, Catalogue.random(1, 5, random.Random()), events=20, members=2)  # so there is a journal
    journal = await runtime.journal()

    with pytest.raises(KeyspaceHasJournal):
        await load_journal(journal, 20, 2, Catalogue.random(1, 5, random.Random()), random.Random(), days=1)

    cli = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.tools.cli", "load-journal", "--events", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 1
    assert cli.stderr.startswith("error: keyspace ") and "--into-existing" in cli.stderr
    assert len(cli.stderr.splitlines()) == 1 and cli.stdout == ""
