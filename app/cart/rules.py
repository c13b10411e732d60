"""The pure, event-sourced core of the shopping cart: values for items, commands, events and rejections,
`decide` which turns a command against the current cart into either the events that record what happened
or a rejection explaining why nothing happened, `evolve` which applies one event to a cart, and `replay`
which folds a history of events into the current cart. Nothing here performs I/O, reads the clock or
generates identifiers: the caller passes `now` and `new_cart_id`, so every function is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeAlias, assert_never
from uuid import UUID

MAX_QUANTITY = 10_000
"""Largest quantity a single item may have."""

MAX_ITEMS = 100
"""Largest number of distinct items (products) a cart may hold."""


@dataclass(frozen=True)
class Item:
    """A product line in a cart; `price` is the unit price and money is always a `Decimal`."""

    product_id: UUID
    vendor_id: UUID
    name: str
    price: Decimal
    quantity: int

    @property
    def subtotal(self) -> Decimal:
        """Unit price times quantity, exact."""
        return self.price * self.quantity


# --- Commands: what a caller asks the cart to do. ------------------------------------------------------


@dataclass(frozen=True)
class AddItem:
    """Put a product that is not yet in the cart into it."""

    item: Item


@dataclass(frozen=True)
class RemoveItem:
    """Take a product out of the cart entirely."""

    product_id: UUID


@dataclass(frozen=True)
class AdjustQuantity:
    """Change a product's quantity by `delta` (positive to increase, negative to decrease)."""

    product_id: UUID
    delta: int


@dataclass(frozen=True)
class Checkout:
    """Purchase everything in the cart, which empties it."""


@dataclass(frozen=True)
class GetCart:
    """Read the cart; a query, so it never produces events."""


Command: TypeAlias = AddItem | RemoveItem | AdjustQuantity | Checkout | GetCart


# --- Events: facts that happened. The type name of an event is its class name. -------------------------


@dataclass(frozen=True)
class ItemAdded:
    """`item` was put into cart `cart_id`."""

    cart_id: UUID
    item: Item


@dataclass(frozen=True)
class ItemRemoved:
    """The product was taken out of cart `cart_id`."""

    cart_id: UUID
    product_id: UUID


@dataclass(frozen=True)
class ItemQuantityIncreased:
    """The product's quantity went up by `amount` (always positive)."""

    cart_id: UUID
    product_id: UUID
    amount: int


@dataclass(frozen=True)
class ItemQuantityDecreased:
    """The product's quantity went down by `amount` (always positive)."""

    cart_id: UUID
    product_id: UUID
    amount: int


@dataclass(frozen=True)
class ItemPurchased:
    """`item` was bought at checkout; all purchases of one checkout share `purchased_at` (aware, UTC)."""

    cart_id: UUID
    item: Item
    purchased_at: datetime


Event: TypeAlias = ItemAdded | ItemRemoved | ItemQuantityIncreased | ItemQuantityDecreased | ItemPurchased


# --- Rejections: returned (never raised) when a command breaks a rule. -----------------------------------


@dataclass(frozen=True)
class ItemAlreadyInCart:
    """An AddItem named a product that is already in the cart; adjust its quantity instead."""

    product_id: UUID

    @property
    def reason(self) -> str:
        """One-line human-readable explanation."""
        return f"item {self.product_id} is already in the cart"


@dataclass(frozen=True)
class ItemNotInCart:
    """A RemoveItem or AdjustQuantity named a product that is not in the cart."""

    product_id: UUID

    @property
    def reason(self) -> str:
        """One-line human-readable explanation."""
        return f"item {self.product_id} is not in the cart"


@dataclass(frozen=True)
class NegativeQuantity:
    """The change would leave the quantity at zero or below.

    `quantity` is the quantity before the change and `delta` the requested change; an AddItem with a
    non-positive quantity is reported as quantity 0 changed by the item's quantity.
    """

    product_id: UUID
    quantity: int
    delta: int

    @property
    def reason(self) -> str:
        """One-line human-readable explanation."""
        before, after = self.quantity, self.quantity + self.delta
        return f"item {self.product_id} has quantity {before}; {self.delta:+} would leave {after}, below 1"


@dataclass(frozen=True)
class EmptyCartCheckout:
    """A Checkout was asked of a cart with nothing in it."""

    @property
    def reason(self) -> str:
        """One-line human-readable explanation."""
        return "cannot check out an empty cart"


@dataclass(frozen=True)
class QuantityLimitExceeded:
    """The command would give the product `quantity` (the resulting quantity), more than `limit`."""

    product_id: UUID
    quantity: int
    limit: int

    @property
    def reason(self) -> str:
        """One-line human-readable explanation."""
        return f"item {self.product_id} would have quantity {self.quantity}, above the limit of {self.limit}"


@dataclass(frozen=True)
class CartFull:
    """An AddItem of a new product when the cart already holds `limit` distinct items."""

    limit: int

    @property
    def reason(self) -> str:
        """One-line human-readable explanation."""
        return f"the cart already holds the maximum of {self.limit} distinct items"


ItemRejection: TypeAlias = ItemAlreadyInCart | ItemNotInCart | NegativeQuantity | QuantityLimitExceeded
"""The rejections about one product; each has a `product_id`."""

Rejection: TypeAlias = ItemRejection | EmptyCartCheckout | CartFull

Decision: TypeAlias = tuple[Event, ...] | Rejection
"""What `decide` returns: the events to record (possibly none) or the reason nothing happens."""


