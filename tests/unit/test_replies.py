"""The cart routes answer with the worker's reply reshaped (app/api/cart_routes.py `Reply`), without FastAPI
validating it against the route's response model. So here every route's answer, from real replies of the command
handler (over the in-memory journal), is checked against the model the OpenAPI document gives for it: a field
named differently, missing or extra fails (the views forbid extra fields)."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import orjson
import pytest
from pydantic import BaseModel

from app.api import cart_routes
from app.api.deps import MemberAccess
from app.api.models import AddItemBody, AdjustQuantityBody
from app.api.views import CartState, CartView, CheckoutView
from app.cart.command_codec import command_to_dict
from app.cart.rules import Command
from schemas.records import CommandReply
from tests.memory_journal import MemoryJournal
from tests.unit.test_command_handler import Worker


class Bus:
    """The API's command bus, answered by a real command handler instead of through Kafka."""

    def __init__(self) -> None:
        self.worker = Worker(MemoryJournal())

    async def ask(self, member_id: UUID, command_id: str, command: Command) -> CommandReply:
        return await self.worker.ask(member_id, command_id, command_to_dict(command))


def answered(reply: cart_routes.Reply, model: type[BaseModel]) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(reply.body)
    assert model.model_validate(body).model_dump(mode="json", exclude_unset=True) == body
    return body


@pytest.mark.asyncio
async def test_every_cart_route_answers_in_the_shape_of_its_response_model() -> None:
    access: Any = MemberAccess(backends=type("Backends", (), {"bus": Bus()})(), principal=None)  # type: ignore[arg-type]
    member, product, vendor = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    item = AddItemBody(productId=product, vendorId=vendor, name="pc", price="999.90", quantity=2)

    added = answered(await cart_routes.add_item(member, item, access, key="a"), CartView)
    assert added["items"][0]["price"] == "999.90" and added["events"][0]["position"] is not None
    answered(await cart_routes.add_item(member, item, access, key="a"), CartView)  # the same key: the first reply
    answered(await cart_routes.adjust_quantity(member, product, AdjustQuantityBody(delta=1), access, key="b"), CartView)
    other = AddItemBody(productId=uuid.uuid4(), vendorId=vendor, name="mouse", price="5", quantity=1)
    answered(await cart_routes.add_item(member, other, access, key="c"), CartView)
    answered(await cart_routes.remove_item(member, other.productId, access, key="d"), CartView)
    assert answered(await cart_routes.get_cart(member, access), CartState)["version"] == 4
    bought = answered(await cart_routes.checkout(member, access, key="e"), CheckoutView)
    assert bought["total"] == "2999.70" and bought["items"][0]["quantity"] == 3
