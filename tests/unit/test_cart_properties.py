"""Property tests: random command sequences folded through decide/evolve keep the cart's invariants, and
every event and cart they produce survives the codec exactly."""

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from app.cart import (
    EMPTY_CART,
    MAX_ITEMS,
    MAX_QUANTITY,
    AddItem,
    AdjustQuantity,
    Cart,
    CartFull,
    Checkout,
    Command,
    Decision,
    EmptyCartCheckout,
    Event,
    GetCart,
    Item,
    ItemAdded,
    ItemAlreadyInCart,
    ItemNotInCart,
    ItemPurchased,
    NegativeQuantity,
    QuantityLimitExceeded,
    Rejection,
    RemoveItem,
    decide,
    replay,
)
from app.cart_codec import (
    cart_from_dict,
    cart_to_dict,
    event_from_payload,
    event_to_payload,
    event_type_name,
)

# A small pool, so that sequences often hit the same product twice (duplicates, removals, adjustments).
PRODUCTS = [UUID(int=n) for n in range(1, 4)]
VENDORS = [UUID(int=100 + n) for n in range(2)]
OFFSETS = [timedelta(0), timedelta(hours=2), timedelta(hours=-7, minutes=-30)]

Ints = st.SearchStrategy[int]
prices = st.decimals(min_value=0, max_value=Decimal("9999.99"), places=2)
clocks = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([timezone(offset) for offset in OFFSETS]),
)


def commands(quantities: Ints, deltas: Ints) -> st.SearchStrategy[Command]:
    """Commands over the product pool, with the given added quantities and adjustment deltas."""
    products = st.sampled_from(PRODUCTS)
    items = st.builds(
        Item,
        product_id=products,
        vendor_id=st.sampled_from(VENDORS),
        name=st.text(max_size=20),
        price=prices,
        quantity=quantities,
    )
    add: st.SearchStrategy[Command] = st.builds(AddItem, items)
    adjust: st.SearchStrategy[Command] = st.builds(AdjustQuantity, products, deltas)
    others: list[st.SearchStrategy[Command]] = [
        st.builds(RemoveItem, products),
        st.just(Checkout()),
        st.just(GetCart()),
    ]
    # Weighted towards adds and adjustments: otherwise most commands hit an empty cart and are rejected.
    weighted = [add, add, add, adjust, adjust, adjust, *others]
    return st.sampled_from(weighted).flatmap(lambda strategy: strategy)


Steps = list[tuple[Command, datetime, UUID]]


def sequences(quantities: Ints, deltas: Ints) -> st.SearchStrategy[Steps]:
    """Command sequences, each command with its own clock reading and fresh cart id."""
    return st.lists(st.tuples(commands(quantities, deltas), clocks, st.uuids()), max_size=80)


# Adds of 1..50 and adjustments by -60..60, with small numbers drawn more often so that adjustments land
# exactly on zero, one and just below zero instead of almost always far from them.
everyday = sequences(
    quantities=st.one_of(st.integers(1, 3), st.integers(1, 50)),
    deltas=st.one_of(st.integers(-3, 3), st.integers(-60, 60)),
)

# Quantities around MAX_QUANTITY, with the boundary values drawn often, so the limit is reached and crossed.
near_the_limit = sequences(
    quantities=st.one_of(
        st.sampled_from([1, MAX_QUANTITY - 1, MAX_QUANTITY, MAX_QUANTITY + 1]),
        st.integers(1, MAX_QUANTITY + 5),
    ),
    deltas=st.one_of(
        st.sampled_from([-MAX_QUANTITY, -1, 1, 2, MAX_QUANTITY - 1, MAX_QUANTITY]),
        st.integers(-MAX_QUANTITY - 5, MAX_QUANTITY + 5),
    ),
)


@dataclass(frozen=True)
class Step:
    """One command of a sequence: the cart before, what was decided and the cart after."""

    before: Cart
    command: Command
    now: datetime
    new_cart_id: UUID
    result: Decision
    after: Cart

    @property
    def accepted(self) -> bool:
        return isinstance(self.result, tuple)

    @property
    def events(self) -> tuple[Event, ...]:
        return self.result if isinstance(self.result, tuple) else ()


def run(steps: Steps) -> Iterator[Step]:
    """Decide each command against the current cart and evolve it with the accepted events."""
    cart = EMPTY_CART
    for command, now, new_cart_id in steps:
        result = decide(cart, command, now=now, new_cart_id=new_cart_id)
        after = replay(result, cart) if isinstance(result, tuple) else cart
        yield Step(cart, command, now, new_cart_id, result, after)
        cart = after


Model = dict[UUID, Item]


