"""The owner's carts between commands: in memory, a cache of the journal, bounded.

Only what the journal holds goes in (a cart is put after its events were appended), so a cart found here is the
journal's state of that member, as long as this process has owned the member's partition without a break: when
another owner may have written for a partition, its carts are dropped (`drop`) and loaded again from the journal.
At most `capacity` carts are kept; the least recently used go first and are loaded from the journal when needed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from uuid import UUID

from app.cart.member_cart import MemberCart


class MemberCarts:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._carts: OrderedDict[UUID, tuple[int, MemberCart]] = OrderedDict()

    def get(self, member_id: UUID) -> MemberCart | None:
        found = self._carts.get(member_id)
        if found is None:
            return None
        self._carts.move_to_end(member_id)
        return found[1]

    def put(self, partition: int, state: MemberCart) -> None:
        self._carts[state.member_id] = (partition, state)
        self._carts.move_to_end(state.member_id)
        while len(self._carts) > self.capacity:
            self._carts.popitem(last=False)

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the carts of these partitions (another owner may have written for them)."""
        gone = set(partitions)
        for member_id in [m for m, (p, _) in self._carts.items() if p in gone]:
            del self._carts[member_id]

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Forget the carts of every other partition."""
        kept = set(partitions)
        for member_id in [m for m, (p, _) in self._carts.items() if p not in kept]:
            del self._carts[member_id]

    def __len__(self) -> int:
        return len(self._carts)
