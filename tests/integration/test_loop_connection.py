"""Cassandra's driver served by the process's own event loop (app/stores/loop_connection.py), against the real
Cassandra: answers, many at once, a request larger than the socket takes at once, a time-out, a connection lost
under it, and a cluster shut down from a thread."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cassandra.cluster import Cluster, Session
from cassandra.query import BatchStatement, BatchType

from app.command_side.journal import CassandraJournal
from app.runtime import Runtime, prepared
from app.settings import Settings
from app.stores.cassandra import StoreUnavailable, connect_async, execute
from app.stores.loop_connection import LoopConnection


@pytest.fixture
async def on_loop(settings: Settings) -> AsyncIterator[tuple[Cluster, Session]]:
    cluster, session = await connect_async(settings, settings.cassandra_keyspace, on_loop=True)
    try:
        await execute(session, "CREATE TABLE IF NOT EXISTS loop_smoke (id uuid PRIMARY KEY, body text)", timeout_s=30)
        yield cluster, session
    finally:
        await asyncio.to_thread(cluster.shutdown)


def pool_connections(session: Session) -> list[Any]:
    return [pool._connection for pool in session.get_pools() if pool._connection is not None]


async def until(condition: Any, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


async def test_the_connections_are_served_by_the_running_loop_and_answer(on_loop: tuple[Cluster, Session]) -> None:
    _, session = on_loop
    connections = pool_connections(session)
    assert connections and all(isinstance(c, LoopConnection) for c in connections)
    assert all(c._loop is asyncio.get_running_loop() for c in connections)
    ids = [uuid.uuid4() for _ in range(300)]
    await asyncio.gather(
        *(execute(session, "INSERT INTO loop_smoke (id, body) VALUES (%s, %s)", (i, str(i)[::-1])) for i in ids)
    )
    rows = await asyncio.gather(*(execute(session, "SELECT body FROM loop_smoke WHERE id = %s", (i,)) for i in ids))
    assert [r.one().body for r in rows] == [str(i)[::-1] for i in ids]


async def test_a_request_larger_than_the_socket_takes_at_once_goes_whole(on_loop: tuple[Cluster, Session]) -> None:
    _, session = on_loop
    body = uuid.uuid4().hex * (6 * 1024 * 1024 // 32)  # 6 MiB: several times the socket's send buffer
    sent_at_once = max(c._socket.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) for c in pool_connections(session))
    assert len(body) > sent_at_once
    row = uuid.uuid4()
    await execute(session, "INSERT INTO loop_smoke (id, body) VALUES (%s, %s)", (row, body), timeout_s=30)
    assert (await execute(session, "SELECT body FROM loop_smoke WHERE id = %s", (row,))).one().body == body


async def test_a_request_whose_answer_is_not_read_times_out(on_loop: tuple[Cluster, Session]) -> None:
    _, session = on_loop
    loop = asyncio.get_running_loop()
    connections = pool_connections(session)
    for c in connections:  # the answers arrive, and stay unread
        loop.remove_reader(c._fd)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await execute(session, "SELECT body FROM loop_smoke WHERE id = %s", (uuid.uuid4(),), timeout_s=0.5)
    assert time.monotonic() - started < 1.4  # the driver's timer fired (execute's own guard is 1 s later)
    for c in connections:
        loop.add_reader(c._fd, c._read)
    await execute(session, "SELECT body FROM loop_smoke WHERE id = %s", (uuid.uuid4(),))


async def test_a_connection_lost_under_it_fails_its_requests_and_is_replaced(
    on_loop: tuple[Cluster, Session],
) -> None:
    _, session = on_loop
    lost = pool_connections(session)
    for c in lost:
        c._socket.shutdown(socket.SHUT_WR)  # Cassandra sees the end and closes: the next read sees its end
    assert await until(lambda: all(c.is_closed or c.is_defunct for c in lost), 5)

    async def answers() -> bool:
        try:
            await execute(session, "SELECT body FROM loop_smoke WHERE id = %s", (uuid.uuid4(),), timeout_s=2)
            return True
        except Exception:  # StoreUnavailable, or the driver's own while it reconnects
            return False

    deadline = time.monotonic() + 30
    while not await answers():
        assert time.monotonic() < deadline, "no new connection within 30 s"
        await asyncio.sleep(0.5)
    fresh = pool_connections(session)
    assert fresh and not set(map(id, fresh)) & set(map(id, lost))
    assert all(isinstance(c, LoopConnection) for c in fresh)


async def test_a_store_prepared_in_a_thread_works_and_shutting_down_from_a_thread_closes_every_connection(
    settings: Settings,
) -> None:
    cluster, session = await connect_async(settings, settings.cassandra_keyspace, on_loop=True)
    journal = await prepared(CassandraJournal, session, settings.cassandra_keyspace)
    member = uuid.uuid4()
    assert (await journal.load(member)).version == 0
    connections = pool_connections(session)
    await asyncio.to_thread(cluster.shutdown)
    assert await until(lambda: all(c.is_closed for c in connections), 5)
    assert all(c._socket.fileno() == -1 for c in connections)


async def test_the_runtime_uses_the_loop_unless_told_not_to(settings: Settings) -> None:
    for on, expected in ((True, True), (False, False)):
        runtime = Runtime(settings.model_copy(update={"cassandra_on_loop": on}), migrate_first=False)
        try:
            session = await runtime.cassandra()
            assert all(isinstance(c, LoopConnection) for c in pool_connections(session)) is expected
            await execute(session, "SELECT release_version FROM system.local")
        finally:
            await runtime.aclose()


async def test_an_answered_request_leaves_nothing_for_the_garbage_collector(on_loop: tuple[Cluster, Session]) -> None:
    """A request, its callbacks and its time-out timer once held each other: every answered request (its statement,
    values and message) lived on until a collection found it, which under load made the full collections that stall
    every command more frequent and longer. Answered requests of every kind must be freed when their answer is."""
    _, session = on_loop
    insert = await prepared(session.prepare, "INSERT INTO loop_smoke (id, body) VALUES (?, ?)")
    conditional = await prepared(session.prepare, "INSERT INTO loop_smoke (id, body) VALUES (?, ?) IF NOT EXISTS")
    ids = [uuid.uuid4() for _ in range(20)]
    await execute(session, insert, (ids[0], "warm"))  # the first answers fill the driver's caches
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for i in ids:
            await execute(session, insert, (i, "plain"))
            await execute(session, conditional, (i, "conditional"))
            await execute(session, "SELECT body FROM loop_smoke WHERE id = %s", (i,))
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            batch.add(insert, (i, "batched"))
            await execute(session, batch)
        gc.collect()
        kept = Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    requests = {"ResponseFuture", "LoopTimer", "BoundStatement", "BatchStatement", "SimpleStatement", "ResultSet"}
    assert {name: n for name, n in kept.items() if name in requests} == {}
