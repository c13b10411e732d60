"""`CassandraReadModels` against the real Cassandra: a row's value and its marks are one write, so one read gives
both; an owner's older state never overwrites a newer one; a rebuild keeps the marks of the live rows; and the
marks of the old `projection_rows` table are adopted into the rows, and the old `item_quantity_by_day` rows moved into
their vendor's partition, by the migration. Ids are random per test."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.query_side.projections import POPULAR_ITEMS, VENDOR_BILLING, RowState, popular_items_row, vendor_billing_row
from app.query_side.read_models import CassandraReadModels
from app.settings import Settings
from app.stores.cassandra import connect_async, execute
from app.stores.migrations import migrate_cassandra, upgrade_read_models

YEAR = random.randrange(2200, 2900)  # a year of its own, so the day table's partitions are this run's


@pytest.fixture()
async def models(settings: Settings) -> AsyncIterator[CassandraReadModels]:
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    try:
        yield CassandraReadModels(session, settings.cassandra_keyspace)
    finally:
        cluster.shutdown()


@pytest.fixture()
async def scratch(settings: Settings) -> AsyncIterator[CassandraReadModels]:
    """Read models in a keyspace of their own (a rebuild truncates whole tables), dropped afterwards."""
    keyspace = f"read_models_{uuid.uuid4().hex[:12]}"
    scratch = settings.model_copy(update={"cassandra_keyspace": keyspace})
    await migrate_cassandra(scratch)
    cluster, session = await connect_async(scratch, keyspace)
    try:
        yield CassandraReadModels(session, keyspace)
    finally:
        await execute(session, f"DROP KEYSPACE IF EXISTS {keyspace}", timeout_s=60)
        cluster.shutdown()


def state(total: int, version: int, marks: dict[int, int], name: str = "pear") -> RowState:
    return RowState(Decimal(total), name, version, marks, datetime(YEAR, 3, 4, 5, 6, tzinfo=UTC).isoformat())


async def test_a_row_is_read_with_the_marks_it_was_written_with(models: CassandraReadModels) -> None:
    vendor, product = uuid.uuid4(), uuid.uuid4()
    day_3, day_9 = popular_items_row(vendor, product, YEAR, 3, 3), popular_items_row(vendor, product, YEAR, 3, 9)
    await models.write_popular_items([(day_3, state(2, 1, {0: 5_000})), (day_9, state(7, 3, {1: 9_000, 2: 4_000}))])

    days, freshness = await models.quantities_by_day(vendor, product, YEAR, 3)

    assert days == [{"day": 3, "quantity": 2, "name": "pear"}, {"day": 9, "quantity": 7, "name": "pear"}]
    assert freshness.marks == {0: 5_000, 1: 9_000, 2: 4_000}
    assert freshness.last_event_at == datetime(YEAR, 3, 4, 5, 6, tzinfo=UTC)
    top = await models.most_popular(YEAR, 3, 9, 100)
    assert {"vendorId": str(vendor), "productId": str(product), "name": "pear", "quantity": 7} in top


async def test_a_stale_owner_cannot_overwrite_a_newer_value_or_its_marks(models: CassandraReadModels) -> None:
    vendor = uuid.uuid4()
    row = vendor_billing_row(vendor, YEAR, 5)
    await models.write_vendor_balances([(row, state(30, 4, {0: 8_000}))])
    # An older state, written later, with a mark the newer one does not have: neither its value nor any of its marks
    # may show (the newer write's marks replaced the whole map, whose deletion covers every older mark).
    await models.write_vendor_balances([(row, state(10, 2, {0: 3_000, 1: 1_000}))])

    months, freshness = await models.balances(vendor, YEAR)

    assert months == [{"month": 5, "balance": Decimal(30)}]
    assert freshness.marks == {0: 8_000}


async def test_more_rows_of_one_day_than_a_request_takes_all_land(models: CassandraReadModels) -> None:
    vendor = uuid.uuid4()
    products = [uuid.uuid4() for _ in range(450)]  # more than a request of the day table takes
    await models.write_popular_items(
        [(popular_items_row(vendor, p, YEAR, 6, 1), state(n + 1, 1, {3: n})) for n, p in enumerate(products)]
    )
    top = await models.most_popular(YEAR, 6, 1, 10_000)
    assert {(t["productId"], t["quantity"]) for t in top if t["vendorId"] == str(vendor)} == {
        (str(p), n + 1) for n, p in enumerate(products)
    }
    _, freshness = await models.quantities_by_day(vendor, products[-1], YEAR, 6)
    assert freshness.marks == {3: 449}


async def test_a_rebuild_keeps_the_marks_of_the_live_rows(scratch: CassandraReadModels) -> None:
    models = scratch
    vendor, product = uuid.uuid4(), uuid.uuid4()
    live, gone, new = (popular_items_row(vendor, product, YEAR, 2, d) for d in (1, 2, 3))
    await models.write_popular_items([(live, state(4, 4, {0: 700})), (gone, state(1, 1, {1: 300}))])

    # The journal's rows: no marks of their own (it knows no Kafka positions).
    await models.replace_all(POPULAR_ITEMS, {live: state(5, 5, {}), new: state(2, 2, {})})

    assert await models.all_rows(POPULAR_ITEMS) == {live: Decimal(5), new: Decimal(2)}
    assert await models.all_marks(POPULAR_ITEMS) == {live: {0: 700}}


async def test_the_migration_adopts_the_marks_of_projection_rows_and_moves_the_quantities(
    scratch: CassandraReadModels,
) -> None:
    models, session, keyspace = scratch, scratch.session, scratch.keyspace
    vendor, product, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    item, balance = popular_items_row(vendor, product, YEAR, 7, 8), vendor_billing_row(vendor, YEAR, 7)
    orphan = popular_items_row(vendor, product, YEAR, 7, 9)  # a tracking row whose row a rebuild removed
    # As the code before 2026-12-05 made and wrote them: a partition per product's month, values without marks,
    # then a tracking row each.
    await execute(
        session,
        f"""CREATE TABLE {keyspace}.item_quantity_by_day (
            vendorid uuid, productid uuid, year int, month int, day int, quantity int, name text,
            PRIMARY KEY ((vendorid, productid, year, month), day))""",
        timeout_s=60,
    )
    await execute(
        session,
        f"INSERT INTO {keyspace}.item_quantity_by_day (vendorid, productid, year, month, day, quantity, name) "
        "VALUES (%s, %s, %s, 7, 3, 2, 'kiwi') USING TIMESTAMP 5",
        (vendor, other, YEAR),
    )
    await execute(
        session,
        f"INSERT INTO {keyspace}.item_quantity_by_day (vendorid, productid, year, month, day, quantity, name) "
        "VALUES (%s, %s, %s, 7, 8, 6, 'fig') USING TIMESTAMP 3",
        (vendor, product, YEAR),
    )
    await execute(
        session,
        f"INSERT INTO {keyspace}.balance_by_vendor (vendorid, year, month, balance) "
        "VALUES (%s, %s, 7, 12.50) USING TIMESTAMP 2",
        (vendor, YEAR),
    )
    await execute(
        session,
        f"""CREATE TABLE {keyspace}.projection_rows (
            projection text, row_key text, version bigint, marks map<int, bigint>, last_event_at timestamp,
            PRIMARY KEY ((projection, row_key)))""",
        timeout_s=60,
    )
    at = datetime(YEAR, 7, 8, 9, 10, tzinfo=UTC)
    for projection, row, version, marks in (
        (POPULAR_ITEMS, item, 3, {0: 1_000, 2: 2_000}),
        (VENDOR_BILLING, balance, 2, {1: 500}),
        (POPULAR_ITEMS, orphan, 1, {3: 100}),
    ):
        await execute(
            session,
            f"INSERT INTO {keyspace}.projection_rows (projection, row_key, version, marks, last_event_at) "
            "VALUES (%s, %s, %s, %s, %s) USING TIMESTAMP %s",
            (projection, "/".join(row), version, marks, at, version),
        )

    await upgrade_read_models(session, keyspace)
    await upgrade_read_models(session, keyspace)  # every process migrates at start: the second finds nothing to do

    days, freshness = await models.quantities_by_day(vendor, product, YEAR, 7)
    assert days == [{"day": 8, "quantity": 6, "name": "fig"}]  # the orphan made no row
    assert freshness.marks == {0: 1_000, 2: 2_000} and freshness.last_event_at == at
    days, freshness = await models.quantities_by_day(vendor, other, YEAR, 7)
    assert days == [{"day": 3, "quantity": 2, "name": "kiwi"}] and freshness.marks == {}  # no marks to adopt
    assert await models.all_rows(POPULAR_ITEMS) == {
        item: Decimal(6),
        popular_items_row(vendor, other, YEAR, 7, 3): Decimal(2),
    }
    months, freshness = await models.balances(vendor, YEAR)
    assert months == [{"month": 7, "balance": Decimal("12.50")}] and freshness.marks == {1: 500}
    tables = await execute(session, "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,))
    assert not {"projection_rows", "item_quantity_by_day"} & {r.table_name for r in tables}
    # The rows moved with the timestamps they were written with (their versions): a stale owner's older state
    # still loses, and the owner's next write of the row, a newer version, replaces the adopted marks.
    await models.write_popular_items([(item, state(1, 2, {0: 900}))])
    days, freshness = await models.quantities_by_day(vendor, product, YEAR, 7)
    assert days == [{"day": 8, "quantity": 6, "name": "fig"}] and freshness.marks == {0: 1_000, 2: 2_000}
    await models.write_popular_items([(item, state(9, 4, {0: 1_500}))])
    _, freshness = await models.quantities_by_day(vendor, product, YEAR, 7)
    assert freshness.marks == {0: 1_500}
