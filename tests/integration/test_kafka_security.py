"""Kafka over SASL_SSL: SCRAM logins over TLS on the local broker's secure listener, with the same client options
the system uses everywhere (app/streams/kafka_clients.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from app.settings import Settings
from app.streams.kafka_clients import kafka_options


def secure(settings: Settings, **changes: object) -> Settings:
    host, _ = settings.kafka_host_port
    update = {"kafka_bootstrap": f"{host}:{settings.kafka_secure_port}", "kafka_security_protocol": "SASL_SSL"}
    return settings.model_copy(update={**update, **changes})


async def test_a_message_goes_through_the_secure_listener_with_scram_over_tls(settings: Settings) -> None:
    options = kafka_options(secure(settings))
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-256"
    topic = f"secure-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    producer = AIOKafkaProducer(**options, acks="all")
    consumer = AIOKafkaConsumer(topic, **options, auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    try:
        await producer.send_and_wait(topic, b"over tls", key=b"member")
        message = await asyncio.wait_for(consumer.getone(), 30)
        assert message.value == b"over tls"
    finally:
        await consumer.stop()
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()


@pytest.mark.parametrize(
    "changes",
    [
        {"kafka_password": SecretStr("not-the-password")},
        {"kafka_username": "nobody"},
        {"kafka_sasl_mechanism": "PLAIN"},  # not enabled on the broker
    ],
)
async def test_the_secure_listener_refuses_a_wrong_login(settings: Settings, changes: dict[str, object]) -> None:
    producer = AIOKafkaProducer(**kafka_options(secure(settings, **changes)), request_timeout_ms=5000)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()


async def test_the_secure_listener_refuses_a_client_without_tls(settings: Settings) -> None:
    options = kafka_options(secure(settings, kafka_security_protocol="SASL_PLAINTEXT"))
    producer = AIOKafkaProducer(**options, request_timeout_ms=5000)
    with pytest.raises((KafkaError, TimeoutError)):
        await asyncio.wait_for(producer.start(), 15)
    await producer.stop()
