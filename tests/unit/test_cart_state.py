"""The command side's per-member state (`MemberCart`) and `decide_command`. No I/O."""

from __future__ import annotations

import copy
import gc
import json
import pickle
from collections.abc import Callable, Iterator
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from app.cart.codec import member_cart_from_dict, member_cart_to_dict
from app.cart.member_cart import (
    RECENT_COMMANDS,
    Accepted,
    AlreadyHandled,
    CommandDecision,
    MemberCart,
    Outcome,
    Rejected,
    Unchanged,
    decide_command,
)
from app.cart.rules import (
    EMPTY_CART,
    AddItem,
    AdjustQuantity,
    Cart,
    Checkout,
    Command,
    Event,
    GetCart,
    Item,
    ItemAdded,
    ItemPurchased,
    ItemQuantityDecreased,
    ItemQuantityIncreased,
    RemoveItem,
    replay,
)
from app.cart.stored_event import StoredEvent

MEMBER_ID = UUID("5e1a0c3b-7d2f-4b8e-9a61-0c2d4e6f8a10")
CART_ID = UUID("6f1c1f1e-8a0c-4c53-9a55-3f4f1b0b2c01")
NEW_CART_ID = UUID("11111111-2222-4333-8444-555555555555")
VENDOR_ID = UUID("9a3d5c7e-2b4f-4e6a-8c1d-7f9e0a2b4c22")
PRODUCT_A = UUID("0b7e2a4e-1d9b-4f7a-8a8e-5c2d7f0e9a11")
PRODUCT_B = UUID("0b7e2a4e-1d9b-4f7a-8a8e-5c2d7f0e9a12")
PRODUCT_C = UUID("0b7e2a4e-1d9b-4f7a-8a8e-5c2d7f0e9a13")
NOW = datetime(2024, 5, 17, 12, 30, 15, 123000, tzinfo=UTC)


def an_item(product_id: UUID = PRODUCT_A, price: str = "19.99", quantity: int = 2) -> Item:
    return Item(product_id, VENDOR_ID, f"Product {str(product_id)[-2:]}", Decimal(price), quantity)


def stored(seq_nr: int, command_id: str, event: Event | None = None) -> StoredEvent:
    """A journal event at `seq_nr`; by default it adds a product unique to that position."""
    if event is None:
        event = ItemAdded(CART_ID, an_item(UUID(int=seq_nr)))
    return StoredEvent(
        event_id=UUID(int=1_000_000 + seq_nr),
        member_id=MEMBER_ID,
        cart_id=CART_ID,
        seq_nr=seq_nr,
        command_id=command_id,
        occurred_at=NOW,
        event=event,
    )


def event_ids() -> Callable[[], UUID]:
    """A deterministic `new_event_id`: 1, 2, 3, ... as UUIDs."""
    counter: Iterator[int] = iter(range(1, 1_000))
    return lambda: UUID(int=next(counter))


def decide(state: MemberCart, command_id: str, command: Command, now: datetime = NOW) -> CommandDecision:
    return decide_command(state, command_id, command, now=now, new_cart_id=NEW_CART_ID, new_event_id=event_ids())


def accepted(state: MemberCart, command_id: str, command: Command, now: datetime = NOW) -> tuple[MemberCart, Accepted]:
    """Handle a command that must be accepted and absorb its events, as the agent does after the append."""
    decision = decide(state, command_id, command, now)
    assert isinstance(decision, Accepted), decision
    return state.with_events(decision.events), decision


def cart_with_a_and_b() -> MemberCart:
    state = MemberCart(MEMBER_ID)
    state, _ = accepted(state, "add-a", AddItem(an_item(PRODUCT_A)))
    state, _ = accepted(state, "add-b", AddItem(an_item(PRODUCT_B, price="5.50", quantity=1)))
    return state


def through_json(value: dict[str, Any]) -> Any:
    """Serialise and parse, as the table, the snapshot and the topic do."""
    return json.loads(json.dumps(value))


