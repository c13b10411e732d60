"""Cassandra's CPU per popular-items row for a way of writing the read model's rows (docs/benchmarks.md, 2026-12-05,
late night, and 2026-12-07): rows of random products of 50 vendors over 3 days, written 500 rows at a time with the
project's own statements, in a keyspace of its own (its tables' compactions off, so that none lands in a
measurement; dropped afterwards), Cassandra's CPU read from /proc before and after.

    .venv/bin/python docs/bench/read_model_writes_probe.py [ROWS]

Ways: `rows` (what the owner writes now: item_quantity_by_vendor_month and popular_items_by_day, each table's rows
grouped by partition, 200 to a request), `quantity` and `day` (one table alone), `by-product` (the quantities as
until 2026-12-07: item_quantity_by_day, a partition per product, and the day rows), `single` (the quantity rows one
statement a request)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.query_side.projections import RowState, popular_items_row
from app.query_side.read_models import CassandraReadModels
from app.settings import get_settings
from app.stores.cassandra import connect_async, execute
from app.stores.migrations import migrate_cassandra


def cassandra_cpu_ticks() -> int:
    found = subprocess.run(["pgrep", "-f", "CassandraDaemon"], capture_output=True, text=True).stdout.split()
    pid = next(p for p in found if Path(f"/proc/{p}/comm").read_text().strip() == "java")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def main(rows: int) -> None:
    keyspace = f"probe_{uuid.uuid4().hex[:8]}"
    settings = get_settings().model_copy(update={"cassandra_keyspace": keyspace})
    await migrate_cassandra(settings)
    cluster, session = await connect_async(settings, keyspace)
    by_product_table = (
        f"CREATE TABLE {keyspace}.item_quantity_by_day (vendorid uuid, productid uuid, year int, month int, day int, "
        "quantity int, name text, marks map<int, bigint>, last_event_at timestamp, "
        "PRIMARY KEY ((vendorid, productid, year, month), day))"
    )
    try:
        await execute(session, by_product_table, timeout_s=60)
        for table in ("item_quantity_by_day", "item_quantity_by_vendor_month", "popular_items_by_day"):
            await execute(
                session,
                f"ALTER TABLE {keyspace}.{table} WITH compaction = "
                "{'class': 'SizeTieredCompactionStrategy', 'enabled': 'false'}",
                timeout_s=60,
            )
        models = CassandraReadModels(session, keyspace)
        by_product = session.prepare(
            f"INSERT INTO {keyspace}.item_quantity_by_day (vendorid, productid, year, month, day, quantity, name, "
            "marks, last_event_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        vendors = [uuid.uuid4() for _ in range(50)]
        at = "2031-05-01T10:00:00+00:00"
        for way in ("rows", "quantity", "day", "by-product", "single"):
            states = [
                (
                    popular_items_row(vendors[n % 50], uuid.uuid4(), 2031, 5, 1 + n % 3),
                    RowState(Decimal(3), f"probe-{n}", 1, {n % 12: n}, at),
                )
                for n in range(rows)
            ]
            ticks, started = cassandra_cpu_ticks(), time.monotonic()
            for start in range(0, rows, 500):
                chunk = states[start : start + 500]
                writes = [w for row, state in chunk for w in models._popular_item_writes(row, state)]
                by_partition = models._by_partition(writes)
                quantity = [w for key, part in by_partition.items() if key[0] is models._write_quantity for w in part]
                days = [part for key, part in by_partition.items() if key[0] is models._write_day]
                if way == "rows":
                    await models.write_popular_items(chunk)
                elif way == "quantity":
                    await models._write_unlogged(quantity)
                elif way == "day":
                    await asyncio.gather(*(models._write_unlogged(day) for day in days))
                elif way == "by-product":
                    old = [(by_product, (v, p, y, m, d, *rest)) for _, (v, y, m, p, d, *rest) in quantity]
                    await asyncio.gather(models._write_unlogged(old), *(models._write_unlogged(day) for day in days))
                else:
                    await asyncio.gather(*(execute(session, statement, params) for statement, params in quantity))
            seconds, cpu_ms = time.monotonic() - started, (cassandra_cpu_ticks() - ticks) * 10
            print(
                f"{way:15s} {rows} rows: {rows / seconds:8,.0f} rows/s, Cassandra {cpu_ms * 1000 / rows:6.1f} us "
                f"of CPU a row ({cpu_ms / 10 / seconds:.0f}% of a core)"
            )
    finally:
        await execute(session, f"DROP KEYSPACE IF EXISTS {keyspace}", timeout_s=60)
        cluster.shutdown()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
