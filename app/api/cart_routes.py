"""The cart routes, as the original had them, plus the member's history from the journal.

Each route turns the request into a command and asks the owner of the member's cart through Kafka; the reply is
the cart as the owner has it after the command (strongly consistent per member).
"""

from __future__ import annotations

import functools
import re
import uuid
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Body, Header, Path, Query
from fastapi.responses import Response

from app.api.deps import Backends, MemberDep
from app.api.models import ADD_ITEM_EXAMPLES, ADJUST_EXAMPLES, AddItemBody, AdjustQuantityBody
from app.api.views import AUTHENTICATED, CartState, CartView, CheckoutView, HistoryPage, errors
from app.cart.rules import MAX_ITEMS, MAX_QUANTITY, AdjustQuantity, Checkout, Command, GetCart, RemoveItem
from app.cart.rules import AddItem as AddItemCommand
from schemas.records import CommandReply, ReplyStatus, event_dict

router = APIRouter(prefix="/cart", tags=["cart"])

IDEMPOTENCY_KEY = r"^[A-Za-z0-9._:\-]{1,128}$"
"""What an Idempotency-Key may be (the fast path checks the header with the same pattern: app/api/fast_path.py)."""
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY,
        description="Makes a retry safe: the same key for the same member returns the first reply and writes nothing.",
        examples=["add-pc-1"],
    ),
]
MemberId = Annotated[
    UUID, Path(description="the member, whose cart it is", examples=["9a475f59-8863-43cc-aebd-7da999c16bea"])
]
ProductId = Annotated[UUID, Path(examples=["9054a277-9998-4bb4-be89-7d1ac45828d2"])]

COMMAND_ERRORS = errors(*AUTHENTICATED, 409, 413, 422, 503)
COMMAND_ERRORS[422] = {
    **COMMAND_ERRORS[422],
    "description": "malformed input: the field and the reason; or `IdempotencyKeyReused`: this member sent the "
    "Idempotency-Key with a different command (nothing was written)",
}
QUERY_ERRORS = errors(*AUTHENTICATED, 422, 503)
ADD_ITEM = (
    "Add an item that is not yet in the cart; 409 ItemAlreadyInCart if it is. Limits: a cart holds at most "
    f"{MAX_ITEMS} distinct items (409 CartFull) and at most {MAX_QUANTITY} of each (409 QuantityLimitExceeded); "
    "the body is at most 64 KiB (413)."
)


@functools.cache
def camel_key(key: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)