# --- absorb -------------------------------------------------------------------------------------------------


def test_absorbing_events_moves_the_version_to_the_last_seq_nr_and_replays_them_into_the_cart() -> None:
    events = [stored(1, "c1"), stored(2, "c1"), stored(3, "c2")]

    state = MemberCart(MEMBER_ID).with_events(events)

    assert state.version == 3
    assert state.cart == replay(e.event for e in events)
    assert state.member_id == MEMBER_ID


def test_absorbing_in_several_steps_equals_absorbing_everything_at_once() -> None:
    events = [stored(n, f"c{(n + 1) // 2}") for n in range(1, 8)]

    stepwise = (
        MemberCart(MEMBER_ID).with_events(events[:1]).with_events(events[1:4]).with_events([]).with_events(events[4:])
    )

    assert stepwise == MemberCart(MEMBER_ID).with_events(events)


def test_absorbing_nothing_leaves_the_state_as_it_was() -> None:
    state = MemberCart(MEMBER_ID).with_events([stored(1, "c1")])

    assert state.with_events([]) == state


@pytest.mark.parametrize(
    ("version", "seq_nrs"),
    [
        (0, [2]),  # a fresh cart must start at 1
        (1, [3]),  # a gap after the version
        (1, [1]),  # the event the state already has
        (0, [1, 3]),  # a gap inside the events
        (0, [2, 1]),  # out of order
    ],
)
def test_absorbing_refuses_events_that_do_not_follow_the_version(version: int, seq_nrs: list[int]) -> None:
    state = MemberCart(MEMBER_ID).with_events([stored(n, "c") for n in range(1, version + 1)])

    with pytest.raises(ValueError, match="does not follow version"):
        state.with_events([stored(n, "x") for n in seq_nrs])

    assert state.version == version


# --- recent outcomes ----------------------------------------------------------------------------------------


def test_the_events_of_one_command_are_remembered_as_one_outcome_from_first_to_last_seq_nr() -> None:
    events = [stored(1, "c1"), stored(2, "c2"), stored(3, "c2"), stored(4, "c2"), stored(5, "c3")]

    state = MemberCart(MEMBER_ID).with_events(events)

    assert state.recent == (Outcome("c1", 1, 1), Outcome("c2", 2, 4), Outcome("c3", 5, 5))
    assert state.outcome_of("c2") == Outcome("c2", 2, 4)
    assert state.outcome_of("never-seen") is None


def test_a_command_whose_events_arrive_in_two_absorbs_is_still_one_outcome() -> None:
    state = MemberCart(MEMBER_ID).with_events([stored(1, "c1"), stored(2, "c1")]).with_events([stored(3, "c1")])

    assert state.recent == (Outcome("c1", 1, 3),)


def test_the_same_command_id_after_another_command_starts_a_new_outcome_and_the_newest_is_found() -> None:
    state = MemberCart(MEMBER_ID).with_events([stored(1, "c1"), stored(2, "c2"), stored(3, "c1")])

    assert state.recent == (Outcome("c1", 1, 1), Outcome("c2", 2, 2), Outcome("c1", 3, 3))
    assert state.outcome_of("c1") == Outcome("c1", 3, 3)


def test_only_the_most_recent_commands_are_remembered() -> None:
    commands = RECENT_COMMANDS + 5
    state = MemberCart(MEMBER_ID).with_events([stored(n, f"c{n}") for n in range(1, commands + 1)])

    assert len(state.recent) == RECENT_COMMANDS
    assert [o.command_id for o in state.recent] == [f"c{n}" for n in range(6, commands + 1)]
    assert state.outcome_of("c5") is None
    assert state.outcome_of("c6") == Outcome("c6", 6, 6)
    assert state.version == commands


