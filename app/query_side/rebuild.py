"""Rebuild a read model from the Cassandra journal, and verify every read model against it.

The journal is the truth: `expected_rows` replays every member's events through the same projections the agents
use. `verify` compares each read model with that, row by row, and lists every difference. `rebuild` replaces a
read model's rows with it. A rebuild is an offline repair: stop the workers that write that model first and let
the pipeline drain (the command refuses otherwise, unless forced), because an event that is in the journal but not
yet projected would otherwise be counted twice by the PostgreSQL projection, which adds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from app.command_side.journal import CassandraJournal
from app.query_side.projections import POPULAR_ITEMS, PROJECTIONS, VENDOR_BILLING, Row, RowState
from app.runtime import Runtime

VENDOR_BILLING_SQL = "vendor_billing_sql"
READ_MODELS = {
    POPULAR_ITEMS: "Cassandra item_quantity_by_day and popular_items_by_day",
    VENDOR_BILLING: "Cassandra balance_by_vendor",
    VENDOR_BILLING_SQL: "PostgreSQL vendor_billing",
}
SOURCE = {POPULAR_ITEMS: POPULAR_ITEMS, VENDOR_BILLING: VENDOR_BILLING, VENDOR_BILLING_SQL: VENDOR_BILLING}

Rows = dict[Row, RowState]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Difference:
    read_model: str
    row: Row
    expected: Decimal | None
    actual: Decimal | None

    def __str__(self) -> str:
        return f"{self.read_model} {'/'.join(self.row)}: journal says {self.expected}, read model has {self.actual}"


def progress_bar(label: str) -> Progress:
    """A progress bar on stderr (members done / members)."""

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} members", end="", file=sys.stderr)
        if done == total:
            print(file=sys.stderr)

    return show


async def expected_rows(journal: CassandraJournal, progress: Progress | None = None) -> dict[str, Rows]:
    """Every projection's rows, recomputed from the whole journal."""
    rows: dict[str, Rows] = {name: {} for name in PROJECTIONS}
    members = await journal.members()
    for done, member in enumerate(members, start=1):
        for event in await journal.read(member):
            for name, project in PROJECTIONS.items():
                # The journal has no Kafka positions; a sequence per row counts the updates (the row's version).
                update = project(event, 0, 0)
                if update is not None:
                    state = rows[name].get(update.row, RowState())
                    rows[name][update.row] = RowState(
                        state.total + update.delta, update.name, state.version + 1, {}, update.occurred_at.isoformat()
                    )
        if progress is not None:
            progress(done, len(members))
    if progress is not None and not members:
        progress(0, 0)
    return rows


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


async def rebuild(runtime: Runtime, read_model: str, progress: Progress | None = None) -> int:
    """Replace the read model's rows with the journal's; the number of rows written."""
    rows = (await expected_rows(await runtime.journal(), progress))[SOURCE[read_model]]
    if read_model == VENDOR_BILLING_SQL:
        await (await runtime.vendor_billing_sql()).replace_all(rows)
    else:
        await (await runtime.read_models()).replace_all(read_model, rows)
    return len(rows)
