"""The API's way to the carts: put a command on `cart-commands` (keyed by member id) and wait for the owner's reply.

Each API instance listens on one partition of `cart-replies` (chosen at random at start) and tells the worker, in
the envelope, to answer there; replies for other instances on the same partition are ignored. The envelope carries
a deadline: a worker that gets the command after it skips it, so a 503 for a time-out almost always means nothing
was applied (and a retry with the same Idempotency-Key is safe either way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber, ProducerClosed, ProducerFenced, UnknownProducerId

from app.cart.command_codec import command_to_dict
from app.cart.rules import Command
from app.command_side.indexer import INDEX_NOW
from app.command_side.journal import CassandraJournal
from app.settings import Settings
from app.streams.kafka_clients import kafka_options
from app.streams.partitioning import KeyPartitioner
from schemas.records import CommandEnvelope, CommandReply

log = logging.getLogger(__name__)

# The API waits this much longer than the deadline it gives the worker, so an answer sent just in time arrives.
GRACE_S = 1.0

# After these an idempotent producer never sends again (aiokafka's sender task has ended): a broker that restarted
# and lost its producer state answers OutOfOrderSequenceNumber to every later batch. Only a new producer (a new
# producer id) gets through; the worker's Idempotency-Key check keeps a resent command from applying twice.
PRODUCER_FATAL = (OutOfOrderSequenceNumber, ProducerFenced, UnknownProducerId, ProducerClosed)


class CartServiceUnavailable(RuntimeError):
    """Kafka refused the command, or no worker answered in time."""


class CommandBus:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reply_partition = random.randrange(settings.reply_partitions)
        self._pending: dict[str, asyncio.Future[CommandReply]] = {}
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._listener: asyncio.Task[None] | None = None
        self._renewing: asyncio.Task[None] | None = None
        self._stopping = False  # a producer closed by stop() is not one to replace

    def _new_producer(self) -> AIOKafkaProducer:
        s = self.settings
        return AIOKafkaProducer(
            **kafka_options(s),
            acks="all",
            enable_idempotence=True,
            linger_ms=int(s.producer_linger_s * 1000),  # 0 by default: see Settings.producer_linger_s
            partitioner=KeyPartitioner(),  # aiokafka's partitions, with a cached murmur2 of the member's key
            request_timeout_ms=int(s.command_timeout_s * 1000),
            client_id=f"cart-api-{uuid.uuid4().hex[:8]}",
        )

    def _renew_producer(self, broken: AIOKafkaProducer) -> None:
        """Replace a producer that can never send again, once, in the background (requests get 503 meanwhile)."""
        if self._stopping or self._producer is not broken or (self._renewing is not None and not self._renewing.done()):
            return

        async def renew(old: AIOKafkaProducer) -> None:
            log.warning("the Kafka producer can no longer send; starting a new one")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.stop(), 10)
            while True:
                fresh: AIOKafkaProducer | None = None
                try:
                    fresh = self._new_producer()
                    await fresh.start()
                except Exception as error:  # Kafka still away, or a setting (a CA file) missing: keep trying
                    log.warning("a new Kafka producer could not start: %s; retrying", error)
                    if fresh is not None:
                        with contextlib.suppress(Exception):
                            await fresh.stop()
                    await asyncio.sleep(1)
                    continue
                except asyncio.CancelledError:  # the bus is stopping: leave nothing running
                    if fresh is not None:
                        with contextlib.suppress(Exception):
                            await fresh.stop()
                    raise
                self._producer = fresh
                log.info("a new Kafka producer is sending the commands")
                return

        self._renewing = asyncio.create_task(renew(broken), name="renew-producer")

    async def start(self) -> None:
        s = self.settings
        self._producer = self._new_producer()
        self._consumer = AIOKafkaConsumer(**kafka_options(s), enable_auto_commit=False)
        try:
            await self._producer.start()
            await self._consumer.start()
            partition = TopicPartition(s.topic_replies, self.reply_partition)
            self._consumer.assign([partition])
            await self._consumer.seek_to_end(partition)
            await self._consumer.position(partition)  # resolve "end" now, before the first command is sent
        except KafkaError as error:
            await self.stop()
            raise CartServiceUnavailable(f"Kafka at {s.kafka_bootstrap} is not reachable: {error}") from error
        self._listener = asyncio.create_task(self._listen(), name="cart-replies")

    async def stop(self) -> None:
        self._stopping = True
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        for client in (self._consumer, self._producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()

    async def _listen(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=1000)
            except KafkaError as error:  # keep listening: Kafka may come back
                log.warning("reading replies failed: %s", error)
                await asyncio.sleep(1)
                continue
            for messages in batches.values():
                for message in messages:
                    self._resolve(message.value)

    def _resolve(self, raw: bytes | None) -> None:
        try:
            reply = CommandReply.loads(raw or b"null")
            reply.outcome  # noqa: B018 (a status this API does not know is a malformed reply)
        except (ValueError, TypeError, KeyError, AttributeError):
            return
        waiter = self._pending.get(reply.correlation_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    async def readiness(self) -> tuple[bool | str, bool | str]:
        """(Kafka answers, a worker group consuming the commands is Stable): True or the reason it is not."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(**kafka_options(self.settings), request_timeout_ms=3000)
        try:
            await asyncio.wait_for(admin.start(), 5)
            # Every command worker is in `command_group`, whatever else it runs (app/streams/driven.py).
            groups = [await asyncio.wait_for(admin.describe_consumer_groups([self.settings.command_group]), 5)]
        except Exception as error:
            return f"not reachable: {str(error) or type(error).__name__}", "unknown: Kafka is not reachable"
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        states = [(g[1], g[2], len(g[5])) for answer in groups for response in answer for g in response.groups]
        if any(state == "Stable" and members for _, state, members in states):
            return True, True
        seen = ", ".join(f"{name} is {state or 'empty'} with {members} members" for name, state, members in states)
        return True, f"no cart worker group is ready ({seen or 'none found'})"

    async def ask(self, member_id: UUID, command_id: str, command: Command) -> CommandReply:
        """Send one command and return the owner's reply; CartServiceUnavailable when there is none in time."""
        return await self.ask_dict(member_id, command_id, command_to_dict(command))

    async def index_now(self, member_id: UUID) -> CommandReply:
        """Ask the owner of the member's partition to index everything it has appended (app/command_side/indexer.py),
        so that the member-keyed journal holds every command answered before this one."""
        return await self.ask_dict(member_id, uuid.uuid4().hex, {"type": INDEX_NOW})

    async def ask_dict(
        self, member_id: UUID, command_id: str, command: dict[str, Any], partition: int | None = None
    ) -> CommandReply:
        """`ask` with the command as its dict; to `partition` of cart-commands instead of the member's if given."""
        producer = self._producer
        if producer is None:
            raise CartServiceUnavailable("the API is not connected to Kafka")
        timeout = self.settings.command_timeout_s
        correlation_id = uuid.uuid4().hex
        envelope = CommandEnvelope(
            command_id=command_id,
            member_id=str(member_id),
            command=command,
            correlation_id=correlation_id,
            reply_partition=self.reply_partition,
            deadline=time.time() + timeout,
        )
        waiter: asyncio.Future[CommandReply] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = waiter
        try:
            try:
                # asyncio.timeout, not wait_for: wait_for runs the send in a task of its own, one more per request.
                async with asyncio.timeout(timeout):
                    await producer.send_and_wait(
                        self.settings.topic_commands, envelope.dumps(), key=str(member_id).encode(), partition=partition
                    )
            except PRODUCER_FATAL as error:
                self._renew_producer(producer)
                raise CartServiceUnavailable(f"Kafka did not take the command: {error}; reconnecting") from error
            except (KafkaError, TimeoutError) as error:
                raise CartServiceUnavailable(
                    f"Kafka did not take the command: {str(error) or type(error).__name__}"
                ) from error
            try:
                async with asyncio.timeout(timeout + GRACE_S):
                    return await waiter
            except TimeoutError as error:
                raise CartServiceUnavailable(
                    f"no cart worker answered within {timeout:.0f}s (is a worker running?)"
                ) from error
        finally:
            self._pending.pop(correlation_id, None)


