"""Read API over the read models (never the journal): popular items and vendor billing.

Each response says how far the projection has got (`projection.positions`: cart-events partition -> highest offset
included; `projection.lastEventAt`). To read your own writes, pass `after=<partition>:<offset>` (the `position` of
an event in a command's reply) and `waitMs`: the request waits, at most that long, until the rows include it, and
says whether they do (`projection.caughtUp`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.api.deps import AnalyticsDep, BackendsDep
from app.api.views import AUTHENTICATED, PopularItemsMonth, TopItems, VendorBilling, errors
from app.query_side.projections import row_key, vendor_billing_row
from app.query_side.read_models import Freshness, merge
from app.streams.partitioning import partition_of

router = APIRouter(tags=["read models"])

Year = Annotated[int, Path(ge=1970, le=9999)]
Month = Annotated[int, Path(ge=1, le=12)]
After = Annotated[
    str | None,
    Query(pattern=r"^\d{1,6}:\d{1,19}$", description="partition:offset of an event the answer must include"),
]
WaitMs = Annotated[int, Query(ge=0, le=10_000, description="how long to wait for `after` (bounded)")]
VendorId = Annotated[UUID, Path(examples=["fbea6379-b76c-478b-8f86-4f1626fb8acf"])]
ProductId = Annotated[UUID, Path(examples=["9054a277-9998-4bb4-be89-7d1ac45828d2"])]
Day = Annotated[
    str,
    Query(
        alias="date",
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        description="the UTC day, YYYY-MM-DD",
        json_schema_extra={"format": "date"},
        examples=["2026-12-01"],
    ),
]
READ_ERRORS = errors(*AUTHENTICATED, 404, 422, 503)


def the_day(value: str) -> date:
    """A YYYY-MM-DD that names a day (the pattern has made sure of the shape; 2026-02-30 is still refused here)."""
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise RequestValidationError(
            [{"loc": ("query", "date"), "msg": f"not a day: {value}", "type": "value_error"}]
        ) from error


def parse_after(after: str | None) -> tuple[int, int] | None:
    if after is None:
        return None
    partition, offset = re.split(":", after)
    return int(partition), int(offset)


async def read_until(
    read: Callable[[], Awaitable[tuple[list[dict[str, Any]], Freshness]]], after: str | None, wait_ms: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read; if `after` is given and not yet included, read again until it is or `wait_ms` has passed.

    `read` returns rows and how far they have got, such that a position the freshness includes is in the rows:
    Cassandra's rows carry their marks (one read), PostgreSQL's freshness is read before its rows."""
    position = parse_after(after)
    deadline = time.monotonic() + wait_ms / 1000
    while True:
        rows, freshness = await read()
        caught_up = position is None or freshness.includes(*position)
        if caught_up or time.monotonic() >= deadline:
            return rows, {**freshness.to_json(), "caughtUp": caught_up}
        await asyncio.sleep(0.1)


def not_found(what: str) -> JSONResponse:
    return JSONResponse({"error": "NotFound", "reason": f"no {what}"}, status_code=404)


@router.get(
    "/popular-items/top",
    summary="The most bought items of a day, across vendors",
    response_model=TopItems,
    responses=errors(*AUTHENTICATED, 422, 503),
)
async def top_items(
    backends: BackendsDep,
    reader: AnalyticsDep,
    on: Day,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """Items ranked by quantity bought that day."""
    day = the_day(on)
    models = await backends.read_models()
    items = await models.most_popular(day.year, day.month, day.day, limit)
    return {"date": day.isoformat(), "items": items}


@router.get(
    "/popular-items/{vendorId}/{productId}/{year}/{month}",
    summary="Quantity bought per day of a month",
    response_model=PopularItemsMonth,
    responses=READ_ERRORS,
)
async def popular_items(
    vendorId: VendorId,
    productId: ProductId,
    year: Year,
    month: Month,
    backends: BackendsDep,
    reader: AnalyticsDep,
    after: After = None,
    waitMs: WaitMs = 0,
) -> Any:
    """The quantity of a vendor's product bought on each day of a month (UTC), from item_quantity_by_vendor_month."""
    models = await backends.read_models()

    async def read() -> tuple[list[dict[str, Any]], Freshness]:
        return await models.quantities_by_day(vendorId, productId, year, month)

    days, projection = await read_until(read, after, waitMs)
    if not days:
        return not_found(f"purchases of product {productId} from vendor {vendorId} in {year}-{month:02d}")
    body = {"vendorId": str(vendorId), "productId": str(productId), "year": year, "month": month}
    return {**body, "days": days, "projection": projection}


@router.get(
    "/vendor-billing/{vendorId}/{year}",
    summary="A vendor's balance per month of a year",
    response_model=VendorBilling,
    responses=READ_ERRORS,
)
async def vendor_billing(
    vendorId: VendorId,
    year: Year,
    backends: BackendsDep,
    reader: AnalyticsDep,
    source: Annotated[Literal["postgres", "cassandra"], Query()] = "postgres",
    after: After = None,
    waitMs: WaitMs = 0,
) -> Any:
    """Money owed to the vendor per month, from PostgreSQL `vendor_billing` or Cassandra `balance_by_vendor`."""

    async def read_cassandra() -> tuple[list[dict[str, Any]], Freshness]:
        return await (await backends.read_models()).balances(vendorId, year)

    async def read_postgres() -> tuple[list[dict[str, Any]], Freshness]:
        billing = await backends.vendor_billing_sql()
        months = await billing.balances(vendorId, year)
        partitions = backends.settings.partitions
        # The partition of vendor-billing-updates whose consumer owns each row.
        owners = {partition_of(row_key(vendor_billing_row(vendorId, year, m["month"])), partitions) for m in months}
        freshness = merge([await billing.freshness(q) for q in sorted(owners)])
        return await billing.balances(vendorId, year), freshness

    months, projection = await read_until(read_postgres if source == "postgres" else read_cassandra, after, waitMs)
    if not months:
        return not_found(f"billing for vendor {vendorId} in {year}")
    rows = [{"month": m["month"], "balance": str(m["balance"])} for m in months]
    return {"vendorId": str(vendorId), "year": year, "source": source, "months": rows, "projection": projection}