def camel(value: Any) -> Any:
    """snake_case keys (the stores' and topics' spelling) to camelCase (the HTTP API's), recursively."""
    if isinstance(value, dict):
        return {camel_key(k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def cart_body(body: dict[str, Any]) -> dict[str, Any]:
    """The cart after the command, with the command's events (camelCase)."""
    return {**camel(body["cart"]), "events": camel(body.get("events", []))}


class Reply(Response):
    """A command route's answer, already in the shape of its response model, as JSON.

    Returned as a Response, so FastAPI neither validates it against the model nor serializes it again (validating
    and dumping were a twentieth of the API's profile samples under load). The shapes are the models' (which forbid
    extra fields): the contract tests check every answer against the OpenAPI document, and tests/unit/test_replies.py
    checks each route's answers, from real replies, against its model."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class CommandRefused(Exception):
    """The owner answered with anything but success; carries the HTTP status and body to send."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("reason", ""))
        self.status_code = status_code
        self.body = body


async def ask(backends: Backends, member_id: UUID, key: str | None, command: Command) -> dict[str, Any]:
    """The owner's reply body on success (as the worker sent it); CommandRefused (409, 422, 503) otherwise."""
    # The key is scoped to the member: the same key from two members names two commands.
    return body_of(await backends.bus.ask(member_id, key or str(uuid.uuid4()), command))


def body_of(result: CommandReply) -> dict[str, Any]:
    match result.outcome:
        case ReplyStatus.ACCEPTED | ReplyStatus.UNCHANGED:
            return result.body
        case ReplyStatus.REJECTED:
            raise CommandRefused(409, camel(result.body["rejection"]))
        case ReplyStatus.INVALID:
            raise CommandRefused(422, result.body)
        case ReplyStatus.EXPIRED | ReplyStatus.UNAVAILABLE:
            reason = result.body.get("reason", result.status)
            raise CommandRefused(503, {"error": "ServiceUnavailable", "reason": reason})


@router.post(
    "/{memberId}",
    summary="Add an item to the member's cart",
    description=ADD_ITEM,
    response_model=CartView,
    responses=COMMAND_ERRORS,
)
async def add_item(
    memberId: MemberId,
    item: Annotated[AddItemBody, Body(openapi_examples=ADD_ITEM_EXAMPLES)],
    access: MemberDep,
    key: IdempotencyKey = None,
) -> Reply:
    return Reply(cart_body(await ask(access.backends, memberId, key, AddItemCommand(item.to_item()))))


# PUT is what the original's code routed; the same operation under its own method.
router.add_api_route(
    "/{memberId}",
    add_item,
    methods=["PUT"],
    summary="Add an item to the member's cart (as the original's code did)",
    description="Same as POST. " + ADD_ITEM,
    response_model=CartView,
    responses=COMMAND_ERRORS,
)


@router.delete(
    "/{memberId}/productId/{productId}", summary="Remove an item", response_model=CartView, responses=COMMAND_ERRORS
)
async def remove_item(memberId: MemberId, productId: ProductId, access: MemberDep, key: IdempotencyKey = None) -> Reply:
    """Remove the product from the cart; 409 ItemNotInCart if it is not there."""
    return Reply(cart_body(await ask(access.backends, memberId, key, RemoveItem(productId))))


@router.patch(
    "/{memberId}/productId/{productId}",
    summary="Adjust an item's quantity",
    response_model=CartView,
    responses=COMMAND_ERRORS,
)
async def adjust_quantity(
    memberId: MemberId,
    productId: ProductId,
    body: Annotated[AdjustQuantityBody, Body(openapi_examples=ADJUST_EXAMPLES)],
    access: MemberDep,
    key: IdempotencyKey = None,
) -> Reply:
    """Change the quantity by `delta` (negative decreases); 409 NegativeQuantity if it would drop to 0 or below,
    409 QuantityLimitExceeded if it would go above the limit of each item."""
    return Reply(cart_body(await ask(access.backends, memberId, key, AdjustQuantity(productId, body.delta))))


@router.get("/{memberId}", summary="The member's cart", response_model=CartState, responses=QUERY_ERRORS)
async def get_cart(memberId: MemberId, access: MemberDep) -> Reply:
    """`{memberId, cartId, version, items, total}`, served by the cart's owner after every accepted command."""
    return Reply(camel((await ask(access.backends, memberId, None, GetCart()))["cart"]))


@router.post(
    "/{memberId}/checkout",
    summary="Buy everything in the cart",
    response_model=CheckoutView,
    responses=errors(*AUTHENTICATED, 409, 422, 503),
)
async def checkout(memberId: MemberId, access: MemberDep, key: IdempotencyKey = None) -> Reply:
    """Purchase every item: the items purchased, their total, the time and the cartId. Empties the cart."""
    reply = await ask(access.backends, memberId, key, Checkout())
    body = cart_body(reply)
    purchased = [e for e in body["events"] if e["type"] == "ItemPurchased"]
    if not purchased:
        # The key's first command was not a checkout (its fingerprint is not in the journal, so after a restart the
        # owner can only tell by what the command did).
        reason = f"Idempotency-Key {key!r} was used for another command"
        raise CommandRefused(422, {"error": "IdempotencyKeyReused", "reason": reason})
    return Reply(
        {
            "memberId": str(memberId),
            "cartId": purchased[0]["cartId"],
            "purchasedAt": purchased[0]["payload"]["purchasedAt"],
            "items": [e["payload"]["item"] for e in purchased],
            "total": reply["purchase_total"],
            "version": body["version"],
            "events": body["events"],
        }
    )


@router.get(
    "/{memberId}/events",
    summary="The member's history, from the journal",
    response_model=HistoryPage,
    responses=QUERY_ERRORS,
)
async def history(
    memberId: MemberId,
    access: MemberDep,
    from_seq_nr: Annotated[int, Query(alias="fromSeqNr", ge=1, le=2**62)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Events oldest first, `limit` at a time; `nextSeqNr` is where the next page starts (null at the end)."""
    # The owner writes the member-keyed journal behind its answers (app/command_side/indexer.py): it indexes what
    # it holds first, so the history has every command answered before this request.
    body_of(await access.backends.bus.index_now(memberId))
    journal = await access.backends.journal()
    events = await journal.read(memberId, from_seq=from_seq_nr, limit=limit + 1)
    page = events[:limit]
    return {
        "memberId": str(memberId),
        "events": [camel(event_dict(e)) for e in page],
        "nextSeqNr": page[-1].seq_nr + 1 if len(events) > limit else None,
    }
