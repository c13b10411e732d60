"""How long a full garbage collection takes with N carts held as the command worker holds them (`MemberCarts`, each
cart with three items added), everything else frozen (docs/benchmarks.md, 2026-12-07, late afternoon).

.venv/bin/python docs/bench/gc_carts_probe.py   (from the checkout's root; no service needed)
"""

import gc
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from app.cart.member_cart import MemberCart
from app.cart.rules import Item, ItemAdded
from app.cart.stored_event import StoredEvent
from app.command_side.member_carts import MemberCarts


def a_cart(member_id: UUID) -> MemberCart:
    cart_id, now = uuid.uuid4(), datetime.now(UTC)
    events = [
        StoredEvent(
            uuid.uuid4(),
            member_id,
            cart_id,
            n,
            f"c{n}",
            now,
            ItemAdded(cart_id, Item(uuid.uuid4(), uuid.uuid4(), f"product {n}", Decimal("12.50"), 2)),
        )
        for n in (1, 2, 3)
    ]
    return MemberCart(member_id).with_events(events)


def main() -> None:
    gc.collect()
    gc.freeze()
    for count in (10_000, 100_000):
        carts = MemberCarts(count)
        for _ in range(count):
            carts.put(0, a_cart(uuid.uuid4()))
        gc.collect()
        started = time.perf_counter()
        gc.collect()
        took_ms = (time.perf_counter() - started) * 1000
        print(f"{count:,} carts: {len(gc.get_objects()):,} tracked objects, a full collection {took_ms:.0f} ms")
        del carts


if __name__ == "__main__":
    main()