def test_the_outcomes_a_cart_remembers_are_nothing_the_garbage_collector_walks() -> None:
    """An owner keeps tens of thousands of carts in memory, and a full collection walks every object the collector
    tracks: as objects, their outcomes stalled the command worker for 100-450 ms every few seconds
    (docs/benchmarks.md, 2026-12-06, evening). Plain tuples of plain values are dropped from its lists."""
    state = MemberCart(MEMBER_ID).with_events([stored(n, f"c{n}") for n in range(1, RECENT_COMMANDS)])
    for n in range(1, RECENT_COMMANDS):
        state = state.remember_emitted(f"c{n}", [(3, 1_000 + n)], fingerprint=f"fp{n}")
    rejection = {"error": "ItemNotInCart", "reason": "it is not in the cart", "product_id": str(PRODUCT_A)}
    state = state.remember_rejection("bad", rejection, "fp")
    for _ in range(4):
        gc.collect()  # a tuple is dropped once what it holds is, which may take a pass per level of nesting

    assert len(state.rows) == RECENT_COMMANDS
    assert state.outcome_of("c1") == Outcome("c1", 1, 1, None, ((3, 1_001),), "fp1")
    assert state.outcome_of("bad") == Outcome("bad", RECENT_COMMANDS, RECENT_COMMANDS - 1, rejection, (), "fp")
    held = [state.rows, *state.rows, *(x for r in state.rows for x in (r[3], r[4], *r[4]) if x is not None)]
    assert [o for o in held if gc.is_tracked(o)] == []


def test_a_cart_is_an_immutable_value_that_pickles_and_copies() -> None:
    state = MemberCart(MEMBER_ID).with_events([stored(1, "c1")]).remember_rejection("bad", {"error": "X"}, "fp")

    assert pickle.loads(pickle.dumps(state)) == state
    assert copy.deepcopy(state) == copy.copy(state) == state
    assert hash(copy.deepcopy(state)) == hash(state)
    with pytest.raises(FrozenInstanceError):
        state.version = 7  # type: ignore[misc]


def test_a_command_with_many_events_takes_one_place_among_the_recent_commands() -> None:
    many = RECENT_COMMANDS * 2
    state = MemberCart(MEMBER_ID).with_events([stored(n, "big") for n in range(1, many + 1)])

    assert state.recent == (Outcome("big", 1, many),)


def test_a_rejection_is_remembered_as_an_empty_range_after_the_version_and_changes_nothing_else() -> None:
    state = MemberCart(MEMBER_ID).with_events([stored(1, "c1"), stored(2, "c1")])
    rejection = {"error": "ItemNotInCart", "reason": "item x is not in the cart", "product_id": "x"}

    after = state.remember_rejection("bad", rejection)

    assert after.outcome_of("bad") == Outcome("bad", 3, 2, rejection)
    assert after.recent == (Outcome("c1", 1, 2), Outcome("bad", 3, 2, rejection))
    assert (after.version, after.cart, after.member_id) == (state.version, state.cart, state.member_id)


def test_remembered_rejections_are_bounded_like_the_other_outcomes() -> None:
    state = MemberCart(MEMBER_ID).with_events([stored(1, "c1")])
    for n in range(RECENT_COMMANDS):
        state = state.remember_rejection(f"bad-{n}", {"error": "EmptyCartCheckout"})

    assert len(state.recent) == RECENT_COMMANDS
    assert state.outcome_of("c1") is None
    assert state.outcome_of("bad-0") is not None


def test_events_after_a_rejection_start_a_new_outcome() -> None:
    state = MemberCart(MEMBER_ID).with_events([stored(1, "c1")]).remember_rejection("bad", {"error": "X"})

    state = state.with_events([stored(2, "c2")])

    assert state.recent == (Outcome("c1", 1, 1), Outcome("bad", 2, 1, {"error": "X"}), Outcome("c2", 2, 2))


