"""A small asyncio bridge to the DataStax driver: one session per process, awaited queries with a timeout.

The driver runs its own I/O thread and hands back ``ResponseFuture``s; ``execute`` turns one into an asyncio
future so agents and request handlers can ``await`` Cassandra without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import threading
from collections import namedtuple
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, ResponseFuture, Session
from cassandra.policies import RoundRobinPolicy
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from app.settings import Settings
from app.stores.cql_values import bound
from app.stores.loop_connection import on_loop


class StoreUnavailable(RuntimeError):
    """A store did not answer in time or refused the connection; nothing was written by the failed call."""


@functools.lru_cache(maxsize=512)
def _row_type(column_names: tuple[str, ...]) -> Any:
    return namedtuple("Row", [re.sub(r"[^a-zA-Z0-9_]", "", c) or "column" for c in column_names], rename=True)


def rows_of(column_names: list[str], rows: list[Any]) -> list[Any]:
    """Rows as named tuples, as the driver's default factory makes them, but with one row class per column list
    (the default makes a new namedtuple class for every result, which was a worker's largest single cost)."""
    row = _row_type(tuple(column_names))
    return [row(*r) for r in rows]


def applied(result: Any) -> bool:
    """Whether a conditional write (or batch) was applied: its first column, `[applied]`."""
    first = result.one()
    return bool(first[0]) if first is not None else False


def connect(
    settings: Settings,
    keyspace: str | None = None,
    timeout_s: float = 10.0,
    loop: tuple[asyncio.AbstractEventLoop, int] | None = None,
) -> tuple[Cluster, Session]:
    """Open a cluster connection (blocking: call it from a thread or at start-up, never per request). With `loop`
    (an event loop and the thread it runs on), the connections are served by that loop (app/stores/loop_connection.py)
    rather than by the driver's own thread."""
    profile = ExecutionProfile(
        load_balancing_policy=RoundRobinPolicy(),
        row_factory=rows_of,
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        request_timeout=timeout_s,
    )
    secret = settings.cassandra_secret
    cluster = Cluster(
        settings.cassandra_contact_points,
        port=settings.cassandra_port,
        auth_provider=PlainTextAuthProvider(settings.cassandra_username, secret) if secret else None,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        protocol_version=5,
        connect_timeout=timeout_s,
        # The driver leaves Nagle's algorithm on: a request of a few kilobytes (a batch's events) then waited for
        # the server's delayed ACK, 40 ms on every conditional write (measured: 44 ms without, 1.5 ms with).
        sockopts=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        **({"connection_class": on_loop(*loop)} if loop is not None else {}),
    )
    try:
        session = cluster.connect(keyspace)
        # Every query here is bounded (a journal bucket, a LIMIT); paging would block the event loop
        # when the ResultSet fetches its next page, so it is off and callers page explicitly.
        session.default_fetch_size = None
    except Exception as error:
        cluster.shutdown()
        raise StoreUnavailable(f"Cassandra at {settings.cassandra_hosts}:{settings.cassandra_port}: {error}") from error
    return cluster, session


async def connect_async(
    settings: Settings, keyspace: str | None = None, on_loop: bool = False
) -> tuple[Cluster, Session]:
    """`connect` in a thread. With `on_loop`, the connections are served by the running loop: then the driver's
    blocking calls (`Session.prepare`, `Session.execute`, `Cluster.shutdown`) must never be made on the loop's
    thread (they would wait for an answer that only the loop they block can read): run them in a thread."""
    loop = (asyncio.get_running_loop(), threading.get_ident()) if on_loop else None
    return await asyncio.to_thread(connect, settings, keyspace, 10.0, loop)


async def execute(
    session: Session,
    statement: Any,
    params: Sequence[Any] | None = None,
    timeout_s: float = 5.0,
    paging_state: bytes | None = None,
) -> Any:
    """Run one statement and return its ResultSet; raise StoreUnavailable on time-out or a lost connection."""
    loop = asyncio.get_running_loop()
    here = threading.get_ident()
    done: asyncio.Future[Any] = loop.create_future()
    future: ResponseFuture = session.execute_async(statement, params, timeout=timeout_s, paging_state=paging_state)

    def on_result(_rows: Any) -> None:
        if threading.get_ident() == here:  # answered on this loop (app/stores/loop_connection.py)
            _settle(done, future, None)
        else:
            loop.call_soon_threadsafe(_settle, done, future, None)

    def on_error(error: BaseException) -> None:
        if threading.get_ident() == here:
            _settle(done, future, error)
        else:
            loop.call_soon_threadsafe(_settle, done, future, error)

    future.add_callbacks(on_result, on_error)
    try:
        return await asyncio.wait_for(done, timeout_s + 1.0)
    except TimeoutError as error:
        raise StoreUnavailable(f"Cassandra did not answer within {timeout_s}s") from error


def _settle(done: asyncio.Future[Any], future: ResponseFuture, error: BaseException | None) -> None:
    # The request holds the callbacks, and they hold the request (and `done`, which will hold its result, which
    # holds the request): a cycle that outlived every answered request until a garbage collection found it, dozens
    # of objects each, thousands a second under load, and so more frequent and slower full collections, each of
    # which stalls every command in flight (docs/benchmarks.md, 2026-12-07, evening). Freed by reference counting
    # once the cycle is cut.
    future.clear_callbacks()
    if done.done():
        return
    if error is None:
        # Paging is off (connect) except for scan(), which pages explicitly: the first page is all there is.
        done.set_result(future.result())
    elif _is_unavailable(error):
        done.set_exception(StoreUnavailable(f"Cassandra: {error}"))
    else:
        done.set_exception(error)


def _is_unavailable(error: BaseException) -> bool:
    from cassandra import OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout
    from cassandra.cluster import NoHostAvailable

    return isinstance(error, OperationTimedOut | ReadTimeout | WriteTimeout | Unavailable | NoHostAvailable)


async def scan(session: Session, query: str, params: Sequence[Any] | None = None, page_size: int = 1000) -> list[Any]:
    """Every row of a query, fetched page by page (for the operator's full-table reads: verify, rebuild)."""
    from cassandra.query import SimpleStatement

    rows: list[Any] = []
    paging_state = None
    while True:
        statement = SimpleStatement(query, fetch_size=page_size)
        result = await execute(session, statement, params, timeout_s=30.0, paging_state=paging_state)
        rows.extend(result.current_rows)
        paging_state = result.paging_state
        if paging_state is None:
            return rows


async def in_parallel(jobs: Iterable[Callable[[], Awaitable[None]]], concurrency: int) -> None:
    """Run the jobs, at most `concurrency` at a time, in the order given; the first failure cancels the rest and is
    raised (what was done stays done)."""
    pending = iter(jobs)

    async def one_after_another() -> None:
        # The workers share one iterator: each takes the next job when its previous one is done.
        for job in pending:
            await job()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, concurrency)):
                group.create_task(one_after_another())
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None


