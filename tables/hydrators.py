"""The tables of the query side, each co-partitioned with the topic that feeds it (RocksDB, Kafka changelog).

- `absorbed_events`: member id -> the highest seq_nr the `purchases` agent has absorbed (drops duplicates).
- `popular_items_rows`: "vendor/product/year/month/day" -> `app.query_side.projections.RowState` (quantity and marks).
- `vendor_balance_rows`: "vendor/year/month" -> `RowState` (balance and marks).

Each also holds its agent's last processed offset per partition, under `@offset/<partition>`.
"""

from __future__ import annotations

from app.streams.faust_app import app, settings

absorbed_events = app.Table("absorbed_events", partitions=settings.partitions, key_type=str, default=None)
popular_items_rows = app.Table("popular_items_rows", partitions=settings.partitions, key_type=str, default=None)
vendor_balance_rows = app.Table("vendor_balance_rows", partitions=settings.partitions, key_type=str, default=None)
