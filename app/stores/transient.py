"""The errors that mean a store or Kafka did not answer (in time): worth waiting for and trying again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiokafka.errors import KafkaError

from app.stores.cassandra import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT = (
    StoreUnavailable,
    KafkaError,
    OSError,  # includes ConnectionError and asyncio's TimeoutError
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.DeadlockDetectedError,  # a transaction PostgreSQL chose to abort: nothing of it applied
    asyncpg.exceptions.SerializationError,
)


async def until_done(what: str, step: Callable[[], Awaitable[T]], max_delay_s: float = 5.0) -> T:
    """`step()`, tried again (with a growing pause) for as long as a store or Kafka does not answer: for work that
    must happen because what came before it is already durable."""
    delay = 0.1
    while True:
        try:
            return await step()
        except TRANSIENT as error:
            log.warning("%s: %s; trying again in %.1fs", what, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay_s)