# --- State. ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cart:
    """The current cart: `cart_id` is None until the first item is added and again after checkout.

    `items` keeps insertion order and holds at most one line per product.
    """

    cart_id: UUID | None = None
    items: tuple[Item, ...] = ()

    def item(self, product_id: UUID) -> Item | None:
        """The line for `product_id`, or None when that product is not in the cart."""
        return next((item for item in self.items if item.product_id == product_id), None)

    @property
    def total(self) -> Decimal:
        """Sum of all subtotals; Decimal("0") for an empty cart."""
        return total_of(self.items)

    @property
    def is_empty(self) -> bool:
        """True when the cart holds no items."""
        return not self.items


EMPTY_CART = Cart()


def total_of(items: Iterable[Item]) -> Decimal:
    """Sum of the items' subtotals, exact; Decimal("0") for none."""
    return sum((item.subtotal for item in items), Decimal(0))


def purchase_total(events: Iterable[Event]) -> Decimal:
    """What the purchases among `events` cost together (a checkout's total)."""
    return total_of(e.item for e in events if isinstance(e, ItemPurchased))


# --- Deciding. ------------------------------------------------------------------------------------------


def decide(cart: Cart, command: Command, *, now: datetime, new_cart_id: UUID) -> Decision:
    """Decide what `command` does to `cart` without changing anything.

    Returns the events to record (possibly none: GetCart and a zero adjustment are no-ops) or a rejection.
    Events carry the cart's `cart_id`, or `new_cart_id` when the cart has none yet. `now` must be
    timezone-aware; it is normalised to UTC and becomes the `purchased_at` of every purchase of a checkout.
    Applying the returned events with `evolve` never yields a quantity outside 1..MAX_QUANTITY or more than
    MAX_ITEMS items. Raises ValueError for a naive `now`, which is a programming error, not a rejection.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    cart_id = cart.cart_id if cart.cart_id is not None else new_cart_id
    match command:
        case AddItem(item=item):
            return _add(cart, cart_id, item)
        case RemoveItem(product_id=product_id):
            return _remove(cart, cart_id, product_id)
        case AdjustQuantity(product_id=product_id, delta=delta):
            return _adjust(cart, cart_id, product_id, delta)
        case Checkout():
            return _checkout(cart, cart_id, now.astimezone(UTC))
        case GetCart():
            return ()
        case _:
            assert_never(command)


def _add(cart: Cart, cart_id: UUID, item: Item) -> Decision:
    if cart.item(item.product_id) is not None:
        return ItemAlreadyInCart(item.product_id)
    if item.quantity > MAX_QUANTITY:
        return QuantityLimitExceeded(item.product_id, item.quantity, MAX_QUANTITY)
    # The edge should already refuse this, but the core alone guarantees no line ever has quantity <= 0.
    if item.quantity <= 0:
        return NegativeQuantity(item.product_id, 0, item.quantity)
    if len(cart.items) >= MAX_ITEMS:
        return CartFull(MAX_ITEMS)
    return (ItemAdded(cart_id, item),)


def _remove(cart: Cart, cart_id: UUID, product_id: UUID) -> Decision:
    if cart.item(product_id) is None:
        return ItemNotInCart(product_id)
    return (ItemRemoved(cart_id, product_id),)


def _adjust(cart: Cart, cart_id: UUID, product_id: UUID, delta: int) -> Decision:
    current = cart.item(product_id)
    if current is None:
        return ItemNotInCart(product_id)
    if delta == 0:
        return ()
    resulting = current.quantity + delta
    if resulting > MAX_QUANTITY:
        return QuantityLimitExceeded(product_id, resulting, MAX_QUANTITY)
    if resulting <= 0:
        return NegativeQuantity(product_id, current.quantity, delta)
    if delta > 0:
        return (ItemQuantityIncreased(cart_id, product_id, delta),)
    return (ItemQuantityDecreased(cart_id, product_id, -delta),)


def _checkout(cart: Cart, cart_id: UUID, now: datetime) -> Decision:
    if cart.is_empty:
        return EmptyCartCheckout()
    return tuple(ItemPurchased(cart_id, item, now) for item in cart.items)


# --- Evolving. ------------------------------------------------------------------------------------------


def evolve(cart: Cart, event: Event) -> Cart:
    """Return the cart after `event`; pure, `cart` is not modified.

    Events are recorded facts, so they are applied as given and not re-validated (that is `decide`'s
    job); an event naming a product that is not in the cart leaves the items unchanged. A purchase that
    empties the cart clears `cart_id`, so the next added item starts a new cart.
    """
    match event:
        case ItemAdded(cart_id=cart_id, item=item):
            return Cart(cart.cart_id if cart.cart_id is not None else cart_id, (*cart.items, item))
        case ItemRemoved(product_id=product_id):
            return _without(cart, product_id)
        case ItemQuantityIncreased(product_id=product_id, amount=amount):
            return _with_quantity_changed(cart, product_id, amount)
        case ItemQuantityDecreased(product_id=product_id, amount=amount):
            return _with_quantity_changed(cart, product_id, -amount)
        case ItemPurchased(item=item):
            remaining = _without(cart, item.product_id)
            return EMPTY_CART if remaining.is_empty else remaining
        case _:
            assert_never(event)


def _without(cart: Cart, product_id: UUID) -> Cart:
    return replace(cart, items=tuple(item for item in cart.items if item.product_id != product_id))


def _with_quantity_changed(cart: Cart, product_id: UUID, delta: int) -> Cart:
    return replace(cart, items=tuple(_changed(item, product_id, delta) for item in cart.items))


def _changed(item: Item, product_id: UUID, delta: int) -> Item:
    return replace(item, quantity=item.quantity + delta) if item.product_id == product_id else item


def replay(events: Iterable[Event], cart: Cart = EMPTY_CART) -> Cart:
    """Fold `events`, oldest first, over `cart` (the empty cart by default) with `evolve`."""
    for event in events:
        cart = evolve(cart, event)
    return cart
