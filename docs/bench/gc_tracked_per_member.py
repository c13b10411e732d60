"""How many objects the garbage collector tracks per member an owner keeps in memory, and what a full collection over
them costs (docs/benchmarks.md, 2026-12-06, evening).

    .venv/bin/python docs/bench/gc_tracked_per_member.py [members] [sessions]

Each member goes through `sessions` sessions of the bench's (add x3, adjust, remove, checkout), decided and absorbed
as the command agent does (`decide_command`, `with_events`, `remember_emitted`), and is kept in a `MemberCarts`.
"""

from __future__ import annotations

import gc
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from app.cart.member_cart import Accepted, MemberCart, decide_command
from app.cart.rules import AddItem, AdjustQuantity, Checkout, Command, Item, RemoveItem
from app.command_side.member_carts import MemberCarts


def member(sessions: int) -> MemberCart:
    state = MemberCart(uuid.uuid4())
    for session in range(sessions):
        products = [uuid.uuid4() for _ in range(3)]
        commands: list[Command] = [AddItem(Item(p, uuid.uuid4(), "bench-x", Decimal("12.34"), 2)) for p in products]
        commands += [AdjustQuantity(products[0], 1), RemoveItem(products[1]), Checkout()]
        for step, command in enumerate(commands):
            command_id = f"k-{session}-{step}"
            decision = decide_command(
                state, command_id, command, now=datetime.now(UTC), new_cart_id=uuid.uuid4(), new_event_id=uuid.uuid4
            )
            if isinstance(decision, Accepted):
                state = state.with_events(decision.events).remember_emitted(command_id, [(1, 100 + step)], "f" * 16)
    return state


def main(members: int, sessions: int) -> None:
    for _ in range(3):
        gc.collect()
    before = len(gc.get_objects())
    carts = MemberCarts()
    for n in range(members):
        carts.put(n % 12, member(sessions))
    for _ in range(4):
        gc.collect()  # tuples are dropped from the collector's lists level by level
    tracked = len(gc.get_objects()) - before
    started = time.perf_counter()
    gc.collect()
    took = (time.perf_counter() - started) * 1000
    print(
        f"{members} members of {sessions} sessions: {tracked / members:.1f} tracked objects each; "
        f"a full collection of this process ({len(gc.get_objects())} objects) took {took:.1f} ms"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, int(sys.argv[2]) if len(sys.argv) > 2 else 6)
