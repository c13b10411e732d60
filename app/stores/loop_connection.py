"""Cassandra's driver on the process's own event loop: a `Connection` whose socket is read and written by the
asyncio loop that awaits its answers, instead of the driver's libev thread.

With libev, every request crossed threads twice: the loop hands the request to the driver's I/O thread (a wake-up
through its async watcher), and the answer's callbacks run on that thread and hand the result back
(`call_soon_threadsafe`, a wake-up through the loop's self-pipe), the two threads taking the GIL from each other
each time. In the command worker that thread was a fifth of the process's samples at 200 commands/s
(docs/benchmarks.md, 2026-12-06, late morning). Here a request made on the loop is written to the socket at once, and
its answer is read, decoded and settled by a reader callback of the same loop.

The driver still uses threads of its own (the connection at start-up, the control connection's refreshes, the
heartbeat), and those block on answers: so nothing may call the driver's blocking API (`Session.execute`,
`Session.prepare`, `Cluster.connect`, `Cluster.shutdown`) on the loop's thread, which is the rule already
(app/runtime.py's `prepared`, `connect_async`). From another thread, a write, a timer and a close are handed to the
loop thread-safely.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from cassandra.connection import Connection, ConnectionShutdown

log = logging.getLogger(__name__)

_WOULD_BLOCK = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINPROGRESS)


def on_loop(loop: asyncio.AbstractEventLoop, loop_thread: int) -> type[Connection]:
    """A connection class whose connections are served by `loop`, running on thread `loop_thread` (it must be
    running whenever they are used)."""
    return type("LoopConnection", (LoopConnection,), {"_loop": loop, "_loop_thread": loop_thread})


class LoopTimer:
    """A request's time-out on the loop; created and cancelled from any thread (a timer handle is only touched on
    the loop's thread: uvloop's are not thread-safe)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, loop_thread: int, timeout: float, callback: Any) -> None:
        self._loop, self._loop_thread, self._callback = loop, loop_thread, callback
        self._handle: asyncio.TimerHandle | None = None
        self._cancelled = False
        if threading.get_ident() == loop_thread:
            self._handle = loop.call_later(timeout, callback)
        else:
            _threadsafe(loop, self._start, timeout)

    def _start(self, timeout: float) -> None:
        if not self._cancelled:
            self._handle = self._loop.call_later(timeout, self._callback)

    def cancel(self) -> None:
        self._cancelled = True
        if threading.get_ident() == self._loop_thread:
            self._cancel_handle()
        else:
            _threadsafe(self._loop, self._cancel_handle)

    def _cancel_handle(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        # The callback is the request's bound `_on_timeout`, and the request holds this timer: a cycle that kept
        # every answered request (its statement, its values, its message) alive until a garbage collection found
        # it, a few dozen objects a request (docs/benchmarks.md, 2026-12-07, evening). Let go of it.
        self._handle = None
        self._callback = None

    def finish(self, *_: Any) -> None:  # not used with this reactor (no TimerManager)
        raise NotImplementedError


def _threadsafe(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> bool:
    try:
        loop.call_soon_threadsafe(callback, *args)
        return True
    except RuntimeError:  # the loop is closed: the process is stopping
        return False


class LoopConnection(Connection):  # type: ignore[misc]
    _loop: asyncio.AbstractEventLoop
    _loop_thread: int = 0
    _socket: socket.socket | None = None
    is_closed: bool
    is_defunct: bool
    in_buffer_size = 65536  # an answer of a few kilobytes in one read

    @classmethod
    def initialize_reactor(cls) -> None:
        pass

    @classmethod
    def handle_fork(cls) -> None:
        pass

    @classmethod
    def create_timer(cls, timeout: float, callback: Any) -> LoopTimer:
        return LoopTimer(cls._loop, cls._loop_thread, timeout, callback)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Connection.__init__(self, *args, **kwargs)
        self._out: deque[memoryview] = deque()
        self._watching_writes = False
        self._connect_socket()
        assert self._socket is not None
        self._socket.setblocking(False)
        self._fd = self._socket.fileno()
        if not self._on_loop(self._start_reading):
            raise ConnectionShutdown(f"Connection to {self.endpoint}: the event loop is closed")
        self._send_options_message()

    def _on_loop(self, callback: Callable[..., Any], *args: Any) -> bool:
        if threading.get_ident() == self._loop_thread:
            callback(*args)
            return True
        return _threadsafe(self._loop, callback, *args)

    def _start_reading(self) -> None:
        if not self.is_closed:
            self._loop.add_reader(self._fd, self._read)

    # --- writing ------------------------------------------------------------------------------------------------

    def push(self, data: bytes) -> None:
        if not self._on_loop(self._write, data):
            self.defunct(ConnectionShutdown(f"Connection to {self.endpoint}: the event loop is closed"))

    def _write(self, data: bytes) -> None:
        if self.is_closed or self.is_defunct:
            return
        self._out.append(memoryview(data))
        if not self._watching_writes:
            self._flush()

    def _flush(self) -> None:
        assert self._socket is not None
        while self._out:
            chunk = self._out[0]
            try:
                sent = self._socket.send(chunk)
            except OSError as error:
                if error.errno in _WOULD_BLOCK:
                    sent = 0
                else:
                    self._stop_writing()
                    self.defunct(error)
                    return
            if sent < len(chunk):
                self._out[0] = chunk[sent:]
                if not self._watching_writes:  # the socket's buffer is full: go on when it has room
                    self._watching_writes = True
                    self._socket_writable = False
                    self._loop.add_writer(self._fd, self._flush)
                return
            self._out.popleft()
        self._stop_writing()

    def _stop_writing(self) -> None:
        if self._watching_writes:
            self._watching_writes = False
            self._socket_writable = True
            self._loop.remove_writer(self._fd)

    # --- reading ------------------------------------------------------------------------------------------------

    def _read(self) -> None:
        assert self._socket is not None
        ended = False
        try:
            while True:
                data = self._socket.recv(self.in_buffer_size)
                if not data:
                    ended = True
                    break
                self._iobuf.write(data)
                if len(data) < self.in_buffer_size:
                    break
        except OSError as error:
            if error.errno not in _WOULD_BLOCK:
                self.defunct(error)
                return
        if self._iobuf.tell():
            self.process_io_buffer()
        if ended:  # even with part of a message left unread: the socket would stay readable, at its end, forever
            log.debug("Connection %s closed by server", self)
            self.close()

    # --- closing ------------------------------------------------------------------------------------------------

    def close(self) -> None:
        with self.lock:
            if self.is_closed:
                return
            self.is_closed = True
        log.debug("Closing connection (%s) to %s", id(self), self.endpoint)
        if not self._on_loop(self._close):
            self._close_socket()  # no loop to hand it to: it stopped, and with it every reader

    def _close(self) -> None:
        try:
            self._loop.remove_reader(self._fd)
            if self._watching_writes:
                self._loop.remove_writer(self._fd)
        except (RuntimeError, ValueError):  # the loop is closing
            pass
        self._close_socket()

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
        if not self.is_defunct:  # don't leave in-progress operations hanging
            self.error_all_requests(ConnectionShutdown(f"Connection to {self.endpoint} was closed"))
            self.connected_event.set()
