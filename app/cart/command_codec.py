"""Commands as JSON-compatible dicts (`{"type": "AddItem", "item": {...}}`), for the `cart-commands` topic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from app.cart.codec import CodecError, item_from_dict, item_to_dict
from app.cart.rules import AddItem, AdjustQuantity, Checkout, Command, GetCart, RemoveItem


def command_to_dict(command: Command) -> dict[str, Any]:
    match command:
        case AddItem(item):
            return {"type": "AddItem", "item": item_to_dict(item)}
        case RemoveItem(product_id):
            return {"type": "RemoveItem", "product_id": str(product_id)}
        case AdjustQuantity(product_id, delta):
            return {"type": "AdjustQuantity", "product_id": str(product_id), "delta": delta}
        case Checkout():
            return {"type": "Checkout"}
        case GetCart():
            return {"type": "GetCart"}
    raise CodecError(f"not a command: {command!r}")


def command_from_dict(d: Mapping[str, Any]) -> Command:
    """Raise CodecError on anything that is not a well-formed command."""
    try:
        match d.get("type"):
            case "AddItem":
                return AddItem(item_from_dict(d["item"]))
            case "RemoveItem":
                return RemoveItem(UUID(d["product_id"]))
            case "AdjustQuantity":
                delta = d["delta"]
                if not isinstance(delta, int) or isinstance(delta, bool):
                    raise CodecError("delta must be an integer")
                return AdjustQuantity(UUID(d["product_id"]), delta)
            case "Checkout":
                return Checkout()
            case "GetCart":
                return GetCart()
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed {d.get('type')} command: {error}") from error
    raise CodecError(f"unknown command type {d.get('type')!r}")
