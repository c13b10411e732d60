"""The tables of the query side, each co-partitioned with the topic that feeds it (RocksDB, Kafka changelog).

- `absorbed_events`: member id -> the highest seq_nr the `purchases` agent has absorbed (drops duplicates).
- `popular_items_rows`: "vendor/product/year/month/day" -> `app.query_side.projections.RowState` (quantity and marks).
- `vendor_balance_rows`: "vendor/year/month" -> `RowState` (balance and marks).

Each also holds its agent's last processed offset per partition, under `@offset/<partition>`. Values are JSON
(`JsonTable`).
"""

from __future__ import annotations

from typing import Any

import orjson

from app.streams.faust_app import app, settings


class JsonTable:
    """A Faust table whose keys and values are JSON, kept as the bytes Faust's json codec would have written (it
    encodes with orjson too, so a changelog written either way restores either way), read and written with orjson.
    Faust's own decoding walks every value looking for a model to rebuild: about 4% of the query worker's CPU at
    saturation (bench 2026-12-02); its key encoding, through its serializer registry, 2% in a catch-up
    (docs/benchmarks.md, 2026-12-03, evening)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: str) -> Any:
        raw = self.table.get(orjson.dumps(key))
        return None if raw is None else orjson.loads(raw)

    def __setitem__(self, key: str, value: Any) -> None:
        self.table[orjson.dumps(key)] = orjson.dumps(value)


def json_table(name: str) -> JsonTable:
    # key_type and value_type bytes: Faust's "raw" serializer for the store and the changelog; JsonTable encodes.
    return JsonTable(app.Table(name, partitions=settings.partitions, key_type=bytes, value_type=bytes, default=None))


absorbed_events = json_table("absorbed_events")
popular_items_rows = json_table("popular_items_rows")
vendor_balance_rows = json_table("vendor_balance_rows")
