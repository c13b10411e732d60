"""Creates, idempotently, everything the system stores into: Kafka topics, the Cassandra keyspace and tables,
the PostgreSQL tables. Run at start by the worker and the API, and by `cart migrate` (which `make run` calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from app.settings import Settings
from app.stores.cassandra import StoreUnavailable
from app.streams.kafka_clients import kafka_options

log = logging.getLogger(__name__)


def cassandra_ddl(settings: Settings) -> list[str]:
    ks = settings.cassandra_keyspace
    return [
        f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
        f"{{'class': 'SimpleStrategy', 'replication_factor': {settings.cassandra_replication_factor}}}",
        # The journal: the truth. One partition per member and bucket (bucket = first seq_nr of a command's
        # batch // bucket size) bounds partition size; see app/command_side/journal.py for why a batch never splits.
        f"""CREATE TABLE IF NOT EXISTS {ks}.journal (
            member_id uuid, bucket bigint, seq_nr bigint,
            event_id uuid, cart_id uuid, command_id text, type text, schema_version int,
            occurred_at timestamp, payload text,
            PRIMARY KEY ((member_id, bucket), seq_nr)
        ) WITH CLUSTERING ORDER BY (seq_nr ASC)""",
        # The owners' logs: a row per batch of a lease (app/command_side/journal.py); segments bound the partition's
        # size. `batch_id`, `next_batch`, `end_batch` and `owner` are the conditional format's (before 2026-12-06).
        f"""CREATE TABLE IF NOT EXISTS {ks}.journal_log (
            lease uuid, segment bigint, batch_nr bigint,
            batch_id uuid, events text,
            next_batch bigint static, end_batch bigint static, done_batch bigint static, owner text static,
            PRIMARY KEY ((lease, segment), batch_nr)
        ) WITH CLUSTERING ORDER BY (batch_nr ASC)""",
        # Which lease owns each partition of cart-commands (moved by a conditional write at each claim), and how it
        # is fenced (null: a lease of before 2026-12-06, fenced by a conditional write per batch).
        f"""CREATE TABLE IF NOT EXISTS {ks}.journal_owners (
            topic text, partition int, lease uuid, owner text, claimed_at timestamp, fence text,
            PRIMARY KEY ((topic, partition))
        )""",
        f"ALTER TABLE {ks}.journal_owners ADD IF NOT EXISTS fence text",
        # The seals of write-then-read leases: a row once a claimer has sealed the lease, with where its log ends
        # once someone has recorded it (a conditional write: the first end recorded is the end).
        f"""CREATE TABLE IF NOT EXISTS {ks}.journal_seals (
            lease uuid PRIMARY KEY, sealed_at timestamp, sealed_by text, end_batch bigint
        )""",
        # Where a lease's log has got to (a hint for the one who seals it).
        f"""CREATE TABLE IF NOT EXISTS {ks}.journal_lease_heads (lease uuid PRIMARY KEY, segment bigint)""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.snapshots (
            member_id uuid PRIMARY KEY, seq_nr bigint, bucket bigint, state text, taken_at timestamp
        )""",
        # The rejections its snapshots remembered (command id -> outcome), each a cell of its own, so that a state
        # written later but older (a stale owner's) never erases one (app/command_side/journal.py, save_snapshot).
        f"ALTER TABLE {ks}.snapshots ADD IF NOT EXISTS rejections map<text, text>",
        # Every member that has a journal, so a rebuild can walk the journal without a full-table scan.
        f"""CREATE TABLE IF NOT EXISTS {ks}.members (
            shard int, member_id uuid, PRIMARY KEY ((shard), member_id)
        )""",
        # The original's read models (CQL has no `string`: `name text`), and with each row how far it has got: the
        # cart-events positions (partition -> position) it includes and its last event's time. A product's days are
        # in its vendor's partition of the month, not in one of their own (the original's item_quantity_by_day, until
        # 2026-12-07, moved here by `move_item_quantities`): Cassandra pays per partition a write touches far more
        # than per row, and an owner's batch writes many products of few vendors (docs/benchmarks.md, 2026-12-07).
        f"""CREATE TABLE IF NOT EXISTS {ks}.item_quantity_by_vendor_month (
            vendorid uuid, year int, month int, productid uuid, day int, quantity int, name text,
            marks map<int, bigint>, last_event_at timestamp,
            PRIMARY KEY ((vendorid, year, month), productid, day)
        ) WITH CLUSTERING ORDER BY (productid ASC, day ASC)""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.balance_by_vendor (
            vendorid uuid, year int, month int, balance decimal, marks map<int, bigint>, last_event_at timestamp,
            PRIMARY KEY ((vendorid, year), month)
        ) WITH CLUSTERING ORDER BY (month DESC)""",
        # A table made before the marks moved into the rows (2026-12-05); item_quantity_by_day's: `upgrade_read_models`.
        f"ALTER TABLE {ks}.balance_by_vendor ADD IF NOT EXISTS (marks map<int, bigint>, last_event_at timestamp)",
        # What "popular items" is for: the most bought items of a day, across vendors.
        f"""CREATE TABLE IF NOT EXISTS {ks}.popular_items_by_day (
            year int, month int, day int, vendorid uuid, productid uuid, quantity int, name text,
            PRIMARY KEY ((year, month, day), vendorid, productid)
        )""",
    ]


POSTGRES_DDL = [
    """CREATE TABLE IF NOT EXISTS vendor_billing (
        vendor_id UUID NOT NULL,
        year INTEGER NOT NULL,
        month INTEGER NOT NULL,
        balance NUMERIC(21, 2) NOT NULL,
        CONSTRAINT "vendorId_year_month_pk" PRIMARY KEY (vendor_id, year, month)
    )""",
    # The consumed positions, committed in the same transaction as the balances: per partition of
    # vendor-billing-updates and per cart-events partition, the highest source position applied
    # (cart-events offset * 1e6 + index, see app.query_side.projections.RowUpdate.source_position).
    """CREATE TABLE IF NOT EXISTS vendor_billing_positions (
        partition INTEGER NOT NULL,
        source_partition INTEGER NOT NULL,
        source_position BIGINT NOT NULL,
        last_event_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (partition, source_partition)
    )""",
    # Per partition of vendor-billing-updates, the last offset applied (same transaction): the agent processes
    # each partition in offset order with no gap, from the offset after this one (app/streams/following.py).
    """CREATE TABLE IF NOT EXISTS vendor_billing_offsets (
        partition INTEGER PRIMARY KEY,
        last_offset BIGINT NOT NULL
    )""",
]


FAUST_TABLES = ["absorbed_events", "popular_items_rows", "vendor_balance_rows"]


def own_topics(settings: Settings, existing: Iterable[str]) -> list[str]:
    """Which of `existing` are this system's: its topics (`Settings.topics`) and what Faust named after its app id
    (the tables' changelogs, the assignor's). What a test's or the bench's own system deletes when it is done."""
    return sorted(t for t in existing if t in settings.topics or t.startswith(settings.app_id + "-"))


async def migrate_kafka(settings: Settings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    wanted = settings.topics
    # The Faust tables' changelogs too: Faust would create them at start, but a worker that checks a changelog's
    # partitions right after creating it can miss it in the metadata and crash (seen on first starts).
    changelogs = {f"{settings.consumer_group}-{table}-changelog" for table in FAUST_TABLES}
    admin = AIOKafkaAdminClient(**kafka_options(settings), request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, n, 1) for name, n in wanted.items() if name not in existing]
        missing += [
            NewTopic(name, settings.partitions, 1, topic_configs={"cleanup.policy": "compact"})
            for name in sorted(changelogs - existing)
        ]
        if missing:
            # Another process may create one between the list and the create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
    finally:
        await admin.close()


async def migrate_cassandra(settings: Settings) -> None:
    from app.stores.cassandra import connect_async, execute

    cluster, session = await connect_async(settings)
    try:
        for statement in cassandra_ddl(settings):
            await execute(session, statement, timeout_s=60)
        await upgrade_read_models(session, settings.cassandra_keyspace)
    finally:
        await asyncio.to_thread(cluster.shutdown)


async def _tables(session: Any, ks: str) -> set[str]:
    from app.stores.cassandra import execute

    rows = await execute(
        session, "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (ks,), timeout_s=30
    )
    return {r.table_name for r in rows}


async def upgrade_read_models(session: Any, ks: str) -> None:
    """Bring read-model tables of an older keyspace to the current shape, in the order they changed: the marks into
    the rows (2026-12-05, `adopt_projection_rows`), then item_quantity_by_day's rows into their vendor's partition
    (2026-12-07, `move_item_quantities`). Nothing to do (one query) for a keyspace that is current."""
    from cassandra import InvalidRequest

    from app.stores.cassandra import execute

    tables = await _tables(session, ks)
    if "item_quantity_by_day" in tables:
        try:
            await execute(
                session,
                f"ALTER TABLE {ks}.item_quantity_by_day ADD IF NOT EXISTS (marks map<int, bigint>, "
                "last_event_at timestamp)",
                timeout_s=60,
            )
        except InvalidRequest as error:  # dropped by another process meanwhile: it moved the rows
            log.info("%s.item_quantity_by_day: %s", ks, error)
    if "projection_rows" in tables:
        await adopt_projection_rows(session, ks)
    if "item_quantity_by_day" in tables:
        await move_item_quantities(session, ks)


async def move_item_quantities(session: Any, ks: str) -> None:
    """Until 2026-12-07 a product's days were a partition of their own (item_quantity_by_day): copied here into
    item_quantity_by_vendor_month, each cell with the timestamp it was written with (the row's version, so the
    owner's next write of the row still wins, and a stale owner's older one still loses), then the old table goes.
    Several processes migrate at start: copying twice writes the same cells, and a table another one has dropped
    meanwhile ends the copy. (Workers of the version before still writing the old table after it is copied: their
    rows are in the journal, and `cart rebuild popular_items` puts them back; stop the old workers first.)"""
    from cassandra import InvalidRequest

    from app.stores.cassandra import execute, execute_all, scan, unlogged_batches

    try:
        old = await scan(
            session,
            "SELECT vendorid, year, month, productid, day, quantity, name, marks, last_event_at, "
            f"WRITETIME(quantity) AS written FROM {ks}.item_quantity_by_day",
            page_size=5000,
        )
        log.warning("%s.item_quantity_by_day: moving %d rows into item_quantity_by_vendor_month, once", ks, len(old))
        insert = await asyncio.to_thread(
            session.prepare,
            f"INSERT INTO {ks}.item_quantity_by_vendor_month (vendorid, year, month, productid, day, quantity, name, "
            "marks, last_event_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
        )
        # A row whose value was deleted has nothing to move. By partition: a batch's rows of one are one mutation.
        moving = sorted((r for r in old if r.quantity is not None), key=lambda r: (r.vendorid, r.year, r.month))
        writes = [(insert, (*r[:9], r.written)) for r in moving]
        batches = [(batch, None) for batch in unlogged_batches(writes, 100)]
        await execute_all(session, batches, concurrency=16, timeout_s=30)
        await execute(session, f"DROP TABLE IF EXISTS {ks}.item_quantity_by_day", timeout_s=60)
        log.info("%s.item_quantity_by_day: rows moved into item_quantity_by_vendor_month, table dropped", ks)
    except InvalidRequest as error:  # dropped by another process meanwhile: it moved them
        log.info("%s.item_quantity_by_day: %s", ks, error)


def _cast(cast: Any, part: str) -> Any:
    return cast(part)


async def adopt_projection_rows(session: Any, ks: str) -> None:
    """Until 2026-12-05 a read-model row's marks were a row of their own in `projection_rows`: copied here into the
    rows they describe (with the timestamp they were written with, so a newer write of the row still wins), then
    the table goes. Only rows that exist get marks (a rebuild may have removed some). Several processes migrate at
    start: copying twice writes the same cells, and a table another one has dropped meanwhile ends the copy."""
    from cassandra import InvalidRequest

    from app.stores.cassandra import execute, execute_all, scan

    # Per projection: its table, the row key's columns and their types (a row key is its parts joined by "/").
    where = {
        "popular_items": (
            "item_quantity_by_day",
            ("vendorid", "productid", "year", "month", "day"),
            (UUID, UUID, int, int, int),
        ),
        "vendor_billing": ("balance_by_vendor", ("vendorid", "year", "month"), (UUID, int, int)),
    }
    try:
        old = await scan(
            session, f"SELECT projection, row_key, version, marks, last_event_at FROM {ks}.projection_rows"
        )
        # A warning, so that it shows on any console: it happens once, and takes minutes for a large keyspace
        # (446,536 rows took 4 min 40 s on the development machine).
        log.warning("%s.projection_rows: copying %d rows' marks into the read-model rows, once", ks, len(old))
        for projection, (table, key, types) in where.items():
            existing = {
                "/".join(str(part) for part in row)
                for row in await scan(session, f"SELECT {', '.join(key)} FROM {ks}.{table}", page_size=5000)
            }
            update = session.prepare(
                f"UPDATE {ks}.{table} USING TIMESTAMP ? SET marks = ?, last_event_at = ? "
                f"WHERE {' AND '.join(f'{column} = ?' for column in key)}"
            )
            await execute_all(
                session,
                (
                    (update, (r.version, r.marks, r.last_event_at, *map(_cast, types, r.row_key.split("/"))))
                    for r in old
                    if r.projection == projection and r.row_key in existing and r.version is not None
                ),
                concurrency=32,
                timeout_s=30,
            )
        await execute(session, f"DROP TABLE IF EXISTS {ks}.projection_rows", timeout_s=60)
        log.info("%s.projection_rows: marks copied into the read-model rows, table dropped", ks)
    except InvalidRequest as error:  # dropped by another process meanwhile: it copied them
        log.info("%s.projection_rows: %s", ks, error)


async def migrate_postgres(settings: Settings) -> None:
    import asyncpg

    try:
        conn = await asyncpg.connect(settings.postgres_dsn, timeout=15)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:  # a refused password too: 503, never a 500
        raise StoreUnavailable(f"PostgreSQL is not reachable: {error}") from error
    try:
        # Several processes migrate at start; the advisory lock makes them take turns.
        await conn.execute("SELECT pg_advisory_lock(727274)")
        for statement in POSTGRES_DDL:
            await conn.execute(statement)
        await conn.execute("SELECT pg_advisory_unlock(727274)")
    finally:
        await conn.close()


async def migrate(settings: Settings) -> None:
    """Bring every store to the current schema; safe to run any number of times, from several processes."""
    await migrate_kafka(settings)
    await migrate_cassandra(settings)
    await migrate_postgres(settings)
