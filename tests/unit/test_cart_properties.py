"""Property tests: random command sequences folded through decide/evolve keep the cart's invariants, and
every event and cart they produce survives the codec exactly."""

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from app.cart.codec import (
    cart_from_dict,
    cart_to_dict,
    event_from_payload,
    event_to_payload,
    event_type_name,
)
from app.cart.rules import (
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

# A small pool, so that sequences often hit the same product twice (duplicates, removals, adjustments).
PRODUCTS = [UUID(int=n) for n in range(1, 4)]
VENDORS = [UUID(int=100 + n) for n in range(2)]
OFFSETS = [timedelta(0), timedelta(hours=2), timedelta(hours=-7, minutes=-30)]

prices = st.decimals(min_value=0, max_value=Decimal("9999.99"), places=2)
clocks = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([timezone(offset) for offset in OFFSETS]),
)


T = TypeVar("T")
Steps = list[tuple[Command, datetime, UUID]]
Model = dict[UUID, Item]

# Weighted towards adds and adjustments, so carts fill up instead of most commands hitting an empty cart.
KINDS = ["add"] * 3 + ["adjust"] * 2 + ["adjust to a limit"] * 2 + ["remove", "checkout", "read"]

# Strategies are built once and reused: building them anew for every drawn command dominated the run time.
kinds = st.sampled_from(KINDS)
product_ids = st.sampled_from(PRODUCTS)
FRESH_CART_IDS = 1 << 64  # fresh cart ids are UUID(int=FRESH_CART_IDS + step number), unlike any product


@cache
def items(max_add: int) -> st.SearchStrategy[Item]:
    """Items from the product pool with quantities 1..max_add, the boundary values drawn often."""
    boundaries = [q for q in (1, 2, MAX_QUANTITY - 1, MAX_QUANTITY, MAX_QUANTITY + 1) if q <= max_add]
    return st.builds(
        Item,
        product_id=product_ids,
        vendor_id=st.sampled_from(VENDORS),
        name=st.text(max_size=20),
        price=prices,
        quantity=st.one_of(st.integers(1, max_add), st.sampled_from(boundaries)),
    )


@cache
def integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


def pick(draw: st.DrawFn, options: list[T]) -> T:
    """One of `options` (not empty), drawn with a cached strategy."""
    return options[draw(integers(0, len(options) - 1))]


def limit_deltas(quantity: int, max_delta: int) -> list[int]:
    """Deltas within -max_delta..max_delta taking `quantity` just below, to, or just past 1 or MAX_QUANTITY.

    Uniform deltas almost never hit these exact values, and they are where off-by-one mistakes hide.
    """
    targets = (0, 1, 2, MAX_QUANTITY, MAX_QUANTITY + 1)
    return [target - quantity for target in targets if abs(target - quantity) <= max_delta]


def draw_command(draw: st.DrawFn, model: Model, max_add: int, max_delta: int) -> Command:
    product_id = draw(product_ids)
    match draw(kinds):
        case "add":
            return AddItem(draw(items(max_add)))
        case "adjust to a limit" if model:
            item = pick(draw, list(model.values()))
            return AdjustQuantity(item.product_id, pick(draw, limit_deltas(item.quantity, max_delta) or [0]))
        case "adjust" | "adjust to a limit":
            return AdjustQuantity(product_id, draw(integers(-max_delta, max_delta)))
        case "remove":
            return RemoveItem(product_id)
        case "checkout":
            return Checkout()
        case _:
            return GetCart()


@st.composite
def sequences(draw: st.DrawFn, max_add: int, max_delta: int) -> Steps:
    """Up to 40 commands, each with its own clock reading (a minute apart) and its own fresh cart id.

    The test's own model of the cart (`model_step`) is tracked while drawing only so that some adjustments
    can aim at the exact limits of items actually in the cart; the sequence is still random. Clock and ids
    are derived from the step number rather than drawn, which keeps failing examples quick to shrink.
    """
    start = draw(clocks)
    model: Model = {}
    steps: Steps = []
    for number in range(draw(integers(0, 40))):
        command = draw_command(draw, model, max_add, max_delta)
        steps.append((command, start + timedelta(minutes=number), UUID(int=FRESH_CART_IDS + number)))
        model = model_step(model, command)[1]
    return steps


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


# A sequence's run time grows with its length and with the machine's load, so a per-example deadline would
# only make these tests flaky without catching anything.
sequence_settings = settings(deadline=None)

# Adds of 1..50 and adjustments by -60..60.
everyday = sequences(max_add=50, max_delta=60)

# Quantities around MAX_QUANTITY, so that the limit is reached and crossed.
near_the_limit = sequences(max_add=MAX_QUANTITY + 5, max_delta=MAX_QUANTITY + 5)


def assert_within_limits(cart: Cart) -> None:
    assert all(1 <= item.quantity <= MAX_QUANTITY for item in cart.items), cart
    assert len(cart.items) <= MAX_ITEMS
    assert len({item.product_id for item in cart.items}) == len(cart.items)


@sequence_settings
@given(st.one_of(everyday, near_the_limit))
def test_no_sequence_of_commands_leaves_an_item_with_a_quantity_outside_the_limits(steps: Steps) -> None:
    for step in run(steps):
        assert_within_limits(step.after)


@sequence_settings
@given(st.one_of(everyday, near_the_limit))
def test_every_command_is_accepted_or_rejected_exactly_as_the_rules_say(steps: Steps) -> None:
    model: Model = {}
    for step in run(steps):
        expected_rejection, model = model_step(model, step.command)
        assert (None if step.accepted else type(step.result)) == expected_rejection, step
        assert step.after.items == tuple(model.values())


@sequence_settings
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


@sequence_settings
@given(everyday)
def test_events_carry_the_carts_id_or_the_fresh_one_when_the_cart_has_none(steps: Steps) -> None:
    for step in run(steps):
        expected = step.before.cart_id if step.before.cart_id is not None else step.new_cart_id
        assert all(event.cart_id == expected for event in step.events)
        if any(isinstance(event, ItemAdded) for event in step.events):
            assert step.after.cart_id == expected


@sequence_settings
@given(st.one_of(everyday, near_the_limit))
def test_reading_the_cart_records_nothing_and_every_rejection_explains_itself(steps: Steps) -> None:
    for step in run(steps):
        if isinstance(step.command, GetCart):
            assert step.result == ()
        if not isinstance(step.result, tuple):
            assert step.result.reason
            assert "\n" not in step.result.reason
            assert str(getattr(step.result, "product_id", "")) in step.result.reason


@sequence_settings
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


@sequence_settings
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