def unlogged_batches(writes: Sequence[tuple[Any, Sequence[Any]]], per_batch: int) -> list[BatchStatement]:
    """`writes` (statement, values) in unlogged batches of `per_batch`, in the order given. Cassandra makes a batch's
    writes to one partition one mutation, and pays per partition far more than per row: give a partition's writes
    together (docs/benchmarks.md, 2026-12-05 late night and 2026-12-07)."""
    batches = []
    for start in range(0, len(writes), per_batch):
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for statement, values in writes[start : start + per_batch]:
            if isinstance(statement, PreparedStatement):
                batch.add(bound(statement, values))  # the driver's bytes, made faster (app/stores/cql_values.py)
            else:
                batch.add(statement, values)
        batches.append(batch)
    return batches


async def execute_all(
    session: Session,
    statements: Iterable[tuple[Any, Sequence[Any] | None]],
    concurrency: int = 64,
    timeout_s: float = 10.0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Run every (statement, params), `concurrency` in flight at a time (the driver's async execution: bulk writes
    of rebuild and the bulk loader); the number run."""
    done = 0

    def job(statement: Any, params: Sequence[Any] | None) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            nonlocal done
            await execute(session, statement, params, timeout_s)
            done += 1
            if progress is not None:
                progress(done)

        return run

    await in_parallel((job(statement, params) for statement, params in statements), concurrency)
    return done