def test_a_cart_reloaded_from_the_journal_keeps_the_rejections_a_cached_cart_remembered() -> None:
    """The journal has no trace of a rejected command; its retry must get the same answer after a reload."""
    cached = MemberCart(MEMBER_ID).with_events([stored(1, "c1")]).remember_rejection("bad", {"error": "X"}, "fp")
    reloaded = MemberCart(MEMBER_ID).with_events([stored(1, "c1"), stored(2, "c2")])  # c2: another owner's write

    kept = reloaded.keep_rejections_of(cached)

    assert kept.outcome_of("bad") == Outcome("bad", 2, 1, {"error": "X"}, fingerprint="fp")
    assert kept.outcome_of("c2") == Outcome("c2", 2, 2)
    assert kept.version == 2 and kept.cart == reloaded.cart
    assert reloaded.keep_rejections_of(reloaded) is reloaded  # nothing to keep: the same state


def test_rejections_remembered_elsewhere_join_the_state_in_their_place_and_the_newest_stay() -> None:
    """A snapshot row's rejections (which an older state written later cannot erase) merged into the state loaded."""
    state = MemberCart(MEMBER_ID).with_events([stored(1, "c1"), stored(2, "c2"), stored(3, "c3")])
    lost = Outcome("lost", 3, 2, {"error": "X"}, fingerprint="fp")  # decided at version 2, by an owner since gone

    merged = state.with_rejections([lost, Outcome("c1", 1, 1)])  # accepted outcomes are the journal's: ignored

    assert merged.recent == (Outcome("c1", 1, 1), Outcome("c2", 2, 2), lost, Outcome("c3", 3, 3))
    assert merged.with_rejections([lost]) is merged  # known already: the same state
    assert (merged.version, merged.cart) == (state.version, state.cart)
    full = MemberCart(MEMBER_ID).with_events([stored(n, f"c{n}") for n in range(1, RECENT_COMMANDS + 1)])
    ancient = Outcome("ancient", 1, 0, {"error": "X"})  # decided before c1: older than every outcome kept
    assert full.with_rejections([ancient]).recent == full.recent
    late = Outcome("late", RECENT_COMMANDS + 1, RECENT_COMMANDS, {"error": "X"})
    assert full.with_rejections([late]).recent[-1] == late


# --- handle: accepted ---------------------------------------------------------------------------------------


def test_an_accepted_command_on_a_fresh_cart_gives_events_from_seq_nr_1_in_a_new_cart() -> None:
    decision = decide(MemberCart(MEMBER_ID), "cmd-1", AddItem(an_item()))

    assert decision == Accepted(
        events=(
            StoredEvent(
                event_id=UUID(int=1),
                member_id=MEMBER_ID,
                cart_id=NEW_CART_ID,
                seq_nr=1,
                command_id="cmd-1",
                occurred_at=NOW,
                event=ItemAdded(NEW_CART_ID, an_item()),
            ),
        ),
        expected_version=0,
    )


def test_accepted_events_continue_right_after_the_version_and_share_command_id_time_and_cart() -> None:
    state = cart_with_a_and_b()
    state, _ = accepted(state, "add-c", AddItem(an_item(PRODUCT_C, quantity=3)))
    cart_id = state.cart.cart_id
    assert cart_id is not None and cart_id == NEW_CART_ID

    later = NOW + timedelta(minutes=5)
    decision = decide(state, "checkout-1", Checkout(), now=later)

    assert isinstance(decision, Accepted)
    assert decision.expected_version == state.version == 3
    assert [e.seq_nr for e in decision.events] == [4, 5, 6]
    assert {e.command_id for e in decision.events} == {"checkout-1"}
    assert {e.occurred_at for e in decision.events} == {later}
    assert {e.cart_id for e in decision.events} == {cart_id}
    assert {e.member_id for e in decision.events} == {MEMBER_ID}
    assert [e.event_id for e in decision.events] == [UUID(int=1), UUID(int=2), UUID(int=3)]
    assert [e.event for e in decision.events] == [ItemPurchased(cart_id, item, later) for item in state.cart.items]


