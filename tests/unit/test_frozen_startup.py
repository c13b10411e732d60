"""What a process built to start is left out of the garbage collector's later passes, which are full more rarely
(app.runtime)."""

from __future__ import annotations

import gc

from app.runtime import FULL_COLLECTION_EVERY, settle_garbage_collection


def test_objects_alive_at_the_freeze_are_left_out_and_garbage_is_collected_first() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    kept = [Node() for _ in range(1000)]
    cyclic_garbage = Node()
    del cyclic_garbage
    thresholds = gc.get_threshold()
    try:
        frozen = settle_garbage_collection()
        assert frozen == gc.get_freeze_count() >= len(kept)
        assert not any(isinstance(o, Node) for o in gc.get_objects())  # frozen objects are in no generation
        assert gc.get_threshold() == (
            *thresholds[:2],
            FULL_COLLECTION_EVERY,
        )  # full passes rarer, the others as they were
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert sum(isinstance(o, Node) for o in gc.get_objects()) == len(kept)  # the garbage was collected, not frozen
