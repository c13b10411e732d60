"""`PostgresVendorBilling.apply` against the real PostgreSQL: exactly once in effect on its own, whatever is
delivered again (the same message, or the same update sent twice by `purchases` at another offset)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from app.query_side.projections import RowUpdate
from app.query_side.read_models import PostgresVendorBilling
from app.settings import Settings


@pytest.fixture()
async def billing(settings: Settings) -> AsyncIterator[PostgresVendorBilling]:
    pool = await asyncpg.create_pool(settings.postgres_dsn, min_size=1, max_size=2)
    try:
        yield PostgresVendorBilling(pool)
    finally:
        await pool.close()


def an_update(vendor: uuid.UUID, source_offset: int, amount: str = "2.50") -> RowUpdate:
    now = datetime.now(UTC)
    row = (str(vendor), str(now.year), str(now.month))
    return RowUpdate(row, Decimal(amount), "orange", str(uuid.uuid4()), 1, 3, source_offset, now)


async def test_each_offset_and_each_update_counts_once(billing: PostgresVendorBilling) -> None:
    partition = random.randrange(10_000, 2**31 - 1)  # a partition no worker uses
    vendor = uuid.uuid4()
    year = datetime.now(UTC).year
    assert await billing.last_offset(partition) is None

    assert await billing.apply(an_update(vendor, 100), partition, 0) is True
    assert await billing.apply(an_update(vendor, 100), partition, 0) is False  # the same message again
    assert await billing.apply(an_update(vendor, 100), partition, 1) is False  # the same update, resent
    assert await billing.apply(None, partition, 2) is True  # a malformed message only moves the offset
    assert await billing.apply(an_update(vendor, 101, "1.25"), partition, 3) is True
    assert await billing.apply(an_update(vendor, 102, "9.00"), partition, 2) is False  # behind the offset

    assert await billing.last_offset(partition) == 3
    assert [b["balance"] for b in await billing.balances(vendor, year)] == [Decimal("3.75")]
    freshness = await billing.freshness(partition)
    assert freshness.marks == {3: an_update(vendor, 101).source_position}


async def test_a_batch_commits_its_balances_positions_and_offset_together_and_counts_each_update_once(
    billing: PostgresVendorBilling,
) -> None:
    partition = random.randrange(10_000, 2**31 - 1)
    vendor, other = uuid.uuid4(), uuid.uuid4()
    year = datetime.now(UTC).year
    batch: list[tuple[int, list[RowUpdate] | None]] = [
        (0, [an_update(vendor, 10, "1.00")]),
        (1, [an_update(other, 11, "2.00"), an_update(vendor, 11, "5.00")]),  # the second: a resend of the first
        (2, None),  # malformed
        (3, [an_update(vendor, 12, "0.25")]),
    ]
    assert await billing.apply_batch(partition, batch) == 4

    assert await billing.apply_batch(partition, batch) == 0  # the whole batch again (a replay after a crash)
    # Updates already applied, sent again in a message with new ones (a replay that grouped them otherwise).
    resent = [an_update(vendor, 12, "0.25"), an_update(other, 13, "1.50")]
    assert await billing.apply_batch(partition, [*batch[2:], (4, resent)]) == 1
    assert await billing.last_offset(partition) == 4
    assert [b["balance"] for b in await billing.balances(vendor, year)] == [Decimal("1.25")]
    assert [b["balance"] for b in await billing.balances(other, year)] == [Decimal("3.50")]
