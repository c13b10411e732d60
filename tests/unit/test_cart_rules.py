"""Given-events / when-command / then-events examples for every rule of the cart core."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

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
    ItemQuantityDecreased,
    ItemQuantityIncreased,
    ItemRemoved,
    NegativeQuantity,
    QuantityLimitExceeded,
    Rejection,
    RemoveItem,
    decide,
    evolve,
    replay,
)

CART_ID = UUID("00000000-0000-0000-0000-0000000000c1")
NEW_CART_ID = UUID("00000000-0000-0000-0000-0000000000c2")
VENDOR_ID = UUID("00000000-0000-0000-0000-0000000000f1")
NOW = datetime(2024, 5, 17, 12, 30, tzinfo=UTC)


def an_item(quantity: int = 1, price: str = "9.99", product_id: UUID | None = None) -> Item:
    """A fresh product line; each call names a different product unless `product_id` is given."""
    return Item(product_id or uuid4(), VENDOR_ID, "Teapot", Decimal(price), quantity)


def given(*events: Event) -> Cart:
    """The cart that results from a history of events."""
    return replay(events)


def when(cart: Cart, command: Command, now: datetime = NOW) -> Decision:
    """Decide `command` against `cart` with the fixed clock and the fixed next cart id."""
    return decide(cart, command, now=now, new_cart_id=NEW_CART_ID)


def full_cart() -> Cart:
    return given(*(ItemAdded(CART_ID, an_item()) for _ in range(MAX_ITEMS)))


# --- Adding ----------------------------------------------------------------------------------------------


def test_adding_an_item_to_a_new_cart_records_it_under_the_new_cart_id() -> None:
    item = an_item()
    assert when(given(), AddItem(item)) == (ItemAdded(NEW_CART_ID, item),)


def test_adding_an_item_to_an_existing_cart_keeps_the_cart_id() -> None:
    item = an_item()
    assert when(given(ItemAdded(CART_ID, an_item())), AddItem(item)) == (ItemAdded(CART_ID, item),)


def test_an_added_item_appears_in_the_cart_after_those_already_there() -> None:
    first, second = an_item(), an_item()
    cart = given(ItemAdded(CART_ID, first), ItemAdded(CART_ID, second))
    assert cart == Cart(CART_ID, (first, second))


def test_adding_an_item_already_in_the_cart_is_rejected() -> None:
    item = an_item(quantity=2)
    cart = given(ItemAdded(CART_ID, item))
    same_product = an_item(quantity=5, product_id=item.product_id)
    assert when(cart, AddItem(same_product)) == ItemAlreadyInCart(item.product_id)


def test_adding_an_item_with_more_than_the_maximum_quantity_is_rejected() -> None:
    item = an_item(quantity=MAX_QUANTITY + 1)
    rejection = QuantityLimitExceeded(item.product_id, MAX_QUANTITY + 1, MAX_QUANTITY)
    assert when(given(), AddItem(item)) == rejection


def test_adding_an_item_with_exactly_the_maximum_quantity_is_accepted() -> None:
    item = an_item(quantity=MAX_QUANTITY)
    assert when(given(), AddItem(item)) == (ItemAdded(NEW_CART_ID, item),)


@pytest.mark.parametrize("quantity", [0, -1])
def test_adding_an_item_with_a_quantity_below_one_is_rejected(quantity: int) -> None:
    item = an_item(quantity=quantity)
    assert when(given(), AddItem(item)) == NegativeQuantity(item.product_id, 0, quantity)


def test_adding_a_new_product_to_a_full_cart_is_rejected() -> None:
    assert when(full_cart(), AddItem(an_item())) == CartFull(MAX_ITEMS)


def test_adding_the_last_product_that_fits_in_the_cart_is_accepted() -> None:
    cart = given(*(ItemAdded(CART_ID, an_item()) for _ in range(MAX_ITEMS - 1)))
    item = an_item()
    assert when(cart, AddItem(item)) == (ItemAdded(CART_ID, item),)


def test_adding_a_product_already_in_a_full_cart_is_rejected_as_already_in_the_cart() -> None:
    cart = full_cart()
    existing = cart.items[0]
    assert when(cart, AddItem(existing)) == ItemAlreadyInCart(existing.product_id)


# --- Removing --------------------------------------------------------------------------------------------


def test_removing_an_item_in_the_cart_records_its_removal() -> None:
    item = an_item()
    cart = given(ItemAdded(CART_ID, item))
    assert when(cart, RemoveItem(item.product_id)) == (ItemRemoved(CART_ID, item.product_id),)


def test_a_removed_item_leaves_the_other_items_in_order() -> None:
    first, second, third = an_item(), an_item(), an_item()
    cart = given(*(ItemAdded(CART_ID, item) for item in (first, second, third)))
    assert evolve(cart, ItemRemoved(CART_ID, second.product_id)) == Cart(CART_ID, (first, third))


def test_removing_the_last_item_keeps_the_cart_id() -> None:
    item = an_item()
    cart = given(ItemAdded(CART_ID, item), ItemRemoved(CART_ID, item.product_id))
    assert cart == Cart(CART_ID, ())


def test_removing_an_item_not_in_the_cart_is_rejected() -> None:
    missing = uuid4()
    assert when(given(ItemAdded(CART_ID, an_item())), RemoveItem(missing)) == ItemNotInCart(missing)


def test_removing_from_an_empty_cart_is_rejected() -> None:
    missing = uuid4()
    assert when(given(), RemoveItem(missing)) == ItemNotInCart(missing)


# --- Adjusting quantities --------------------------------------------------------------------------------


def test_increasing_the_quantity_records_the_increase_as_a_positive_amount() -> None:
    item = an_item(quantity=2)
    cart = given(ItemAdded(CART_ID, item))
    events = when(cart, AdjustQuantity(item.product_id, 3))
    assert events == (ItemQuantityIncreased(CART_ID, item.product_id, 3),)


def test_an_increase_raises_the_items_quantity() -> None:
    item = an_item(quantity=2)
    cart = given(ItemAdded(CART_ID, item), ItemQuantityIncreased(CART_ID, item.product_id, 3))
    assert cart.item(item.product_id) == an_item(quantity=5, product_id=item.product_id)


def test_increasing_the_quantity_to_exactly_the_maximum_is_accepted() -> None:
    item = an_item(quantity=10)
    cart = given(ItemAdded(CART_ID, item))
    assert when(cart, AdjustQuantity(item.product_id, MAX_QUANTITY - 10)) == (
        ItemQuantityIncreased(CART_ID, item.product_id, MAX_QUANTITY - 10),
    )


def test_increasing_the_quantity_beyond_the_maximum_is_rejected() -> None:
    item = an_item(quantity=10)
    cart = given(ItemAdded(CART_ID, item))
    assert when(cart, AdjustQuantity(item.product_id, MAX_QUANTITY - 9)) == QuantityLimitExceeded(
        item.product_id, MAX_QUANTITY + 1, MAX_QUANTITY
    )


def test_decreasing_the_quantity_records_the_decrease_as_a_positive_amount() -> None:
    item = an_item(quantity=5)
    cart = given(ItemAdded(CART_ID, item))
    events = when(cart, AdjustQuantity(item.product_id, -2))
    assert events == (ItemQuantityDecreased(CART_ID, item.product_id, 2),)


def test_a_decrease_lowers_the_items_quantity() -> None:
    item = an_item(quantity=5)
    cart = given(ItemAdded(CART_ID, item), ItemQuantityDecreased(CART_ID, item.product_id, 2))
    assert cart.item(item.product_id) == an_item(quantity=3, product_id=item.product_id)


def test_decreasing_the_quantity_to_one_is_accepted() -> None:
    item = an_item(quantity=3)
    cart = given(ItemAdded(CART_ID, item))
    events = when(cart, AdjustQuantity(item.product_id, -2))
    assert events == (ItemQuantityDecreased(CART_ID, item.product_id, 2),)


def test_decreasing_the_quantity_to_exactly_zero_is_rejected() -> None:
    item = an_item(quantity=3)
    cart = given(ItemAdded(CART_ID, item))
    assert when(cart, AdjustQuantity(item.product_id, -3)) == NegativeQuantity(item.product_id, 3, -3)


def test_decreasing_the_quantity_below_zero_is_rejected() -> None:
    item = an_item(quantity=3)
    cart = given(ItemAdded(CART_ID, item))
    assert when(cart, AdjustQuantity(item.product_id, -4)) == NegativeQuantity(item.product_id, 3, -4)


def test_adjusting_by_zero_records_nothing() -> None:
    item = an_item(quantity=3)
    assert when(given(ItemAdded(CART_ID, item)), AdjustQuantity(item.product_id, 0)) == ()


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_adjusting_an_item_not_in_the_cart_is_rejected(delta: int) -> None:
    missing = uuid4()
    cart = given(ItemAdded(CART_ID, an_item()))
    assert when(cart, AdjustQuantity(missing, delta)) == ItemNotInCart(missing)


def test_adjusting_one_item_leaves_the_others_alone() -> None:
    first, second = an_item(quantity=1), an_item(quantity=1)
    cart = given(
        ItemAdded(CART_ID, first),
        ItemAdded(CART_ID, second),
        ItemQuantityIncreased(CART_ID, second.product_id, 4),
    )
    assert cart.items == (first, an_item(quantity=5, product_id=second.product_id))


# --- Checking out ----------------------------------------------------------------------------------------


def test_checking_out_an_empty_cart_is_rejected() -> None:
    assert when(given(), Checkout()) == EmptyCartCheckout()


def test_checking_out_a_cart_whose_items_were_all_removed_is_rejected() -> None:
    item = an_item()
    cart = given(ItemAdded(CART_ID, item), ItemRemoved(CART_ID, item.product_id))
    assert when(cart, Checkout()) == EmptyCartCheckout()


def test_checking_out_purchases_every_item_in_cart_order() -> None:
    first, second, third = an_item(quantity=2), an_item(quantity=1), an_item(quantity=7)
    cart = given(*(ItemAdded(CART_ID, item) for item in (first, second, third)))
    assert when(cart, Checkout()) == (
        ItemPurchased(CART_ID, first, NOW),
        ItemPurchased(CART_ID, second, NOW),
        ItemPurchased(CART_ID, third, NOW),
    )


def test_purchases_of_one_checkout_share_the_cart_id_and_the_purchase_time() -> None:
    cart = given(*(ItemAdded(CART_ID, an_item()) for _ in range(3)))
    events = when(cart, Checkout())
    assert isinstance(events, tuple)
    assert {event.cart_id for event in events} == {CART_ID}
    assert {event.purchased_at for event in events if isinstance(event, ItemPurchased)} == {NOW}


def test_purchases_record_the_adjusted_quantities() -> None:
    item = an_item(quantity=2)
    cart = given(ItemAdded(CART_ID, item), ItemQuantityIncreased(CART_ID, item.product_id, 3))
    adjusted = an_item(quantity=5, product_id=item.product_id)
    assert when(cart, Checkout()) == (ItemPurchased(CART_ID, adjusted, NOW),)


def test_checking_out_empties_the_cart_and_forgets_its_cart_id() -> None:
    first, second = an_item(), an_item()
    cart = given(
        ItemAdded(CART_ID, first),
        ItemAdded(CART_ID, second),
        ItemPurchased(CART_ID, first, NOW),
        ItemPurchased(CART_ID, second, NOW),
    )
    assert cart == EMPTY_CART


def test_a_cart_partly_purchased_keeps_its_cart_id_and_remaining_items() -> None:
    first, second = an_item(), an_item()
    cart = given(ItemAdded(CART_ID, first), ItemAdded(CART_ID, second), ItemPurchased(CART_ID, first, NOW))
    assert cart == Cart(CART_ID, (second,))


def test_the_first_item_added_after_checkout_starts_a_new_cart_id() -> None:
    bought = an_item()
    cart = given(ItemAdded(CART_ID, bought), ItemPurchased(CART_ID, bought, NOW))
    item = an_item()
    events = when(cart, AddItem(item))
    assert events == (ItemAdded(NEW_CART_ID, item),)
    assert replay(events, cart) == Cart(NEW_CART_ID, (item,))


def test_a_product_bought_at_checkout_can_be_added_again_afterwards() -> None:
    bought = an_item()
    cart = given(ItemAdded(CART_ID, bought), ItemPurchased(CART_ID, bought, NOW))
    assert when(cart, AddItem(bought)) == (ItemAdded(NEW_CART_ID, bought),)


def test_checkout_records_the_purchase_time_in_utc() -> None:
    cart = given(ItemAdded(CART_ID, an_item()))
    local_noon = datetime(2024, 5, 17, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    events = when(cart, Checkout(), now=local_noon)
    assert isinstance(events, tuple)
    (purchase,) = events
    assert isinstance(purchase, ItemPurchased)
    assert purchase.purchased_at == NOW
    assert purchase.purchased_at.utcoffset() == timedelta(0)


def test_deciding_with_a_naive_clock_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        when(given(), GetCart(), now=NOW.replace(tzinfo=None))


# --- Reading ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("history", [(), (ItemAdded(CART_ID, an_item()),)], ids=["empty", "with an item"])
def test_reading_the_cart_records_nothing(history: tuple[Event, ...]) -> None:
    assert when(given(*history), GetCart()) == ()


# --- The cart value --------------------------------------------------------------------------------------


def test_an_items_subtotal_is_its_price_times_its_quantity() -> None:
    assert an_item(quantity=3, price="19.99").subtotal == Decimal("59.97")


def test_the_cart_total_is_the_sum_of_the_subtotals() -> None:
    cart = given(
        ItemAdded(CART_ID, an_item(quantity=3, price="0.10")),
        ItemAdded(CART_ID, an_item(quantity=1, price="3200")),
    )
    assert cart.total == Decimal("3200.30")


def test_an_empty_cart_is_empty_and_totals_zero() -> None:
    assert EMPTY_CART.is_empty
    assert EMPTY_CART.total == Decimal(0)
    assert EMPTY_CART.cart_id is None


def test_looking_up_an_item_finds_it_by_product_id_or_gives_none() -> None:
    item = an_item()
    cart = given(ItemAdded(CART_ID, item))
    assert cart.item(item.product_id) == item
    assert cart.item(uuid4()) is None
    assert not cart.is_empty


# --- Rejection reasons -----------------------------------------------------------------------------------

PRODUCT_ID = UUID("00000000-0000-0000-0000-0000000000a1")


@pytest.mark.parametrize(
    ("rejection", "reason"),
    [
        (ItemAlreadyInCart(PRODUCT_ID), f"item {PRODUCT_ID} is already in the cart"),
        (ItemNotInCart(PRODUCT_ID), f"item {PRODUCT_ID} is not in the cart"),
        (
            NegativeQuantity(PRODUCT_ID, 3, -4),
            f"item {PRODUCT_ID} has quantity 3; -4 would leave -1, below 1",
        ),
        (EmptyCartCheckout(), "cannot check out an empty cart"),
        (
            QuantityLimitExceeded(PRODUCT_ID, 10_001, 10_000),
            f"item {PRODUCT_ID} would have quantity 10001, above the limit of 10000",
        ),
        (CartFull(100), "the cart already holds the maximum of 100 distinct items"),
    ],
    ids=["already in cart", "not in cart", "negative", "empty checkout", "over the limit", "cart full"],
)
def test_every_rejection_explains_itself_in_one_line(rejection: Rejection, reason: str) -> None:
    assert rejection.reason == reason
    assert "\n" not in rejection.reason
