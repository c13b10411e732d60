"""Rebuild a read model from the Cassandra journal, and verify every read model against it.

The journal is the truth: `expected_rows` reads every event of the journal (a parallel scan of the table by token
ranges, `CassandraJournal.scan`) through the same projections the agents use. `verify` compares each read model
with that, row by row, and lists every difference. `rebuild` replaces a read model's rows with it. A rebuild is an
offline repair: stop the workers that write that model first and let the pipeline drain (the command refuses
otherwise, unless forced), because an event that is in the journal but not yet projected would otherwise be
counted twice by the PostgreSQL projection, which adds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
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
)
from app.runtime import Runtime

VENDOR_BILLING_SQL = "vendor_billing_sql"
READ_MODELS = {
    POPULAR_ITEMS: "Cassandra item_quantity_by_day and popular_items_by_day",
    VENDOR_BILLING: "Cassandra balance_by_vendor",
    VENDOR_BILLING_SQL: "PostgreSQL vendor_billing",
}
SOURCE = {POPULAR_ITEMS: POPULAR_ITEMS, VENDOR_BILLING: VENDOR_BILLING, VENDOR_BILLING_SQL: VENDOR_BILLING}

Rows = dict[Row, RowState]
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
    last_event_at: datetime

    def add(self, update: RowUpdate) -> None:
        self.total += update.delta
        self.updates += 1
        # The scan brings members in no useful order; the newest purchase's name is the one the live owner, which
        # applies the updates about in time order, ends up with.
        if update.occurred_at >= self.last_event_at:
            self.name, self.last_event_at = update.name, update.occurred_at

    def state(self) -> RowState:
        # The journal has no Kafka positions (no marks); `version` counts the updates, as the live owner's does.
        return RowState(self.total, self.name, self.updates, {}, self.last_event_at.isoformat())


async def expected_rows(journal: CassandraJournal, progress: Progress | None = None) -> dict[str, Rows]:
    """Every projection's rows, recomputed from the whole journal (only the event types the projections use are
    decoded). Progress counts the members whose events have been read against the members in the index
    (`members`), and the events read."""
    sums: dict[str, dict[Row, RowSum]] = {name: {} for name in PROJECTIONS}
    indexed = len(await journal.members())
    seen: set[UUID] = set()
    events = 0

    def absorb(page: JournalPage) -> None:
        nonlocal events
        for event in page.events(PROJECTED_EVENT_TYPES):
            for name, project in PROJECTIONS.items():
                update = project(event, 0, 0)
                if update is not None:
                    add(sums[name], update)
        seen.update(page.member_ids())
        events += len(page)
        if progress is not None:
            progress(len(seen), indexed, f"{events:,} events")

    if progress is not None:
        progress(0, indexed, "0 events")
    await journal.scan(absorb)
    return {name: {row: summed.state() for row, summed in rows.items()} for name, rows in sums.items()}


def add(rows: dict[Row, RowSum], update: RowUpdate) -> None:
    row = rows.get(update.row)
    if row is None:
        rows[update.row] = RowSum(update.delta, update.name, 1, update.occurred_at)
    else:
        row.add(update)


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
    expected = await expected_rows(await runtime.journal(), progress)
    differences: list[Difference] = []
    for read_model in read_models:
        differences += compare(read_model, expected[SOURCE[read_model]], await actual_rows(runtime, read_model))
    return differences


async def rows_from_journal(runtime: Runtime, read_model: str, progress: Progress | None = None) -> Rows:
    """The read model's rows as the journal has them."""
    return (await expected_rows(await runtime.journal(), progress))[SOURCE[read_model]]


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
