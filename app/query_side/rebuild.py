"""Rebuild a read model from the Cassandra journal, and verify every read model against it.

The journal is the truth: `expected_rows` reads every event of the journal (a parallel scan of the table by token
ranges, `CassandraJournal.scan`) through the same projections the agents use. `verify` compares each read model
with that, row by row, and lists every difference. `rebuild` replaces a read model's rows with it. A rebuild is an
offline repair: stop the workers that write that model first and let the pipeline drain (the command refuses
otherwise, unless forced), because an event that is in the journal but not yet projected would otherwise be
counted twice by the PostgreSQL projection, which adds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from app.command_side.journal import CassandraJournal, JournalPage
from app.query_side.projections import (
    POPULAR_ITEMS,
    PROJECTED_EVENT_TYPES,
    PROJECTIONS,
    VENDOR_BILLING,
    Row,
    RowState,
    RowUpdate,
    purchase_of,
)
from app.runtime import Runtime
from app.settings import Settings
from app.stores.cassandra import connect_async

VENDOR_BILLING_SQL = "vendor_billing_sql"
READ_MODELS = {
    POPULAR_ITEMS: "Cassandra item_quantity_by_vendor_month and popular_items_by_day",
    VENDOR_BILLING: "Cassandra balance_by_vendor",
    VENDOR_BILLING_SQL: "PostgreSQL vendor_billing",
}
SOURCE = {POPULAR_ITEMS: POPULAR_ITEMS, VENDOR_BILLING: VENDOR_BILLING, VENDOR_BILLING_SQL: VENDOR_BILLING}

Rows = dict[Row, RowState]
PARALLEL_FROM_MEMBERS = 2000  # a smaller journal is read in seconds; starting processes would take longer
Progress = Callable[[int, int | None, str], None]
"""Told how far the work has got: (done, the total if known, a detail); app.tools.progress.ProgressLine.update."""


@dataclass(frozen=True)
class Difference:
    read_model: str
    row: Row
    expected: Decimal | None
    actual: Decimal | None

    def __str__(self) -> str:
        return f"{self.read_model} {'/'.join(self.row)}: journal says {self.expected}, read model has {self.actual}"


@dataclass
class RowSum:
    """A row being summed from the journal; mutable, so that a million updates do not each build a RowState."""

    total: Decimal
    name: str
    updates: int
    last: tuple[datetime, int, str]  # (occurred_at, seq_nr, member id) of the update whose name the row shows

    def add(self, update: RowUpdate) -> None:
        self.total += update.delta
        self.updates += 1
        # The scan brings members in no useful order; the newest purchase's name is the one the live owner, which
        # applies the updates about in time order, ends up with. Purchases at the same millisecond (the items of one
        # checkout) go by the member's order, as the live owner applies them, then by member: so the rows do not
        # depend on how the scan was split between processes.
        newest = newest_key(update)
        if newest >= self.last:
            self.name, self.last = update.name, newest

    def merge(self, other: RowSum) -> None:
        self.total += other.total
        self.updates += other.updates
        if other.last >= self.last:
            self.name, self.last = other.name, other.last

    def state(self) -> RowState:
        # The journal has no Kafka positions (no marks); `version` counts the updates, as the live owner's does.
        return RowState(self.total, self.name, self.updates, {}, self.last[0].isoformat())


def newest_key(update: RowUpdate) -> tuple[datetime, int, str]:
    # Canonical UUID texts (fixed length, fixed dashes, lowercase hex) order as the UUIDs' numbers do.
    return update.occurred_at, update.seq_nr, update.member_id


@dataclass
class JournalSums:
    """What (part of) the journal adds up to: per projection its rows, and the members and events read."""

    rows: dict[str, dict[Row, RowSum]] = field(default_factory=lambda: {name: {} for name in PROJECTIONS})
    members: set[UUID] = field(default_factory=set)
    events: int = 0

    def absorb(self, page: JournalPage) -> None:
        """A page of the journal through the projections (only the event types they use are decoded)."""
        for event in page.events(PROJECTED_EVENT_TYPES):
            purchase = purchase_of(event)
            if purchase is None:
                continue
            for name, project in PROJECTIONS.items():
                update = project(purchase, 0, 0)
                row = self.rows[name].get(update.row)
                if row is None:
                    self.rows[name][update.row] = RowSum(update.delta, update.name, 1, newest_key(update))
                else:
                    row.add(update)
        self.members.update(page.member_ids())
        self.events += len(page)

    def merge(self, other: JournalSums) -> None:
        for name, rows in other.rows.items():
            mine = self.rows[name]
            for key, row in rows.items():
                if key in mine:
                    mine[key].merge(row)
                else:
                    mine[key] = row
        self.members |= other.members
        self.events += other.events

    def states(self) -> dict[str, Rows]:
        return {name: {row: summed.state() for row, summed in rows.items()} for name, rows in self.rows.items()}


async def expected_rows(
    runtime: Runtime, progress: Progress | None = None, processes: int | None = None
) -> dict[str, Rows]:
    """Every projection's rows, recomputed from the whole journal. Progress counts the members whose events have
    been read against the members in the index (`members`), and the events read.

    Decoding and projecting cost far more CPU than Cassandra spends reading, and one Python process uses one core:
    a journal of `PARALLEL_FROM_MEMBERS` members or more is read by `processes` worker processes (default: one per
    core, at most 4), each scanning its share of the token ranges; their sums are merged here. The processes are
    spawned (not forked: the driver runs threads), so a script that calls this must guard its entry point with
    `if __name__ == "__main__":`, as `cart` does."""
    journal = await runtime.journal()
    indexed = len(await journal.members())
    if processes is None:
        processes = min(os.cpu_count() or 1, 4) if indexed >= PARALLEL_FROM_MEMBERS else 1
    if progress is not None:
        progress(0, indexed, "0 events")
    if processes <= 1:
        sums = JournalSums()

        def absorb(page: JournalPage) -> None:
            sums.absorb(page)
            if progress is not None:
                progress(len(sums.members), indexed, f"{sums.events:,} events")

        await journal.scan(absorb)
    else:
        sums = await _in_processes(runtime.settings, processes, indexed, progress)
    if progress is not None:
        progress(len(sums.members), indexed, f"{sums.events:,} events")
    return sums.states()


async def _in_processes(settings: Settings, processes: int, indexed: int, progress: Progress | None) -> JournalSums:
    context = multiprocessing.get_context("spawn")  # the driver runs threads: a forked copy of them is unsafe
    counters = context.Array("q", 2 * processes, lock=False)  # per process: members and events read so far
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_keep, initargs=(counters,)) as pool:
        parts = [loop.run_in_executor(pool, _sum_part, settings, part, processes) for part in range(processes)]
        pending: set[asyncio.Future[JournalSums]] = set(parts)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=0.25)
            if progress is not None:  # a member whose buckets fall in two shares counts twice until the end
                progress(min(sum(counters[0::2]), indexed), indexed, f"{sum(counters[1::2]):,} events")
        sums = JournalSums()
        for part in parts:
            sums.merge(part.result())
    return sums


_counters: Any = None


def _keep(counters: Any) -> None:
    global _counters
    _counters = counters


def _sum_part(settings: Settings, part: int, parts: int) -> JournalSums:
    """In a worker process: the sums of share `part` of `parts` of the journal's token ranges."""
    return asyncio.run(_scan_part(settings, part, parts))


