"""The API's producer is replaced when Kafka tells it it can never send again.

A broker that restarted and lost the producer's state answers OutOfOrderSequenceNumber to every later batch of an
idempotent producer; before this rule the API answered 503 forever after a Kafka restart. The real restart is
`make drills` (test_a_service_stopped_and_started_again_under_load[kafka]); here stand-in producers let the rule
itself be checked in milliseconds: which errors renew, that renewal happens once, and that it retries a start.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, OutOfOrderSequenceNumber, ProducerClosed

from app.cart.rules import Checkout
from app.command_side.command_bus import CartServiceUnavailable, CommandBus
from app.settings import get_settings


class StandInProducer:
    """Only what CommandBus calls on a producer; `fail` is what every send raises (None: the send succeeds)."""

    def __init__(self, fail: Exception | None = None, start_failures: int = 0) -> None:
        self.fail, self.start_failures = fail, start_failures
        self.sent = 0
        self.started = self.stopped = False

    async def start(self) -> None:
        if self.start_failures:
            self.start_failures -= 1
            raise KafkaConnectionError("broker not up yet")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(self, topic: str, value: bytes, key: bytes, partition: int | None = None) -> Any:
        self.sent += 1
        if self.fail is not None:
            raise self.fail


def a_bus(first: StandInProducer, later: list[StandInProducer]) -> CommandBus:
    bus = CommandBus(get_settings().model_copy(update={"command_timeout_s": 0.2}))
    bus._producer = first  # type: ignore[assignment]
    bus._new_producer = lambda: later.pop(0)  # type: ignore[assignment,method-assign,return-value]
    return bus


async def ask(bus: CommandBus) -> None:
    await bus.ask(uuid.uuid4(), uuid.uuid4().hex, Checkout())


async def settle(bus: CommandBus) -> None:
    if bus._renewing is not None:
        await asyncio.wait_for(bus._renewing, 5)


async def test_a_producer_that_can_never_send_again_is_replaced_once() -> None:
    broken, fresh = StandInProducer(OutOfOrderSequenceNumber()), StandInProducer()
    bus = a_bus(broken, [fresh])
    # Concurrent requests all meet the broken producer; one replacement starts.
    answers = await asyncio.gather(*(ask(bus) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(a, CartServiceUnavailable) and "reconnecting" in str(a) for a in answers), answers
    assert broken.sent == 3
    await settle(bus)
    assert broken.stopped and fresh.started and bus._producer is fresh
    with pytest.raises(CartServiceUnavailable, match="no cart worker answered"):  # sent; nobody replies here
        await ask(bus)
    assert fresh.sent == 1


async def test_a_replacement_that_cannot_start_yet_is_tried_again() -> None:
    broken = StandInProducer(OutOfOrderSequenceNumber())
    refused, fresh = StandInProducer(start_failures=1), StandInProducer()
    bus = a_bus(broken, [refused, fresh])
    with pytest.raises(CartServiceUnavailable):
        await ask(bus)
    await settle(bus)
    assert refused.stopped and not refused.started
    assert bus._producer is fresh and fresh.started


@pytest.mark.parametrize("error", [KafkaTimeoutError(), KafkaConnectionError("down")])
async def test_a_passing_kafka_error_keeps_the_producer(error: Exception) -> None:
    producer = StandInProducer(error)
    bus = a_bus(producer, [])
    with pytest.raises(CartServiceUnavailable, match="Kafka did not take the command"):
        await ask(bus)
    assert bus._renewing is None and bus._producer is producer and not producer.stopped


async def test_stopping_the_bus_cancels_a_renewal_in_progress() -> None:
    broken = StandInProducer(OutOfOrderSequenceNumber())
    never = [StandInProducer(start_failures=10**6) for _ in range(100)]
    bus = a_bus(broken, never)
    with pytest.raises(CartServiceUnavailable):
        await ask(bus)
    await asyncio.sleep(0.05)
    await bus.stop()
    assert bus._renewing is not None and bus._renewing.cancelled()


async def test_a_replacement_whose_settings_fail_is_tried_again_and_a_stopped_bus_renews_nothing() -> None:
    broken, fresh = StandInProducer(OutOfOrderSequenceNumber()), StandInProducer()
    attempts: list[StandInProducer] = [fresh]

    def make() -> StandInProducer:
        if len(attempts) == 1 and not getattr(make, "failed", False):
            make.failed = True  # type: ignore[attr-defined]
            raise ValueError("TLS to Kafka needs the broker's CA")  # what kafka_options raises
        return attempts.pop(0)

    bus = a_bus(broken, [])
    bus._new_producer = make  # type: ignore[assignment,method-assign]
    with pytest.raises(CartServiceUnavailable):
        await ask(bus)
    await settle(bus)
    assert bus._producer is fresh and fresh.started

    closed = StandInProducer(ProducerClosed())
    stopping = a_bus(closed, [StandInProducer()])
    await stopping.stop()
    with pytest.raises(CartServiceUnavailable):
        await ask(stopping)
    assert stopping._renewing is None
