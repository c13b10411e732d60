"""The read models' stores: how rows are written by the projections, queried by the API, and read and replaced by
verify and rebuild. All CQL and SQL of the query side is here.

Contracts:
- Cassandra (`CassandraReadModels.write_*`): the row's owner writes the row's absolute value, not an increment,
  and in the same row its marks (the cart-events positions the value includes) and last event time, with
  `USING TIMESTAMP <version>` (the number of updates the value includes). Writing the same state twice is a no-op,
  a stale owner's older state cannot overwrite a newer one, and a reader gets a row's value and marks from one
  write (a row is written atomically and in isolation), so marks that include a position mean the value does. A
  failed write raises; the agent retries it (`process_reliably`) before it acknowledges the message. (Until
  2026-12-05 the marks were rows of their own in `projection_rows`, written after the values: a third write per
  popular item, to a partition of its own, which was the costliest of the three: docs/benchmarks.md.)
- PostgreSQL (`PostgresVendorBilling.apply`): the balance change and the consumed positions (the offset of the
  vendor-billing-updates message, the update's cart-events position) commit in one transaction, and a position
  already applied changes nothing: exactly once in effect on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from cassandra.cluster import Session

from app.query_side.projections import (
    POPULAR_ITEMS,
    POSITION_SCALE,
    VENDOR_BILLING,
    Row,
    RowState,
    RowUpdate,
    popular_items_row,
    vendor_billing_row,
)
from app.stores.cassandra import execute, execute_all, scan, unlogged_batches


@dataclass(frozen=True)
class Freshness:
    """How far a row (or a set of rows) has got: the cart-events positions it includes (partition -> source
    position, see RowUpdate.source_position) and its last event time."""

    marks: Mapping[int, int]
    last_event_at: datetime | None

    def includes(self, partition: int, offset: int) -> bool:
        return self.marks.get(partition, -1) >= offset * POSITION_SCALE

    def to_json(self) -> dict[str, Any]:
        return {
            "positions": {str(p): o // POSITION_SCALE for p, o in sorted(self.marks.items())},
            "lastEventAt": self.last_event_at.isoformat() if self.last_event_at else None,
        }


def freshness_of(rows: Iterable[Any]) -> Freshness:
    """How far read-model rows read from Cassandra (with their `marks` and `last_event_at`) have got, together."""
    return merge(
        [Freshness(dict(r.marks or {}), r.last_event_at.replace(tzinfo=UTC) if r.last_event_at else None) for r in rows]
    )


def _time(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


# Rows to a request: about 100-150 bytes each, under the batch size Cassandra warns about (64 KiB here); with
# 200-character names of 4-byte characters about 200 KiB, still far under the 640 KiB it refuses.
ROWS_PER_REQUEST = 200


def merge(freshness: list[Freshness]) -> Freshness:
    marks: dict[int, int] = {}
    for f in freshness:
        for p, o in f.marks.items():
            marks[p] = max(o, marks.get(p, -1))
    times = [f.last_event_at for f in freshness if f.last_event_at is not None]
    return Freshness(marks, max(times) if times else None)


class CassandraReadModels:
    def __init__(self, session: Session, keyspace: str, timeout_s: float = 5.0) -> None:
        self.session = session
        self.keyspace = keyspace
        self.timeout_s = timeout_s
        ks = keyspace
        p = session.prepare
        self._write_quantity = p(
            f"INSERT INTO {ks}.item_quantity_by_vendor_month (vendorid, year, month, productid, day, quantity, name, "
            "marks, last_event_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._write_day = p(
            f"INSERT INTO {ks}.popular_items_by_day (year, month, day, vendorid, productid, quantity, name) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._write_balance = p(
            f"INSERT INTO {ks}.balance_by_vendor (vendorid, year, month, balance, marks, last_event_at) "
            "VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        # How many leading values of each write are its partition key: the writes are grouped by partition.
        self._partition_key_width = {self._write_quantity: 3, self._write_day: 3, self._write_balance: 2}
        self._read_quantities = p(
            f"SELECT day, quantity, name, marks, last_event_at FROM {ks}.item_quantity_by_vendor_month "
            "WHERE vendorid = ? AND year = ? AND month = ? AND productid = ?"
        )
        self._read_day = p(
            f"SELECT vendorid, productid, quantity, name FROM {ks}.popular_items_by_day "
            "WHERE year = ? AND month = ? AND day = ?"
        )
        self._read_balances = p(
            f"SELECT month, balance, marks, last_event_at FROM {ks}.balance_by_vendor WHERE vendorid = ? AND year = ?"
        )

    def _by_partition(
        self, writes: Iterable[tuple[Any, tuple[Any, ...]]]
    ) -> dict[tuple[Any, ...], list[tuple[Any, tuple[Any, ...]]]]:
        """Writes grouped by the partition they write (statement and partition key), in the order given."""
        grouped: dict[tuple[Any, ...], list[tuple[Any, tuple[Any, ...]]]] = {}
        for statement, params in writes:
            key = (statement, *params[: self._partition_key_width[statement]])
            grouped.setdefault(key, []).append((statement, params))
        return grouped

    def _popular_item_writes(self, row: Row, state: RowState) -> list[tuple[Any, tuple[Any, ...]]]:
        vendor, product, year, month, day = UUID(row[0]), UUID(row[1]), int(row[2]), int(row[3]), int(row[4])
        quantity, ts, marks, last = int(state.total), state.version, dict(state.marks), _time(state.last_event_at)
        return [
            (self._write_quantity, (vendor, year, month, product, day, quantity, state.name, marks, last, ts)),
            (self._write_day, (year, month, day, vendor, product, quantity, state.name, ts)),
        ]

    def _vendor_balance_writes(self, row: Row, state: RowState) -> list[tuple[Any, tuple[Any, ...]]]:
        vendor, year, month = UUID(row[0]), int(row[1]), int(row[2])
        marks, last = dict(state.marks), _time(state.last_event_at)
        return [(self._write_balance, (vendor, year, month, state.total, marks, last, state.version))]

    async def write_popular_items(self, rows: Sequence[tuple[Row, RowState]]) -> None:
        """Many rows' absolute values (with their marks), in few requests, each table's rows grouped by partition
        (Cassandra makes a request's rows of one partition one mutation, and a write costs it far more per partition
        than per row): item_quantity_by_vendor_month's, a vendor's month in one partition, and popular_items_by_day's,
        a day's in one partition, up to ROWS_PER_REQUEST to a request."""
        by_partition = self._by_partition(w for row, state in rows for w in self._popular_item_writes(row, state))
        quantities = [w for key, writes in by_partition.items() if key[0] is self._write_quantity for w in writes]
        await asyncio.gather(
            self._write_unlogged(quantities),
            *(self._write_unlogged(day) for key, day in by_partition.items() if key[0] is self._write_day),
        )

    async def write_vendor_balances(self, rows: Sequence[tuple[Row, RowState]]) -> None:
        """As `write_popular_items`, for balance_by_vendor (a vendor's year in one partition)."""
        by_partition = self._by_partition(w for row, state in rows for w in self._vendor_balance_writes(row, state))
        await self._write_unlogged([w for writes in by_partition.values() for w in writes])

    async def _write_unlogged(self, statements: Sequence[tuple[Any, tuple[Any, ...]]]) -> None:
        await asyncio.gather(
            *(
                execute(self.session, batch, timeout_s=self.timeout_s)
                for batch in unlogged_batches(statements, ROWS_PER_REQUEST)
            )
        )

    async def quantities_by_day(
        self, vendor: UUID, product: UUID, year: int, month: int
    ) -> tuple[list[dict[str, Any]], Freshness]:
        """A product's days of a month, and how far they have got (from the same rows: one read)."""
        rows = list(await execute(self.session, self._read_quantities, (vendor, year, month, product), self.timeout_s))
        days = [{"day": r.day, "quantity": r.quantity, "name": r.name} for r in rows]
        return days, freshness_of(rows)

    async def most_popular(self, year: int, month: int, day: int, limit: int) -> list[dict[str, Any]]:
        rows = list(await execute(self.session, self._read_day, (year, month, day), 30.0))
        rows.sort(key=lambda r: (-r.quantity, r.name or "", str(r.productid)))
        return [
            {"vendorId": str(r.vendorid), "productId": str(r.productid), "name": r.name, "quantity": r.quantity}
            for r in rows[:limit]
        ]

    async def balances(self, vendor: UUID, year: int) -> tuple[list[dict[str, Any]], Freshness]:
        """A vendor's months of a year, and how far they have got (from the same rows: one read)."""
        rows = list(await execute(self.session, self._read_balances, (vendor, year), self.timeout_s))
        months = sorted(({"month": r.month, "balance": r.balance} for r in rows), key=lambda r: r["month"])
        return months, freshness_of(rows)

    # --- For the operator: every row (verify), replacing every row (rebuild), freshness (status). ---------

    async def _every_row(self, projection: str, column: str) -> dict[Row, Any]:
        """Every row of a projection's table with one of its columns."""
        ks = self.keyspace
        if projection == POPULAR_ITEMS:
            query = f"SELECT vendorid, productid, year, month, day, {column} FROM {ks}.item_quantity_by_vendor_month"
            found = await scan(self.session, query, page_size=5000)
            return {popular_items_row(r.vendorid, r.productid, r.year, r.month, r.day): r[-1] for r in found}
        query = f"SELECT vendorid, year, month, {column} FROM {ks}.balance_by_vendor"
        found = await scan(self.session, query, page_size=5000)
        return {vendor_billing_row(r.vendorid, r.year, r.month): r[-1] for r in found}

    async def all_rows(self, projection: str) -> dict[Row, Decimal]:
        """Every row of a projection's table, with its total (quantity or balance)."""
        total = "quantity" if projection == POPULAR_ITEMS else "balance"
        return {row: Decimal(value) for row, value in (await self._every_row(projection, total)).items()}

    async def replace_all(
        self,
        projection: str,
        rows: Mapping[Row, RowState],
        progress: Callable[[int, int | None, str], None] | None = None,
        concurrency: int = 16,
        rows_per_batch: int = 100,
    ) -> None:
        """Empty a projection's tables and write these rows, each with the marks its live row had (the journal
        knows no Kafka positions; what the live row included, the journal's row does too, so a reader waiting for a
        position is not made to wait again by a rebuild). The writes are grouped by partition into unlogged batches
        (each one mutation of one partition: a day of popular_items_by_day takes a few requests instead of one per
        product), `concurrency` in flight. A row's two tables are no longer written in one batch: a rebuild is an
        offline repair, and one that fails is run again from the TRUNCATE (a row lost by the failed run has no
        marks to carry over)."""
        tables = (
            ["item_quantity_by_vendor_month", "popular_items_by_day"]
            if projection == POPULAR_ITEMS
            else ["balance_by_vendor"]
        )
        live = await self.all_marks(projection)
        for table in tables:
            await execute(self.session, f"TRUNCATE {self.keyspace}.{table}", timeout_s=60)
        writes = self._popular_item_writes if projection == POPULAR_ITEMS else self._vendor_balance_writes
        by_partition = self._by_partition(
            w for row, state in rows.items() for w in writes(row, state._replace(marks=live.get(row, {})))
        )
        batches = [
            (batch, None)
            for partition in by_partition.values()
            for batch in unlogged_batches(partition, rows_per_batch)
        ]
        total = len(rows) * len(tables)  # writes: one per row and table

        def written(done: int) -> None:
            if progress is not None:
                progress(len(rows) * done // len(batches), len(rows), f"{done:,}/{len(batches):,} batches")

        await execute_all(self.session, batches, concurrency, 30.0, written)
        if progress is not None:
            progress(len(rows), len(rows), f"{total:,} writes in {len(batches):,} batches")

    async def all_marks(self, projection: str) -> dict[Row, dict[int, int]]:
        """Every row of a projection's table that has marks, with them."""
        return {row: marks for row, marks in (await self._every_row(projection, "marks")).items() if marks}

    async def newest_event_at(self) -> dict[str, datetime | None]:
        """Per projection, the time of the newest event it has applied (a scan of its rows)."""
        newest: dict[str, datetime | None] = {}
        for projection, table in (
            (POPULAR_ITEMS, "item_quantity_by_vendor_month"),
            (VENDOR_BILLING, "balance_by_vendor"),
        ):
            rows = await scan(self.session, f"SELECT last_event_at FROM {self.keyspace}.{table}", page_size=5000)
            times = [r.last_event_at.replace(tzinfo=UTC) for r in rows if r.last_event_at is not None]
            newest[projection] = max(times, default=None)
        return newest


class PostgresVendorBilling:
    """Vendor billing in PostgreSQL: `vendor_billing` rows, `vendor_billing_offsets` and
    `vendor_billing_positions`, one transaction per consumed message."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def answers(self, timeout_s: float) -> None:
        """Returns when PostgreSQL answers a query within `timeout_s`; raises otherwise (for `/ready`)."""
        async with self.pool.acquire(timeout=timeout_s) as conn:
            await conn.fetchval("SELECT 1", timeout=timeout_s)

    async def last_offset(self, partition: int) -> int | None:
        """The last offset of `partition` of vendor-billing-updates applied here (None: none yet)."""
        async with self.pool.acquire() as conn:
            offset = await conn.fetchval(
                "SELECT last_offset FROM vendor_billing_offsets WHERE partition = $1", partition
            )
        return None if offset is None or offset < 0 else int(offset)

    async def apply(self, update: RowUpdate | None, partition: int, offset: int) -> bool:
        """One message (see `apply_batch`); False if it changed nothing."""
        return await self.apply_batch(partition, [(offset, None if update is None else [update])]) > 0

    async def apply_batch(self, partition: int, messages: Sequence[tuple[int, Sequence[RowUpdate] | None]]) -> int:
        """Apply a run of messages of `partition` of vendor-billing-updates (in offset order, each its updates in
        source order; None for a malformed one, which only moves the offset) in one transaction; how many counted
        (updates applied, malformed messages passed).

        A message at or below the partition's last applied offset, and an update at or below the position already
        applied from its cart-events partition (the same update sent twice by `purchases`), change nothing. The
        offset, the positions and the balances commit together. The offset row is locked first, so two owners of
        the partition take turns and the second finds the work done."""
        async with self.pool.acquire() as conn, conn.transaction():
            # One statement that creates the row if need be, locks it, and says where the partition is.
            last = await conn.fetchval(
                "INSERT INTO vendor_billing_offsets AS o (partition, last_offset) VALUES ($1, -1) "
                "ON CONFLICT (partition) DO UPDATE SET last_offset = o.last_offset RETURNING o.last_offset",
                partition,
            )
            fresh = [(offset, update) for offset, update in messages if offset > last]
            if not fresh:
                return 0
            marks = {
                r["source_partition"]: r["source_position"]
                for r in await conn.fetch(
                    "SELECT source_partition, source_position FROM vendor_billing_positions WHERE partition = $1",
                    partition,
                )
            }
            moved: dict[int, datetime] = {}
            deltas: dict[Row, Decimal] = {}
            applied = 0
            for _, updates in fresh:
                if updates is None:
                    applied += 1  # malformed: nothing to apply, but the offset moves past it
                    continue
                for update in updates:
                    if update.source_position <= marks.get(update.source_partition, -1):
                        continue
                    marks[update.source_partition] = update.source_position
                    newest = moved.get(update.source_partition, update.occurred_at)
                    moved[update.source_partition] = max(update.occurred_at, newest)
                    deltas[update.row] = deltas.get(update.row, Decimal(0)) + update.delta
                    applied += 1
            await conn.execute(
                "UPDATE vendor_billing_offsets SET last_offset = $2 WHERE partition = $1", partition, fresh[-1][0]
            )
            if moved:
                await conn.executemany(
                    "INSERT INTO vendor_billing_positions AS p (partition, source_partition, source_position, "
                    "last_event_at) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (partition, source_partition) DO UPDATE SET "
                    "source_position = EXCLUDED.source_position, "
                    "last_event_at = GREATEST(p.last_event_at, EXCLUDED.last_event_at)",
                    [(partition, source, marks[source], at) for source, at in sorted(moved.items())],
                )
            if deltas:
                await conn.executemany(
                    "INSERT INTO vendor_billing (vendor_id, year, month, balance) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (vendor_id, year, month) DO UPDATE SET balance = vendor_billing.balance + $4",
                    [(UUID(row[0]), int(row[1]), int(row[2]), delta) for row, delta in sorted(deltas.items())],
                )
        return applied

    async def balances(self, vendor: UUID, year: int) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT month, balance FROM vendor_billing WHERE vendor_id = $1 AND year = $2 ORDER BY month",
                vendor,
                year,
            )
        return [{"month": r["month"], "balance": Decimal(r["balance"])} for r in rows]

    async def all_rows(self) -> dict[Row, Decimal]:
        """Every row of vendor_billing, with its balance."""
        async with self.pool.acquire() as conn:
            records = await conn.fetch("SELECT vendor_id, year, month, balance FROM vendor_billing")
        return {vendor_billing_row(r["vendor_id"], r["year"], r["month"]): Decimal(r["balance"]) for r in records}

    async def replace_all(self, rows: Mapping[Row, RowState]) -> None:
        """Replace every row of vendor_billing with these, in one transaction (COPY; the positions are left
        alone)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM vendor_billing")
            await conn.copy_records_to_table(
                "vendor_billing",
                records=[(UUID(row[0]), int(row[1]), int(row[2]), state.total) for row, state in rows.items()],
                columns=["vendor_id", "year", "month", "balance"],
            )

    async def newest_event_at(self) -> datetime | None:
        """The time of the newest event applied."""
        async with self.pool.acquire() as conn:
            newest: datetime | None = await conn.fetchval("SELECT max(last_event_at) FROM vendor_billing_positions")
        return newest

    async def freshness(self, partition: int) -> Freshness:
        """How far the consumer of one vendor-billing-updates partition has got, per cart-events partition."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT source_partition, source_position, last_event_at FROM vendor_billing_positions "
                "WHERE partition = $1",
                partition,
            )
        times = [r["last_event_at"] for r in rows]
        marks = {r["source_partition"]: r["source_position"] for r in rows}
        return Freshness(marks, max(times) if times else None)
