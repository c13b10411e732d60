"""Agent `popular_items`: the owner of `item_quantity_by_vendor_month` rows (and `popular_items_by_day`).

Keeps each row's quantity and marks in table `popular_items_rows`, then writes the row's absolute value to
Cassandra (agents/row_owner.py).
"""

from __future__ import annotations

from agents.row_owner import Write, row_owner
from app.runtime import process_runtime
from app.streams.faust_app import popular_items_updates_topic
from tables.hydrators import popular_items_rows


async def write_popular_item() -> Write:
    return (await process_runtime().read_models()).write_popular_items


popular_items = row_owner("popular_items", popular_items_updates_topic, popular_items_rows, write_popular_item)
