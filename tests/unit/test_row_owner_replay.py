"""A row owner writes Cassandra before its batch's flush makes the table durable: a crash in between leaves Cassandra
ahead of the changelog. Replaying from what the changelog kept must then write the same values and versions again,
and no write of the replay may take a row back (the store keeps the highest version, as `USING TIMESTAMP` does)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

from agents.row_owner import apply_updates
from app.query_side.projections import Row, RowState, RowUpdate
from app.streams.batches import TablePositions
from tables.hydrators import JsonTable

ROWS: list[Row] = [("vendor", "2026", "12"), ("other", "2026", "12")]


def updates() -> list[tuple[int, list[RowUpdate]]]:
    """Eight messages of one update each."""
    return [(offset, [update]) for offset, update in enumerate(each_update())]


def each_update(count: int = 8) -> list[RowUpdate]:
    member, at = str(uuid4()), datetime(2026, 12, 2, tzinfo=UTC)
    return [RowUpdate(ROWS[n % 2], Decimal(f"{n + 1}.25"), "n", member, n + 1, 3, 40 + n, at) for n in range(count)]


class VersionedStore:
    """What Cassandra keeps of `USING TIMESTAMP <version>` writes: per row the write with the highest version."""

    def __init__(self) -> None:
        self.rows: dict[Row, RowState] = {}
        self.regressions = 0

    async def write(self, written: list[tuple[Row, RowState]]) -> None:
        for row, state in written:
            kept = self.rows.get(row)
            if kept is not None and state.version < kept.version:
                self.regressions += 1  # refused, as Cassandra refuses an older timestamp: no reader sees it
                continue
            self.rows[row] = state


async def test_a_replay_after_a_lost_flush_writes_what_was_written_before() -> None:
    messages, store, table = updates(), VersionedStore(), {}
    rows = JsonTable(table)
    positions = TablePositions(rows)
    await apply_updates(rows, positions, store.write, 0, messages[:3])
    durable = dict(table)  # the batch's flush: all the changelog has
    await apply_updates(rows, positions, store.write, 0, messages[3:])  # written to Cassandra, then the crash
    before_crash, written = dict(table), dict(store.rows)

    table.clear()
    table.update(durable)  # the next owner restores from the changelog
    assert await positions.last(0) == 2
    await apply_updates(rows, positions, store.write, 0, messages[3:5])  # replayed in two runs
    await apply_updates(rows, positions, store.write, 0, messages[5:])

    assert store.rows == written
    assert table == before_crash
    assert {row: state.version for row, state in written.items()} == {ROWS[0]: 4, ROWS[1]: 4}
    assert store.regressions == 2  # the first replayed run's older state of each row, refused by its version


async def test_updates_delivered_again_change_nothing() -> None:
    messages, store, table = updates(), VersionedStore(), {}
    rows = JsonTable(table)
    positions = TablePositions(rows)
    await apply_updates(rows, positions, store.write, 0, messages)
    once = dict(store.rows)
    await apply_updates(rows, positions, store.write, 0, messages)
    assert store.rows == once


async def test_updates_resent_in_other_messages_are_absorbed_one_by_one() -> None:
    """`purchases` puts a batch's updates for a partition in one message: after a crash its replay can group them
    differently (other batch boundaries), so a message can hold updates a row has and updates it has not."""
    each = each_update(12)
    grouped_once, store_once, table_once = [(0, each[:5]), (1, each[5:])], VersionedStore(), {}
    rows_once = JsonTable(table_once)
    await apply_updates(rows_once, TablePositions(rows_once), store_once.write, 0, grouped_once)

    store, table = VersionedStore(), {}
    rows = JsonTable(table)
    positions = TablePositions(rows)
    await apply_updates(rows, positions, store.write, 0, [(0, each[:3])])
    # The crash, then the replay sends them again, grouped otherwise: each[:3] are in the rows already.
    await apply_updates(rows, positions, store.write, 0, [(1, each[:7]), (2, each[7:9]), (3, each[7:])])

    assert {row: (s.total, s.version) for row, s in store.rows.items()} == {
        row: (s.total, s.version) for row, s in store_once.rows.items()
    }
    assert store_once.rows[ROWS[0]].total == sum((u.delta for u in each[::2]), Decimal(0))
    assert store_once.rows[ROWS[0]].version == 6
