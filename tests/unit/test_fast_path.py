"""The command routes' fast path (app/api/fast_path.py) answers exactly as FastAPI does: every request below goes to
the API built with it and without it, over the same command bus (a stand-in that answers every command with a real
reply of the command handler, captured once), and the two answers must be the same to the byte, headers included;
and the fast path must really take the well-formed ones (else it would cost a parse for nothing)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import orjson
from pydantic import SecretStr

from app.api.auth import mint
from app.api.fast_path import CommandFastPath
from app.api.main import create_app
from app.cart.command_codec import command_to_dict
from app.cart.rules import AddItem, AdjustQuantity, Checkout, Command, GetCart, Item, RemoveItem
from app.command_side.command_bus import CartServiceUnavailable
from app.settings import get_settings
from schemas.records import CommandReply, ReplyStatus
from tests.memory_journal import MemoryJournal
from tests.unit.test_command_handler import Worker

MEMBER, OTHER, PRODUCT, VENDOR = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
ITEM = {"productId": str(PRODUCT), "vendorId": str(VENDOR), "name": "pc", "price": "999.90", "quantity": 2}


class CannedBus:
    """Answers each kind of command with one real reply, captured from the command handler; remembers each ask."""

    def __init__(self, replies: dict[str, CommandReply]) -> None:
        self.replies: dict[str, CommandReply] = replies
        self.asked: list[tuple[UUID, dict[str, Any]]] = []

    async def ask(self, member_id: UUID, command_id: str, command: Command) -> CommandReply:
        as_dict = command_to_dict(command)
        self.asked.append((member_id, as_dict))
        reply = self.replies[str(as_dict["type"])]
        if reply.status == "raise":
            raise CartServiceUnavailable("no cart worker answered within 10s (is a worker running?)")
        return reply


async def captured_replies() -> dict[str, CommandReply]:
    worker = Worker(MemoryJournal())
    replies = {}
    item = Item(PRODUCT, VENDOR, "pc", Decimal("999.90"), 2)
    for key, command in [
        ("a", AddItem(item)),
        ("b", AdjustQuantity(PRODUCT, 1)),
        ("c", GetCart()),
        ("d", Checkout()),
        ("e", RemoveItem(PRODUCT)),  # after the checkout: rejected, ItemNotInCart
    ]:
        as_dict = command_to_dict(command)
        replies[str(as_dict["type"])] = await worker.ask(MEMBER, key, as_dict)
    assert replies["RemoveItem"].outcome == ReplyStatus.REJECTED
    return replies


def apps(bus: CannedBus) -> tuple[Any, Any]:
    settings = get_settings().model_copy(update={"auth": "on", "auth_secret": SecretStr("x" * 32)})
    built = []
    for fast in (True, False):
        app = create_app(settings, fast_path=fast)
        app.state.backends = type("Backends", (), {"bus": bus})()
        built.append(app)
    return built[0], built[1]


def fast_path_of(app: Any) -> CommandFastPath:
    layer = app.middleware_stack
    while not isinstance(layer, CommandFastPath):
        layer = layer.app
    return layer


async def both(fast: Any, slow: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    answers = []
    for app in (fast, slow):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            answers.append(await client.request(method, path, **kwargs))
    quick, plain = answers
    assert (quick.status_code, quick.content) == (plain.status_code, plain.content), (method, path, kwargs)
    assert sorted(quick.headers.items()) == sorted(plain.headers.items()), (method, path)
    return quick


async def test_the_fast_path_answers_every_command_route_as_fastapi_does_and_takes_the_well_formed_ones() -> None:
    bus = CannedBus(await captured_replies())
    fast, slow = apps(bus)
    settings = get_settings().model_copy(update={"auth_secret": SecretStr("x" * 32)})
    member = {"Authorization": f"Bearer {mint(settings, str(MEMBER), [], 3600)}"}
    stranger = {"Authorization": f"Bearer {mint(settings, str(OTHER), [], 3600)}"}
    admin = {"Authorization": f"Bearer {mint(settings, 'admin', ['carts:admin'], 3600)}"}
    cart, item = f"/cart/{MEMBER}", f"/cart/{MEMBER}/productId/{PRODUCT}"
    # fast_path_of needs the stack built: it is, once a request has gone through.
    well_formed = [
        ("POST", cart, {"json": ITEM, "headers": {**member, "Idempotency-Key": "k-1"}}),
        ("PUT", cart, {"json": ITEM, "headers": admin}),
        ("POST", cart, {"json": {**ITEM, "price": 999.9}, "headers": member}),  # a number that is whole cents
        ("PATCH", item, {"json": {"delta": 1}, "headers": member}),
        ("GET", cart, {"headers": member}),
        ("POST", f"{cart}/checkout", {"headers": {**member, "Idempotency-Key": "k-2"}}),
        ("DELETE", item, {"headers": member}),  # rejected by the cart's rules: 409 from the app's handler
    ]
    for method, path, kwargs in well_formed:
        await both(fast, slow, method, path, **kwargs)
    taken = fast_path_of(fast).taken
    assert taken == len(well_formed)
    assert bus.asked[::2] == bus.asked[1::2]  # each asked the owner the same

    refused = [
        ("POST", cart, {"json": ITEM}),  # no token: 401
        ("POST", cart, {"json": ITEM, "headers": stranger}),  # another member's: 403
        ("POST", cart, {"json": {**ITEM, "price": "9.999"}, "headers": member}),  # 422
        ("POST", cart, {"content": b"{not json", "headers": {**member, "content-type": "application/json"}}),
        ("POST", cart, {"content": orjson.dumps(ITEM), "headers": {**member, "content-type": "text/plain"}}),
        ("POST", cart, {"json": ITEM, "headers": {**member, "Idempotency-Key": "not a key!"}}),
        ("POST", cart.upper().replace("/CART", "/cart"), {"json": ITEM, "headers": admin}),  # not canonical
        ("PATCH", item, {"json": {"delta": 0}, "headers": member}),  # 422
        ("GET", f"{cart}?extra=1", {"headers": {**member, "Idempotency-Key": "k-3"}}),
        ("POST", f"{cart}/", {"json": ITEM, "headers": member}),  # 404
        ("POST", cart, {"content": b"x" * 70_000, "headers": {**member, "content-type": "application/json"}}),
    ]
    for method, path, kwargs in refused:
        await both(fast, slow, method, path, **kwargs)
    assert fast_path_of(fast).taken == taken

    bus.replies["AddItem"] = CommandReply(correlation_id="x", status="raise", body={})
    unavailable = await both(fast, slow, "POST", cart, json=ITEM, headers=member)  # no worker: 503, Retry-After
    assert unavailable.status_code == 503 and unavailable.headers["retry-after"] == "1"
    assert fast_path_of(fast).taken == taken + 1


async def test_the_fast_path_keeps_the_member_s_rate() -> None:
    from app.api.limits import Buckets

    bus = CannedBus(await captured_replies())
    fast, slow = apps(bus)
    for app in (fast, slow):
        app.state.member_limits = Buckets("member", 0.001, 1)  # one request, then none for a long while
    settings = get_settings().model_copy(update={"auth_secret": SecretStr("x" * 32)})
    member = {"Authorization": f"Bearer {mint(settings, str(MEMBER), [], 3600)}"}

    first = await both(fast, slow, "GET", f"/cart/{MEMBER}", headers=member)
    second = await both(fast, slow, "GET", f"/cart/{MEMBER}", headers=member)

    assert (first.status_code, second.status_code) == (200, 429)
    assert second.headers["retry-after"]
