"""Request bodies and their validation: anything malformed is a 422 with the field and the reason."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from app.cart.rules import MAX_QUANTITY, Item

MAX_NAME_LENGTH = 200
MAX_PRICE = Decimal("1000000000")  # a billion per unit: far above any real price, far below NUMERIC(21,2)


ADD_ITEM_EXAMPLES: dict[str, Any] = {
    "awesome-desktop-pc": {
        "summary": "The original README's request",
        "value": {
            "productId": "9054a277-9998-4bb4-be89-7d1ac45828d2",
            "vendorId": "fbea6379-b76c-478b-8f86-4f1626fb8acf",
            "name": "awesome-desktop-pc",
            "price": "3200",
            "quantity": 1,
        },
    },
    "cents": {
        "summary": "A price with cents, as a string",
        "value": {
            "productId": "5c1a8e4e-3b9a-4d0e-9d6f-0a2b5d7c9e11",
            "vendorId": "fbea6379-b76c-478b-8f86-4f1626fb8acf",
            "name": "orange",
            "price": "1.25",
            "quantity": 6,
        },
    },
}
ADJUST_EXAMPLES: dict[str, Any] = {
    "increase": {"summary": "Two more", "value": {"delta": 2}},
    "decrease": {"summary": "One fewer (never to 0 or below: remove the item instead)", "value": {"delta": -1}},
}
PRICE_PATTERN = re.compile(r"^([0-9]{1,9}(\.[0-9]{1,2})?|1000000000(\.00?)?)$")
"""A unit price as a string: at most MAX_PRICE, at most 2 decimal places."""
CENT = Decimal("0.01")
PRICE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": PRICE_PATTERN.pattern},
        {"type": "number", "minimum": 0, "maximum": 1_000_000_000, "multipleOf": 0.01},
    ],
    "description": 'unit price: a decimal string ("3200", "19.99") or a number (3200, 19.99), at most 2 decimal '
    "places, at most 1000000000",
}


def whole(value: object) -> object:
    """A JSON integer, which JSON Schema says `3` and `3.0` both are; never a bool, a string or 1.5."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("must be a whole number")


WHOLE = BeforeValidator(whole)  # after the Field in an Annotated: nested, pydantic writes `ge` into the schema


class AddItemBody(BaseModel):
    """The original's body: `{"productId", "vendorId", "name", "price", "quantity"}`; price as a string or number."""

    model_config = ConfigDict(extra="forbid")

    productId: UUID
    vendorId: UUID
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"\S", description="not blank")]
    price: Annotated[Decimal, Field(json_schema_extra=PRICE_SCHEMA)]
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY), WHOLE]

    @field_validator("name")
    @classmethod
    def name_without_padding(cls, value: str) -> str:
        # Never blank: the pattern asks for a character that is not white space (Unicode's White_Space, as JSON
        # Schema means it; str.strip also strips a few separators that are not, hence the `or`).
        return value.strip() or value

    @field_validator("price", mode="before")
    @classmethod
    def price_is_a_decimal_string_or_a_number_in_cents(cls, value: object) -> object:
        # What PRICE_SCHEMA says, so a client generated from the OpenAPI document is never refused. A JSON number is
        # a binary float by the time it is parsed (19.99 is 19.989999999999998...), so a number is taken as the
        # whole cents it is nearest to, and only when it is within float noise of them: 19.99 and 0.1 * 3 are
        # exact cents, 19.999 is refused. A string is exact as it is.
        if isinstance(value, str) and PRICE_PATTERN.fullmatch(value):
            return value
        if isinstance(value, float) and math.isfinite(value) and 0 <= value <= MAX_PRICE:
            if value.is_integer():
                return int(value)
            cents = round(value * 100)
            # A few units in the last place of the product: float noise, never a fraction of a cent (nor 1e-8).
            if abs(value * 100 - cents) <= 4 * math.ulp(value * 100):
                return Decimal(cents).scaleb(-2)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_PRICE:
            return value
        raise ValueError(
            f'price must be a decimal string ("3200.50") or a number, at most 2 decimal places, from 0 to {MAX_PRICE}'
        )

    @field_validator("price")
    @classmethod
    def price_in_cents(cls, value: Decimal) -> Decimal:
        return value.quantize(CENT) if value.as_tuple().exponent != 0 else value  # "19.9" is "19.90"; "3200" stays

    def to_item(self) -> Item:
        return Item(self.productId, self.vendorId, self.name, self.price, self.quantity)


class AdjustQuantityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delta: Annotated[
        int,
        Field(
            ge=-MAX_QUANTITY,
            le=MAX_QUANTITY,
            json_schema_extra={"not": {"const": 0}},
            description="the change in quantity; negative decreases; never 0",
        ),
        WHOLE,
    ]

    @field_validator("delta")
    @classmethod
    def delta_is_not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("delta must not be 0")
        return value