def test_accepted_events_absorbed_give_the_cart_the_command_asked_for() -> None:
    state = cart_with_a_and_b()

    state, _ = accepted(state, "more-a", AdjustQuantity(PRODUCT_A, 3))
    state, _ = accepted(state, "less-a", AdjustQuantity(PRODUCT_A, -1))
    state, _ = accepted(state, "drop-b", RemoveItem(PRODUCT_B))

    assert state.version == 5
    assert state.cart == Cart(NEW_CART_ID, (an_item(PRODUCT_A, quantity=4),))
    assert [type(o) for o in state.recent] == [Outcome] * 5


def test_the_events_of_an_adjustment_say_by_how_much() -> None:
    state = cart_with_a_and_b()

    up = decide(state, "up", AdjustQuantity(PRODUCT_A, 3))
    down = decide(state, "down", AdjustQuantity(PRODUCT_A, -1))

    assert isinstance(up, Accepted) and isinstance(down, Accepted)
    assert [e.event for e in up.events] == [ItemQuantityIncreased(NEW_CART_ID, PRODUCT_A, 3)]
    assert [e.event for e in down.events] == [ItemQuantityDecreased(NEW_CART_ID, PRODUCT_A, 1)]


def test_after_a_checkout_the_next_item_starts_a_new_cart() -> None:
    state, _ = accepted(cart_with_a_and_b(), "checkout", Checkout())
    assert state.cart == EMPTY_CART

    other_cart = UUID("22222222-3333-4444-8555-666666666666")
    decision = decide_command(
        state, "again", AddItem(an_item()), now=NOW, new_cart_id=other_cart, new_event_id=event_ids()
    )

    assert isinstance(decision, Accepted)
    assert [(e.seq_nr, e.cart_id) for e in decision.events] == [(5, other_cart)]


# --- handle: unchanged, rejected, already handled -----------------------------------------------------------


@pytest.mark.parametrize("command", [GetCart(), AdjustQuantity(PRODUCT_A, 0)])
def test_a_query_or_an_adjustment_by_zero_changes_nothing(command: Command) -> None:
    assert decide(cart_with_a_and_b(), "new-id", command) == Unchanged()


def test_a_get_cart_on_a_fresh_cart_changes_nothing() -> None:
    assert decide(MemberCart(MEMBER_ID), "q", GetCart()) == Unchanged()


def test_a_command_that_breaks_a_rule_is_rejected_with_a_plain_dict() -> None:
    decision = decide(cart_with_a_and_b(), "rm-c", RemoveItem(PRODUCT_C))

    assert decision == Rejected(
        {"error": "ItemNotInCart", "reason": f"item {PRODUCT_C} is not in the cart", "product_id": str(PRODUCT_C)}
    )
    assert through_json(decision.rejection) == decision.rejection


def test_a_rejected_checkout_of_an_empty_cart_has_only_error_and_reason() -> None:
    assert decide(MemberCart(MEMBER_ID), "co", Checkout()) == Rejected(
        {"error": "EmptyCartCheckout", "reason": "cannot check out an empty cart"}
    )


def test_a_command_id_seen_before_that_was_accepted_is_already_handled_with_its_journal_range() -> None:
    state, first = accepted(cart_with_a_and_b(), "checkout-1", Checkout())

    again = decide(state, "checkout-1", Checkout())

    assert again == AlreadyHandled(Outcome("checkout-1", 3, 4))
    assert [e.seq_nr for e in first.events] == [3, 4]


def test_a_command_id_seen_before_is_already_handled_even_when_the_command_would_now_do_something_else() -> None:
    state = cart_with_a_and_b()

    # "add-a" was accepted; replaying it must not be decided again (it would now be ItemAlreadyInCart).
    assert decide(state, "add-a", AddItem(an_item(PRODUCT_A))) == AlreadyHandled(Outcome("add-a", 1, 1))
    # Even a different command under the same id gets the first answer: the id is what identifies the request.
    assert decide(state, "add-a", RemoveItem(PRODUCT_A)) == AlreadyHandled(Outcome("add-a", 1, 1))


