"""Request bodies and their validation: anything malformed is a 422 with the field and the reason."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from app.cart.rules import MAX_QUANTITY, Item

MAX_NAME_LENGTH = 200
MAX_PRICE = Decimal("1000000000")  # a billion per unit: far above any real price, far below NUMERIC(21,2)


class AddItemBody(BaseModel):
    """The original's body: `{"productId", "vendorId", "name", "price", "quantity"}`; price as a string or number."""

    model_config = ConfigDict(extra="forbid")

    productId: UUID
    vendorId: UUID
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
    price: Decimal
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]

    @field_validator("name")
    @classmethod
    def name_is_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()

    @field_validator("price", mode="before")
    @classmethod
    def price_is_a_string_or_number(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError('price must be a decimal number, as a string ("3200.50") or a number')
        # A JSON number arrives as a float; its shortest repr is the literal the client wrote.
        return str(value) if isinstance(value, float) else value

    @field_validator("price")
    @classmethod
    def price_is_money(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("price must be a finite number")
        if value.is_signed():  # also "-0": a price is never written with a minus sign
            raise ValueError("price must not be negative")
        if value > MAX_PRICE:
            raise ValueError(f"price must be at most {MAX_PRICE}")
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -2 and value != value.quantize(Decimal("0.01")):
            raise ValueError("price must have at most 2 decimal places")
        return value.quantize(Decimal("0.01")) if exponent != 0 else value

    def to_item(self) -> Item:
        return Item(self.productId, self.vendorId, self.name, self.price, self.quantity)


class AdjustQuantityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delta: Annotated[StrictInt, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]

    @field_validator("delta")
    @classmethod
    def delta_is_not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("delta must not be 0")
        return value