async def _scan_part(settings: Settings, part: int, parts: int) -> JournalSums:
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    try:
        journal = CassandraJournal(session, settings.cassandra_keyspace, settings.journal_bucket_size)
        sums = JournalSums()

        def absorb(page: JournalPage) -> None:
            sums.absorb(page)
            _counters[2 * part], _counters[2 * part + 1] = len(sums.members), sums.events

        await journal.scan(absorb, part=part, parts=parts)
        return sums
    finally:
        cluster.shutdown()


async def actual_rows(runtime: Runtime, read_model: str) -> dict[Row, Decimal]:
    if read_model == VENDOR_BILLING_SQL:
        return await (await runtime.vendor_billing_sql()).all_rows()
    return await (await runtime.read_models()).all_rows(read_model)


def compare(read_model: str, expected: Rows, actual: dict[Row, Decimal]) -> list[Difference]:
    differences = []
    for row in sorted(set(expected) | set(actual)):
        want = expected[row].total if row in expected else None
        have = actual.get(row)
        if want is None or have is None or want != have:
            differences.append(Difference(read_model, row, want, have))
    return differences


async def verify(runtime: Runtime, read_models: list[str], progress: Progress | None = None) -> list[Difference]:
    """Every difference between the read models and the journal (none: they agree to the cent)."""
    expected = await expected_rows(runtime, progress)
    differences: list[Difference] = []
    for read_model in read_models:
        differences += compare(read_model, expected[SOURCE[read_model]], await actual_rows(runtime, read_model))
    return differences


async def rows_from_journal(runtime: Runtime, read_model: str, progress: Progress | None = None) -> Rows:
    """The read model's rows as the journal has them."""
    return rows_for(await expected_rows(runtime, progress), read_model)


async def replace_rows(runtime: Runtime, read_model: str, rows: Rows, progress: Progress | None = None) -> None:
    """Replace every row of the read model with these."""
    if read_model == VENDOR_BILLING_SQL:
        await (await runtime.vendor_billing_sql()).replace_all(rows)
        if progress is not None:
            progress(len(rows), len(rows), "")
    else:
        await (await runtime.read_models()).replace_all(read_model, rows, progress)


async def rebuild(
    runtime: Runtime, read_model: str, reading: Progress | None = None, writing: Progress | None = None
) -> int:
    """Replace the read model's rows with the journal's; the number of rows written."""
    rows = await rows_from_journal(runtime, read_model, reading)
    await replace_rows(runtime, read_model, rows, writing)
    return len(rows)


def rows_for(expected: dict[str, Rows], read_model: str) -> Rows:
    """The read model's rows out of every projection's (one scan of the journal serves all read models)."""
    return expected[SOURCE[read_model]]