def model_step(model: Model, command: Command) -> tuple[type[Rejection] | None, Model]:
    """An independent, dict-based statement of the rules: the expected rejection (None when accepted) and
    the items afterwards, in order."""
    match command:
        case AddItem(item=item):
            if item.product_id in model:
                return ItemAlreadyInCart, model
            if item.quantity > MAX_QUANTITY:
                return QuantityLimitExceeded, model
            if len(model) >= MAX_ITEMS:
                return CartFull, model
            return None, {**model, item.product_id: item}
        case RemoveItem(product_id=missing) | AdjustQuantity(product_id=missing) if missing not in model:
            return ItemNotInCart, model
        case RemoveItem(product_id=product_id):
            return None, {key: item for key, item in model.items() if key != product_id}
        case AdjustQuantity(product_id=product_id, delta=delta):
            quantity = model[product_id].quantity + delta
            if quantity > MAX_QUANTITY:
                return QuantityLimitExceeded, model
            if quantity < 1:
                return NegativeQuantity, model
            return None, {**model, product_id: replace(model[product_id], quantity=quantity)}
        case Checkout():
            return (EmptyCartCheckout, model) if not model else (None, {})
        case GetCart():
            return None, model


def assert_within_limits(cart: Cart) -> None:
    assert all(1 <= item.quantity <= MAX_QUANTITY for item in cart.items), cart
    assert len(cart.items) <= MAX_ITEMS
    assert len({item.product_id for item in cart.items}) == len(cart.items)


@given(st.one_of(everyday, near_the_limit))
def test_no_sequence_of_commands_leaves_an_item_with_a_quantity_outside_the_limits(steps: Steps) -> None:
    for step in run(steps):
        assert_within_limits(step.after)


@given(st.one_of(everyday, near_the_limit))
def test_every_command_is_accepted_or_rejected_exactly_as_the_rules_say(steps: Steps) -> None:
    model: Model = {}
    for step in run(steps):
        expected_rejection, model = model_step(model, step.command)
        assert (None if step.accepted else type(step.result)) == expected_rejection, step
        assert step.after.items == tuple(model.values())


@given(everyday)
def test_every_checkout_purchases_exactly_the_cart_total_and_empties_the_cart(steps: Steps) -> None:
    for step in run(steps):
        if not (isinstance(step.command, Checkout) and step.accepted):
            continue
        purchases = [event for event in step.events if isinstance(event, ItemPurchased)]
        assert len(purchases) == len(step.events) == len(step.before.items)
        assert sum((p.item.price * p.item.quantity for p in purchases), Decimal(0)) == step.before.total
        assert [p.item for p in purchases] == list(step.before.items)
        assert {p.cart_id for p in purchases} == {step.before.cart_id}
        assert {p.purchased_at for p in purchases} == {step.now.astimezone(UTC)}
        assert step.after == EMPTY_CART


@given(everyday)
def test_events_carry_the_carts_id_or_the_fresh_one_when_the_cart_has_none(steps: Steps) -> None:
    for step in run(steps):
        expected = step.before.cart_id if step.before.cart_id is not None else step.new_cart_id
        assert all(event.cart_id == expected for event in step.events)
        if any(isinstance(event, ItemAdded) for event in step.events):
            assert step.after.cart_id == expected


@given(everyday)
def test_rejected_commands_and_queries_change_nothing(steps: Steps) -> None:
    for step in run(steps):
        if not step.accepted or isinstance(step.command, GetCart):
            assert step.events == ()
            assert step.after == step.before


@given(everyday)
def test_replaying_all_accepted_events_rebuilds_the_final_cart(steps: Steps) -> None:
    history = list(run(steps))
    final = history[-1].after if history else EMPTY_CART
    assert replay(event for step in history for event in step.events) == final


def through_json(value: dict[str, Any]) -> Any:
    """Serialise and parse, refusing floats, so a lossy number anywhere fails the test."""

    def no_floats(text: str) -> Any:
        raise AssertionError(f"float in encoded JSON: {text}")

    return json.loads(json.dumps(value), parse_float=no_floats)


@given(everyday)
def test_the_codec_round_trips_every_event_and_cart_exactly(steps: Steps) -> None:
    for step in run(steps):
        for event in step.events:
            decoded = event_from_payload(event_type_name(event), through_json(event_to_payload(event)))
            assert decoded == event
            assert_same_prices(decoded, event)
        assert cart_from_dict(through_json(cart_to_dict(step.after))) == step.after


def assert_same_prices(decoded: Event, original: Event) -> None:
    """Decimal equality ignores the exponent; the codec keeps that too, so check the digits as well."""
    decoded_item = getattr(decoded, "item", None)
    original_item = getattr(original, "item", None)
    if isinstance(decoded_item, Item) and isinstance(original_item, Item):
        assert decoded_item.price.as_tuple() == original_item.price.as_tuple()
