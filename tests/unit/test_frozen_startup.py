"""What a process built to start is left out of the garbage collector's later passes (app.runtime)."""

from __future__ import annotations

import gc

from app.runtime import freeze_what_startup_made


def test_objects_alive_at_the_freeze_are_left_out_and_garbage_is_collected_first() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    kept = [Node() for _ in range(1000)]
    cyclic_garbage = Node()
    del cyclic_garbage
    try:
        frozen = freeze_what_startup_made()
        assert frozen == gc.get_freeze_count() >= len(kept)
        assert not any(isinstance(o, Node) for o in gc.get_objects())  # frozen objects are in no generation
    finally:
        gc.unfreeze()
    assert sum(isinstance(o, Node) for o in gc.get_objects()) == len(kept)  # the garbage was collected, not frozen
