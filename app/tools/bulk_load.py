"""`cart load-journal`: write a large, valid journal straight into Cassandra, for measuring verify and rebuild.

Histories come from the pure core: every command is decided by `decide_command` (so by `decide`) against the
member's cart as `evolve` left it, so every member's seq_nrs run 1..n with no gap, each command's events share a
batch and its bucket, money is Decimal with 2 decimals and every time is UTC (whole seconds: the journal keeps
milliseconds). Carts are filled with 1-5 products of a catalogue (`--vendors`, `--products`), sometimes adjusted
or emptied of one item, and checked out, so there are ItemPurchased events for the read models; the purchases of
each member are spread over the last `--days` whole UTC days. The total is exactly `--events`, split evenly
over `--members`; a member whose share leaves one event after a checkout ends with one item in an open cart.

The rows written are the journal's own (`CassandraJournal.write_history`: the members index row, then the
journal rows in the buckets `append` would have used), without the conditional write: member ids are fresh
random UUIDs (uuid4, 122 random bits), so a loaded member cannot collide with an existing one. No snapshots are
written (they are only a shortcut; a load reads the whole history). Members are written `--concurrency` at a time.

Nothing goes through Kafka, so the read models do not have these purchases: `cart verify` reports them until
`cart rebuild MODEL` has rebuilt each model. That is why the loader refuses a keyspace that already has a
journal unless `--into-existing` is given: the loaded members cannot touch an existing member's history, but
they do make the live read models disagree with the journal.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from app.cart.member_cart import Accepted, MemberCart, decide_command
from app.cart.rules import MAX_ITEMS, AddItem, AdjustQuantity, Cart, Checkout, Command, Item, RemoveItem
from app.cart.stored_event import StoredEvent
from app.command_side.journal import CassandraJournal
from app.stores.cassandra import in_parallel

PRODUCT_NAMES = [
    "orange", "apple", "banana", "desktop-pc", "laptop", "keyboard", "mouse", "monitor", "chair", "desk",
    "lamp", "kettle", "teapot", "mug", "notebook", "pen", "backpack", "umbrella", "scarf", "boots",
]  # fmt: skip
LARGEST_CART = 5  # products per cart: 1..5
History = list[tuple[StoredEvent, ...]]  # one tuple per command: its events, as `append` gets them


class KeyspaceHasJournal(RuntimeError):
    """The keyspace already holds a journal and `into_existing` was not given."""


@dataclass(frozen=True)
class Catalogue:
    """What members can buy: items with quantity 1, each product with one vendor, name and price."""

    items: tuple[Item, ...]

    @classmethod
    def random(cls, vendors: int, products: int, rng: random.Random) -> Catalogue:
        vendor_ids = [uuid4() for _ in range(vendors)]
        return cls(
            tuple(
                Item(
                    uuid4(),
                    vendor_ids[n % vendors],
                    f"{PRODUCT_NAMES[n % len(PRODUCT_NAMES)]}-{n}",
                    Decimal(rng.randrange(50, 50_000)).scaleb(-2),  # 0.50 to 499.99, two decimals
                    1,
                )
                for n in range(products)
            )
        )


@dataclass(frozen=True)
class Loaded:
    events: int
    member_ids: tuple[UUID, ...]
    purchases: int
    seconds: float

    @property
    def members(self) -> int:
        return len(self.member_ids)


def split(events: int, members: int) -> list[int]:
    """`events` split over `members` as evenly as whole numbers allow."""
    share, extra = divmod(events, members)
    return [share + (1 if n < extra else 0) for n in range(members)]


def next_command(cart: Cart, remaining: int, wanted: int, catalogue: Catalogue, rng: random.Random) -> Command:
    """The member's next command, such that the history can still end with every item checked out when
    `remaining` events are left (a checkout costs one event per item; every other command costs one)."""
    held = len(cart.items)
    if held == 0 or (held < wanted and remaining >= held + 2):
        roll = rng.random()
        if held and roll < 0.10:
            return adjust(cart, rng)
        if held and roll < 0.15:
            return RemoveItem(rng.choice(cart.items).product_id)
        return AddItem(new_product(cart, catalogue, rng))
    if remaining == held + 1:
        return adjust(cart, rng)  # one event too many for a checkout now: spend it
    return Checkout()


def new_product(cart: Cart, catalogue: Catalogue, rng: random.Random) -> Item:
    while True:
        item = rng.choice(catalogue.items)
        if cart.item(item.product_id) is None:
            return Item(item.product_id, item.vendor_id, item.name, item.price, rng.randint(1, 3))


def adjust(cart: Cart, rng: random.Random) -> AdjustQuantity:
    item = rng.choice(cart.items)
    return AdjustQuantity(item.product_id, rng.choice([1, 2] if item.quantity == 1 else [-1, 1, 2]))


def member_history(
    member_id: UUID,
    events: int,
    catalogue: Catalogue,
    rng: random.Random,
    start: datetime,
    end: datetime,
    new_id: Callable[[], UUID] = uuid4,
) -> History:
    """A valid history of exactly `events` events, decided command by command by the pure core; carts begin at
    times spread evenly over [start, end) (by the share of the history used), a command 5-90 s after the last."""
    state = MemberCart(member_id)
    history: History = []
    span, last, wanted = (end - start).total_seconds(), start - timedelta(seconds=1), 0
    while state.version < events:
        remaining = events - state.version
        if state.cart.is_empty:  # a new cart: when it begins and how many products it will hold
            wanted = rng.randint(1, min(LARGEST_CART, MAX_ITEMS, len(catalogue.items)))
            begins = start + timedelta(seconds=int(span * (state.version + rng.random()) / events))
            last = max(begins, last + timedelta(seconds=1))
        else:
            last += timedelta(seconds=rng.randint(5, 90))
        command = next_command(state.cart, remaining, wanted, catalogue, rng)
        decision = decide_command(state, str(new_id()), command, now=last, new_cart_id=new_id(), new_event_id=new_id)
        if not isinstance(decision, Accepted) or len(decision.events) > remaining:
            raise RuntimeError(f"the generator asked for {command}, which the cart answered with {decision}")
        history.append(decision.events)
        state = state.with_events(decision.events)
    return history


def purchases_of(history: History) -> int:
    return sum(1 for events in history for e in events if e.type == "ItemPurchased")


async def load_journal(
    journal: CassandraJournal,
    events: int,
    members: int,
    catalogue: Catalogue,
    rng: random.Random,
    days: int,
    concurrency: int = 32,
    into_existing: bool = False,
    progress: Callable[[int, int | None, str], None] | None = None,
) -> Loaded:
    """Generate and write `events` events of `members` fresh members; refuses a keyspace that already has a
    journal unless `into_existing`."""
    if not into_existing and await journal.has_events():
        raise KeyspaceHasJournal(f"keyspace {journal.keyspace} already has a journal")
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)  # today's purchases come live
    start = end - timedelta(days=days)
    began = time.monotonic()
    written = purchases = 0
    member_ids: list[UUID] = []

    def loader(share: int) -> Callable[[], Awaitable[None]]:
        async def load() -> None:
            nonlocal written, purchases
            member_id = uuid4()
            history = member_history(member_id, share, catalogue, rng, start, end)
            await journal.write_history(member_id, history)
            written, purchases = written + share, purchases + purchases_of(history)
            member_ids.append(member_id)
            if progress is not None:
                progress(written, events, f"{len(member_ids):,}/{members:,} members")

        return load

    await in_parallel((loader(share) for share in split(events, members)), concurrency)
    return Loaded(written, tuple(member_ids), purchases, time.monotonic() - began)