async def index_everywhere(settings: Settings) -> list[int]:
    """Ask the owner of every partition of cart-commands to index everything it has appended (app/command_side/
    indexer.py), for a reader that must see every answered command in the member-keyed journal (`cart verify`,
    `cart rebuild`); the partitions whose owner did not answer (none runs, or it is busy for longer than
    CART_COMMAND_TIMEOUT_S): what their last owner appended is indexed when a worker claims them."""
    bus = CommandBus(settings)
    await bus.start()
    try:
        asked = range(settings.partitions)
        answers = await asyncio.gather(
            *(bus.ask_dict(UUID(int=0), uuid.uuid4().hex, {"type": INDEX_NOW}, partition=p) for p in asked),
            return_exceptions=True,
        )
    finally:
        await bus.stop()
    return [p for p, answer in zip(asked, answers, strict=True) if not _indexed(answer)]


async def everything_indexed(settings: Settings, journal: CassandraJournal) -> list[int]:
    """`index_everywhere`, then of the partitions whose owner did not answer, those whose last owner may have left
    answered commands out of the member-keyed journal (it did not stop cleanly): what a reader of the whole journal
    would miss until a worker claims them."""
    try:
        silent = await index_everywhere(settings)
    except CartServiceUnavailable:  # Kafka away: nobody can be asked, the journal can
        silent = list(range(settings.partitions))
    return [p for p in silent if not await journal.finished(p)]


def _indexed(answer: CommandReply | BaseException) -> bool:
    if isinstance(answer, CartServiceUnavailable):
        return False
    if isinstance(answer, BaseException):
        raise answer
    return bool(answer.body.get("indexed"))