def test_a_command_id_seen_before_that_was_rejected_is_already_handled_with_its_rejection() -> None:
    state = cart_with_a_and_b()
    first = decide(state, "rm-c", RemoveItem(PRODUCT_C))
    assert isinstance(first, Rejected)
    state = state.remember_rejection("rm-c", first.rejection)
    # Now the same command would be accepted, but a retry must get the first answer.
    state, _ = accepted(state, "add-c", AddItem(an_item(PRODUCT_C)))

    again = decide(state, "rm-c", RemoveItem(PRODUCT_C))

    assert again == AlreadyHandled(Outcome("rm-c", 3, 2, first.rejection))


def test_get_cart_is_never_already_handled_even_under_a_command_id_seen_before() -> None:
    state = cart_with_a_and_b()
    state = state.remember_rejection("rejected-id", {"error": "X"})

    assert decide(state, "add-a", GetCart()) == Unchanged()
    assert decide(state, "rejected-id", GetCart()) == Unchanged()


def test_a_command_id_older_than_the_recent_commands_is_decided_again() -> None:
    state, _ = accepted(MemberCart(MEMBER_ID), "oldest", AddItem(an_item(PRODUCT_A)))
    for n in range(RECENT_COMMANDS):
        state, _ = accepted(state, f"adjust-{n}", AdjustQuantity(PRODUCT_A, 1))
    assert state.outcome_of("oldest") is None

    decision = decide(state, "oldest", RemoveItem(PRODUCT_A))

    assert isinstance(decision, Accepted)


def test_handle_refuses_a_naive_time_as_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(MemberCart(MEMBER_ID), "c", AddItem(an_item()), now=datetime(2024, 5, 17, 12, 0))


# --- serialisation ------------------------------------------------------------------------------------------


def test_a_fresh_member_cart_survives_to_dict_and_from_dict() -> None:
    state = MemberCart(MEMBER_ID)

    assert member_cart_from_dict(through_json(member_cart_to_dict(state))) == state


def test_a_member_cart_with_items_and_outcomes_survives_to_dict_and_from_dict_exactly() -> None:
    state = cart_with_a_and_b()
    state, _ = accepted(state, "more-b", AdjustQuantity(PRODUCT_B, 4))
    state = state.remember_rejection("rm-c", {"error": "ItemNotInCart", "reason": "r", "product_id": str(PRODUCT_C)})
    state, _ = accepted(state, "add-c", AddItem(an_item(PRODUCT_C, price="0.10", quantity=10_000)))

    back = member_cart_from_dict(through_json(member_cart_to_dict(state)))

    assert back == state
    assert [item.price for item in back.cart.items] == [Decimal("19.99"), Decimal("5.50"), Decimal("0.10")]
    assert str(back.cart.items[1].price) == "5.50"


def test_a_member_cart_from_dict_without_recent_outcomes_remembers_none() -> None:
    d = member_cart_to_dict(cart_with_a_and_b())
    del d["recent"]

    assert member_cart_from_dict(d).recent == ()


def test_remembering_where_a_command_went_changes_that_outcome_alone() -> None:
    state = MemberCart(MEMBER_ID).with_events([stored(n, f"c{n}") for n in range(1, 4)])

    remembered = state.remember_emitted("c2", [(3, 7)], fingerprint="fp2")

    assert remembered.recent == (Outcome("c1", 1, 1), Outcome("c2", 2, 2, None, ((3, 7),), "fp2"), Outcome("c3", 3, 3))
    assert remembered.remember_emitted("c2", [(3, 8)]).outcome_of("c2") == Outcome("c2", 2, 2, None, ((3, 8),), "fp2")
    assert state.remember_emitted("never", [(3, 9)]) == state
