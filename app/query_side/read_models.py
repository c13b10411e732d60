"""The read models' stores: how rows are written by the projections, queried by the API, and read and replaced by
verify and rebuild. All CQL and SQL of the query side is here.

Contracts:
- Cassandra (`CassandraReadModels.write_*`): the row's owner writes the row's absolute value, not an increment,
  with `USING TIMESTAMP <version>` (the number of updates the value includes), then its tracking row (marks).
  Writing the same state twice is a no-op, and a stale owner's older state cannot overwrite a newer one. The
  tracking row is written after the value, not in a batch with it (a batch is atomic but not isolated), so marks
  that include a position mean the value already does: readers read the marks first, then the rows. A failed
  write raises; the agent retries it (`process_reliably`) before it acknowledges the message.
- PostgreSQL (`PostgresVendorBilling.apply`): the balance change and the consumed positions (the offset of the
  vendor-billing-updates message, the update's cart-events position) commit in one transaction, and a position
  already applied changes nothing: exactly once in effect on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType

from app.query_side.projections import (
    POPULAR_ITEMS,
    POSITION_SCALE,
    VENDOR_BILLING,
    Row,
    RowState,
    RowUpdate,
    popular_items_row,
    row_key,
    vendor_billing_row,
)
from app.stores.cassandra import execute, execute_all, scan


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
            f"INSERT INTO {ks}.item_quantity_by_day (vendorid, productid, year, month, day, quantity, name) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._write_day = p(
            f"INSERT INTO {ks}.popular_items_by_day (year, month, day, vendorid, productid, quantity, name) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._write_balance = p(
            f"INSERT INTO {ks}.balance_by_vendor (vendorid, year, month, balance) VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
        )
        # How many leading values of each write are its partition key: rebuild batches the writes per partition.
        self._partition_key_width = {self._write_quantity: 4, self._write_day: 3, self._write_balance: 2}
        self._write_tracking = p(
            f"INSERT INTO {ks}.projection_rows (projection, row_key, version, marks, last_event_at) "
            "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._read_quantities = p(
            f"SELECT day, quantity, name FROM {ks}.item_quantity_by_day "
            "WHERE vendorid = ? AND productid = ? AND year = ? AND month = ?"
        )
        self._read_day = p(
            f"SELECT vendorid, productid, quantity, name FROM {ks}.popular_items_by_day "
            "WHERE year = ? AND month = ? AND day = ?"
        )
        self._read_balances = p(f"SELECT month, balance FROM {ks}.balance_by_vendor WHERE vendorid = ? AND year = ?")
        self._read_tracking = p(
            f"SELECT marks, last_event_at FROM {ks}.projection_rows WHERE projection = ? AND row_key = ?"
        )

    async def _write(self, statements: list[tuple[Any, tuple[Any, ...]]]) -> None:
        batch = BatchStatement(batch_type=BatchType.LOGGED)
        for statement, params in statements:
            batch.add(statement, params)
        await execute(self.session, batch, timeout_s=self.timeout_s)

    def _tracking(self, projection: str, row: Row, state: RowState) -> tuple[Any, tuple[Any, ...]]:
        last = datetime.fromisoformat(state.last_event_at) if state.last_event_at else None
        return self._write_tracking, (projection, row_key(row), state.version, dict(state.marks), last, state.version)

    def _popular_item_writes(self, row: Row, state: RowState) -> list[tuple[Any, tuple[Any, ...]]]:
        vendor, product, year, month, day = UUID(row[0]), UUID(row[1]), int(row[2]), int(row[3]), int(row[4])
        quantity, ts = int(state.total), state.version
        return [
            (self._write_quantity, (vendor, product, year, month, day, quantity, state.name, ts)),
            (self._write_day, (year, month, day, vendor, product, quantity, state.name, ts)),
        ]

    def _vendor_balance_writes(self, row: Row, state: RowState) -> list[tuple[Any, tuple[Any, ...]]]:
        vendor, year, month = UUID(row[0]), int(row[1]), int(row[2])
        return [(self._write_balance, (vendor, year, month, state.total, state.version))]

    async def write_popular_items(self, rows: Sequence[tuple[Row, RowState]]) -> None:
        """Many rows' absolute values, then their tracking rows (after: readers read marks, then values), in few
        requests."""
        await self._write_unlogged([w for row, state in rows for w in self._popular_item_writes(row, state)])
        await self._write_unlogged([self._tracking(POPULAR_ITEMS, row, state) for row, state in rows])

    async def write_vendor_balances(self, rows: Sequence[tuple[Row, RowState]]) -> None:
        """As `write_popular_items`, for balance_by_vendor."""
        await self._write_unlogged([w for row, state in rows for w in self._vendor_balance_writes(row, state)])
        await self._write_unlogged([self._tracking(VENDOR_BILLING, row, state) for row, state in rows])

    async def _write_unlogged(self, statements: Sequence[tuple[Any, tuple[Any, ...]]], per_request: int = 32) -> None:
        writes = []
        for start in range(0, len(statements), per_request):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for statement, params in statements[start : start + per_request]:
                batch.add(statement, params)
            writes.append(execute(self.session, batch, timeout_s=self.timeout_s))
        await asyncio.gather(*writes)

    async def write_popular_item(self, row: Row, state: RowState, track: bool = True) -> None:
        await self._write(self._popular_item_writes(row, state))
        if track:
            await self._write([self._tracking(POPULAR_ITEMS, row, state)])

    async def write_vendor_balance(self, row: Row, state: RowState, track: bool = True) -> None:
        await self._write(self._vendor_balance_writes(row, state))
        if track:
            await self._write([self._tracking(VENDOR_BILLING, row, state)])

    async def freshness(self, projection: str, keys: list[str]) -> Freshness:
        found = []
        for key in keys:
            for row in await execute(self.session, self._read_tracking, (projection, key), self.timeout_s):
                last = row.last_event_at.replace(tzinfo=UTC) if row.last_event_at else None
                found.append(Freshness(dict(row.marks or {}), last))
        return merge(found)

    async def quantities_by_day(self, vendor: UUID, product: UUID, year: int, month: int) -> list[dict[str, Any]]:
        rows = await execute(self.session, self._read_quantities, (vendor, product, year, month), self.timeout_s)
        return [{"day": r.day, "quantity": r.quantity, "name": r.name} for r in rows]

    async def most_popular(self, year: int, month: int, day: int, limit: int) -> list[dict[str, Any]]:
        rows = list(await execute(self.session, self._read_day, (year, month, day), 30.0))
        rows.sort(key=lambda r: (-r.quantity, r.name or "", str(r.productid)))
        return [
            {"vendorId": str(r.vendorid), "productId": str(r.productid), "name": r.name, "quantity": r.quantity}
            for r in rows[:limit]
        ]

    async def balances(self, vendor: UUID, year: int) -> list[dict[str, Any]]:
        rows = await execute(self.session, self._read_balances, (vendor, year), self.timeout_s)
        return sorted(({"month": r.month, "balance": r.balance} for r in rows), key=lambda r: r["month"])

    # --- For the operator: every row (verify), replacing every row (rebuild), freshness (status). ---------

    async def all_rows(self, projection: str) -> dict[Row, Decimal]:
        """Every row of a projection's table, with its total (quantity or balance)."""
        ks = self.keyspace
        if projection == POPULAR_ITEMS:
            found = await scan(
                self.session,
                f"SELECT vendorid, productid, year, month, day, quantity FROM {ks}.item_quantity_by_day",
                page_size=5000,
            )
            return {
                popular_items_row(r.vendorid, r.productid, r.year, r.month, r.day): Decimal(r.quantity) for r in found
            }
        found = await scan(
            self.session, f"SELECT vendorid, year, month, balance FROM {ks}.balance_by_vendor", page_size=5000
        )
        return {vendor_billing_row(r.vendorid, r.year, r.month): r.balance for r in found}

    async def replace_all(
        self,
        projection: str,
        rows: Mapping[Row, RowState],
        progress: Callable[[int, int | None, str], None] | None = None,
        concurrency: int = 16,
        rows_per_batch: int = 100,
    ) -> None:
        """Empty a projection's tables and write these rows (their tracking rows, which describe the live
        projection, are left alone). The writes are grouped by partition into unlogged batches (each one mutation
        of one partition: a day of popular_items_by_day takes a few requests instead of one per product),
        `concurrency` in flight. A row's two tables are no longer written in one batch: a rebuild is an offline
        repair, and one that fails is run again from the TRUNCATE."""
        tables = (
            ["item_quantity_by_day", "popular_items_by_day"] if projection == POPULAR_ITEMS else ["balance_by_vendor"]
        )
        for table in tables:
            await execute(self.session, f"TRUNCATE {self.keyspace}.{table}", timeout_s=60)
        writes = self._popular_item_writes if projection == POPULAR_ITEMS else self._vendor_balance_writes
        by_partition: dict[tuple[Any, ...], list[tuple[Any, tuple[Any, ...]]]] = {}
        for row, state in rows.items():
            for statement, params in writes(row, state):
                key = (statement, *params[: self._partition_key_width[statement]])
                by_partition.setdefault(key, []).append((statement, params))
        batches = []
        for partition in by_partition.values():
            for start in range(0, len(partition), rows_per_batch):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for statement, params in partition[start : start + rows_per_batch]:
                    batch.add(statement, params)
                batches.append((batch, None))
        total = len(rows) * len(tables)  # writes: one per row and table

        def written(done: int) -> None:
            if progress is not None:
                progress(len(rows) * done // len(batches), len(rows), f"{done:,}/{len(batches):,} batches")

        await execute_all(self.session, batches, concurrency, 30.0, written)
        if progress is not None:
            progress(len(rows), len(rows), f"{total:,} writes in {len(batches):,} batches")

    async def newest_event_at(self) -> dict[str, datetime | None]:
        """Per projection, the time of the newest event it has applied."""
        rows = await scan(self.session, f"SELECT projection, last_event_at FROM {self.keyspace}.projection_rows")
        newest: dict[str, datetime | None] = {POPULAR_ITEMS: None, VENDOR_BILLING: None}
        for r in rows:
            if r.projection in newest and r.last_event_at is not None:
                at = r.last_event_at.replace(tzinfo=UTC)
                previous = newest[r.projection]
                newest[r.projection] = at if previous is None else max(previous, at)
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
