"""What the HTTP API answers, as models: the OpenAPI document's response schemas (camelCase, as on the wire), and
the error bodies and statuses each route can answer."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

MONEY = r"^\d+(\.\d+)?$"
"""Money on the wire: a decimal string, never a float."""

EventType = Literal["ItemAdded", "ItemRemoved", "ItemQuantityIncreased", "ItemQuantityDecreased", "ItemPurchased"]
RuleName = Literal[
    "ItemAlreadyInCart", "ItemNotInCart", "NegativeQuantity", "EmptyCartCheckout", "QuantityLimitExceeded", "CartFull"
]


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemView(View):
    productId: UUID
    vendorId: UUID
    name: str
    price: str = Field(pattern=MONEY, description="unit price, a decimal string")
    quantity: int = Field(ge=1)


class Position(View):
    """Where an event went on cart-events: pass it as `after=<partition>:<offset>` to read your own writes."""

    partition: int
    offset: int


class EventView(View):
    eventId: UUID
    memberId: UUID
    cartId: UUID
    seqNr: int = Field(ge=1)
    commandId: str
    type: EventType
    occurredAt: str = Field(description="UTC, ISO 8601")
    payload: dict[str, Any]
    schemaVersion: int
    position: Position | None = None


class CartState(View):
    memberId: UUID
    cartId: UUID | None = Field(description="null until the first item, and again after checkout")
    version: int = Field(ge=0, description="the seq_nr of the member's last event")
    items: list[ItemView]
    total: str = Field(pattern=MONEY)


class CartView(CartState):
    """The cart after the command, with the events the command recorded (none for a change that changes nothing)."""

    events: list[EventView]


class CheckoutView(View):
    memberId: UUID
    cartId: UUID
    purchasedAt: str = Field(description="UTC, ISO 8601")
    items: list[ItemView]
    total: str = Field(pattern=MONEY)
    version: int
    events: list[EventView]


class HistoryPage(View):
    memberId: UUID
    events: list[EventView]
    nextSeqNr: int | None = Field(description="where the next page starts; null at the end")


class Projection(View):
    """How far a read model has got."""

    positions: dict[str, int] = Field(description="cart-events partition -> the highest offset included")
    lastEventAt: str | None
    caughtUp: bool = Field(description="whether `after` (if given) is included")


class DayQuantity(View):
    day: int = Field(ge=1, le=31)
    quantity: int
    name: str | None


class PopularItemsMonth(View):
    vendorId: UUID
    productId: UUID
    year: int
    month: int
    days: list[DayQuantity]
    projection: Projection


class TopItem(View):
    vendorId: UUID
    productId: UUID
    name: str | None
    quantity: int


class TopItems(View):
    date: str
    items: list[TopItem]


class MonthBalance(View):
    month: int = Field(ge=1, le=12)
    balance: str = Field(pattern=MONEY)


class VendorBilling(View):
    vendorId: UUID
    year: int
    source: Literal["postgres", "cassandra"]
    months: list[MonthBalance]
    projection: Projection


class FieldError(View):
    field: str
    reason: str


class ErrorBody(View):
    error: str
    reason: str
    fields: list[FieldError] | None = None


class RuleViolation(View):
    """A cart rule refused the command; nothing was written."""

    model_config = ConfigDict(extra="allow")  # the rule's own fields: productId, quantity, delta, limit

    error: RuleName
    reason: str


class Health(View):
    status: Literal["ok"]


class Readiness(View):
    """Each check is `true`, or why it failed. `ready` needs what commands need (Cassandra, Kafka, a worker group);
    `postgres` only serves `vendor-billing?source=postgres`, so the API stays ready without it and says so."""

    ready: bool
    cassandra: bool | str
    kafka: bool | str
    workers: bool | str
    postgres: bool | str


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}


UNAVAILABLE = "Kafka, a store or the cart's owner did not answer in time; retry with the same Idempotency-Key"


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route documents, with their bodies."""
    described: dict[int, dict[str, Any]] = {
        401: {"model": ErrorBody, "description": "no valid bearer token", "headers": WWW_AUTHENTICATE},
        408: {"model": ErrorBody, "description": "the request did not arrive whole within CART_REQUEST_READ_TIMEOUT_S"},
        403: {"model": ErrorBody, "description": "the token may not do this (another member's cart; a scope)"},
        404: {"model": ErrorBody, "description": "nothing there"},
        409: {"model": RuleViolation, "description": "a cart rule refused the command; nothing was written"},
        413: {"model": ErrorBody, "description": "the body is over 64 KiB"},
        422: {"model": ErrorBody, "description": "malformed input: the field and the reason"},
        429: {"model": ErrorBody, "description": "over a rate limit", "headers": RETRY_AFTER},
        503: {"model": ErrorBody, "description": UNAVAILABLE, "headers": RETRY_AFTER},
    }
    # Any request that does not arrive whole in time (app/api/http_protocol.py) is answered 408, on every route.
    return {408: described[408], **{s: described[s] for s in statuses}}


AUTHENTICATED = (401, 403, 429)
