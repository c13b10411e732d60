"""The loop-served connection's own mechanics (app/stores/loop_connection.py) over a socket pair: what another
thread writes reaches the socket whole and in order, the end of the stream closes the connection and fails what
waits on it, and a time-out set from another thread fires on the loop (or not, once cancelled). The driver against
the real Cassandra: tests/integration/test_loop_connection.py."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cassandra.connection import ConnectionShutdown, DefaultEndPoint

from app.stores.loop_connection import LoopConnection, on_loop


@pytest.fixture
async def pair() -> AsyncIterator[tuple[LoopConnection, socket.socket]]:
    ours, theirs = socket.socketpair()
    base = on_loop(asyncio.get_running_loop(), threading.get_ident())

    class PairConnection(base):  # type: ignore[misc, valid-type]
        def _connect_socket(self) -> None:
            self._socket = ours

        def _send_options_message(self) -> None:
            pass

        def _write(self, data: bytes) -> None:
            self.writers.add(threading.get_ident())  # the socket is only written on the loop's thread
            super()._write(data)

    PairConnection.writers = set()
    connection = await asyncio.to_thread(PairConnection, DefaultEndPoint("127.0.0.1", 1))
    await asyncio.sleep(0)  # its reader is added on the loop
    try:
        yield connection, theirs
    finally:
        connection.close()
        theirs.close()


async def received(theirs: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    theirs.setblocking(False)
    data = b""
    while len(data) < size:
        data += await asyncio.wait_for(loop.sock_recv(theirs, size - len(data)), 5)
    return data


async def test_what_other_threads_push_reaches_the_socket_whole_and_in_order(
    pair: tuple[LoopConnection, socket.socket],
) -> None:
    connection, theirs = pair
    messages = [bytes([n]) * (300_000 + n) for n in range(8)]  # larger than the socket takes at once

    def push_all() -> None:
        for message in messages:
            connection.push(message)

    pushing = asyncio.ensure_future(asyncio.to_thread(push_all))
    data = await received(theirs, sum(map(len, messages)))
    await pushing
    assert data == b"".join(messages)
    assert connection.writers == {threading.get_ident()}


async def test_the_end_of_the_stream_closes_the_connection_and_fails_what_waits_on_it(
    pair: tuple[LoopConnection, socket.socket],
) -> None:
    connection, theirs = pair
    answers: list[Any] = []
    connection._requests[5] = (answers.append, None, None)
    theirs.shutdown(socket.SHUT_WR)  # Cassandra closed its end
    for _ in range(100):
        if answers:
            break
        await asyncio.sleep(0.01)
    assert connection.is_closed
    assert len(answers) == 1 and isinstance(answers[0], ConnectionShutdown)
    assert connection._socket is not None and connection._socket.fileno() == -1


async def test_the_end_of_the_stream_in_the_middle_of_an_answer_closes_the_connection_too(
    pair: tuple[LoopConnection, socket.socket],
) -> None:
    connection, theirs = pair
    theirs.sendall(b"\x85\x00\x00")  # the first bytes of a frame's header, and no more
    theirs.shutdown(socket.SHUT_WR)
    for _ in range(100):
        if connection.is_closed:
            break
        await asyncio.sleep(0.01)
    assert connection.is_closed  # not left readable at its end, called again and again


async def test_a_time_out_set_from_another_thread_fires_on_the_loop_unless_cancelled() -> None:
    loop = asyncio.get_running_loop()
    here = threading.get_ident()
    fired: list[tuple[str, int]] = []
    connection_class: Any = on_loop(loop, here)

    def set_timers() -> Any:
        connection_class.create_timer(0.05, lambda: fired.append(("kept", threading.get_ident())))
        cancelled = connection_class.create_timer(0.05, lambda: fired.append(("cancelled", threading.get_ident())))
        cancelled.cancel()

    await asyncio.to_thread(set_timers)
    await asyncio.sleep(0.3)
    assert fired == [("kept", here)]
