"""Agent `vendor_billing`: the owner of `balance_by_vendor` rows in Cassandra.

Keeps each row's balance and marks in table `vendor_balance_rows`, then writes the absolute balance
(agents/row_owner.py).
"""

from __future__ import annotations

from agents.row_owner import Write, row_owner
from app.runtime import process_runtime
from app.streams.faust_app import vendor_billing_updates_topic
from tables.hydrators import vendor_balance_rows


async def write_vendor_balance() -> Write:
    return (await process_runtime().read_models()).write_vendor_balances


vendor_billing = row_owner("vendor_billing", vendor_billing_updates_topic, vendor_balance_rows, write_vendor_balance)
