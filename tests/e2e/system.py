"""Starts and stops the real system for end-to-end tests: Faust workers and the HTTP API as separate processes,
against the real services, with the test settings of tests/conftest.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from app.settings import get_settings
from app.tools.cli import api_command, worker_command

RUN_DIR = Path(os.environ["CART_TEST_RUN_DIR"])
BIN = Path(sys.executable).parent


class Process:
    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log = RUN_DIR / f"{name}.log"
        self._out = self.log.open("ab")
        self.popen = subprocess.Popen(
            command, stdout=self._out, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (a clean stop) and wait; the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        finally:
            self._out.close()

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or commit anything."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)
        self._out.close()

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


_workers = 0


def start_worker(**env: str) -> Process:
    """A `faust -A app.worker worker` with its own table store folder (as a separate machine would have)."""
    global _workers
    _workers += 1
    name = f"worker-{_workers}"
    state = RUN_DIR / name
    state.mkdir(parents=True, exist_ok=True)
    return Process(name, worker_command(), {"CART_STATE_DIR": str(state), **env})


def start_api(**env: str) -> Process:
    s = get_settings()
    port = int(env.get("CART_API_PORT", str(s.api_port)))
    return Process(f"api-{port}", api_command(port), env)


def operator_headers() -> dict[str, str]:
    """An operator's token (any cart, the read models, metrics), as the tests' clients send it."""
    from app.api.auth import ADMIN, ANALYTICS, METRICS, mint

    return {"Authorization": f"Bearer {mint(get_settings(), 'test-operator', [ADMIN, ANALYTICS, METRICS], 6 * 3600)}"}


def member_headers(member: str) -> dict[str, str]:
    """A member's own token."""
    from app.api.auth import mint

    return {"Authorization": f"Bearer {mint(get_settings(), member, [], 3600)}"}


def api_url() -> str:
    s = get_settings()
    return f"http://{s.api_host}:{s.api_port}"


def wait_ready(processes: list[Process], timeout: float = 180) -> None:
    wait_ready_at(api_url(), processes, timeout)


def wait_worker_ready(worker: Process, timeout: float = 180) -> None:
    """Until the worker says Ready: its group is formed (what /ready sees) and its tables are restored, so it is
    consuming. Between the two, commands wait in Kafka (seconds on a loaded machine): long enough for the short
    command timeout of the isolated systems to answer 503 to a test's first command."""
    deadline = time.monotonic() + timeout
    while "[^Worker]: Ready" not in worker.log.read_text(errors="replace"):
        if not worker.alive():
            raise AssertionError(f"{worker.name} exited with {worker.popen.returncode}:\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{worker.name} did not get ready:\n{worker.tail()}")
        time.sleep(0.2)


def isolated_env(tag: str, api_port: int, own_stores: bool = False) -> dict[str, str]:
    """Settings for a system of its own (topics, consumer group, API port), for tests that kill processes;
    with `own_stores`, also its own keyspace and database (for tests that compare whole read models)."""
    suffix = f"{tag}-{os.getpid()}-{int(time.time())}"
    stores = {}
    if own_stores:
        name = "t_" + suffix.replace("-", "_").lower()[:40]
        stores = {"CART_CASSANDRA_KEYSPACE": name, "CART_POSTGRES_DATABASE": name}
    return {
        **stores,
        "CART_APP_ID": f"cart-{suffix}",
        "CART_TOPIC_COMMANDS": f"commands-{suffix}",
        "CART_TOPIC_EVENTS": f"events-{suffix}",
        "CART_TOPIC_REPLIES": f"replies-{suffix}",
        "CART_TOPIC_ITEM_PURCHASED": f"item-purchased-{suffix}",
        "CART_TOPIC_POPULAR_ITEMS_UPDATES": f"popular-items-updates-{suffix}",
        "CART_TOPIC_VENDOR_BILLING_UPDATES": f"vendor-billing-updates-{suffix}",
        "CART_API_PORT": str(api_port),
    }


def wait_ready_at(url: str, processes: list[Process], timeout: float = 180) -> None:
    """Until /ready says Kafka, Cassandra and a Stable worker group, and the workers have restored their tables;
    fail with the logs if a process died."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        for p in processes:
            if not p.alive():
                raise AssertionError(f"{p.name} exited with {p.popen.returncode}:\n{p.tail()}")
        try:
            response = httpx.get(f"{url}/ready", timeout=10)
            if response.status_code == 200:
                for p in processes:
                    if p.name.startswith("worker"):
                        wait_worker_ready(p, max(deadline - time.monotonic(), 1))
                return
            last = response.text
        except httpx.HTTPError as error:
            last = str(error)
        time.sleep(0.5)
    logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in processes)
    raise AssertionError(f"the system did not become ready: {last}\n{logs}")


def topics_of(env: dict[str, str], existing: Iterable[str]) -> list[str]:
    """Which of `existing` are the topics of the test system of `env` (`own_topics`: the owner topic too)."""
    from app.stores.migrations import own_topics

    named = {k.removeprefix("CART_").lower(): v for k, v in env.items() if k.startswith(("CART_TOPIC_", "CART_APP_ID"))}
    return own_topics(get_settings().model_copy(update=named), existing)


async def existing_topics() -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=get_settings().kafka_bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


async def delete_topics(env: dict[str, str], timeout_s: float = 60) -> None:
    """Delete a test system's topics. After a test that paused Kafka (SIGSTOP, SIGCONT), the broker answers
    metadata with no brokers in it for a while, until it has registered with its controller again (seen on CI,
    2026-12-03: aiokafka's NodeNotReadyError at teardown): so this retries, for at most `timeout_s`."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaConnectionError, NodeNotReadyError

    deadline = time.monotonic() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=get_settings().kafka_bootstrap)
        try:
            await admin.start()
            ours = topics_of(env, await admin.list_topics())
            if ours:
                await admin.delete_topics(ours)
            return
        except (NodeNotReadyError, KafkaConnectionError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
        finally:
            await admin.close()


def read_topic(topic: str) -> list[dict[str, Any]]:
    """Every message on a topic right now (JSON values), read with a plain consumer that knows nothing of Faust."""
    return [json.loads(m.value) for records in read_records(topic).values() for m in records]


def read_records(topic: str) -> dict[int, list[Any]]:
    """Every record on a topic right now, per partition in offset order (aiokafka's ConsumerRecords)."""

    async def read() -> dict[int, list[Any]]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=get_settings().kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            metadata = await consumer._client.fetch_all_metadata()
            partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions_for_topic(topic) or ())]
            assert partitions, f"no topic {topic}"
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            found: dict[int, list[Any]] = {tp.partition: [] for tp in partitions}
            for tp in partitions:
                while await consumer.position(tp) < ends[tp]:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    found[tp.partition].extend(batch.get(tp, []))
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())


async def drop_stores(env: dict[str, str]) -> None:
    """Drop an isolated system's keyspace and database."""
    import asyncpg

    from app.stores.cassandra import connect_async, execute

    if "CART_CASSANDRA_KEYSPACE" not in env:
        return
    cluster, session = await connect_async(get_settings())
    try:
        await execute(session, f"DROP KEYSPACE IF EXISTS {env['CART_CASSANDRA_KEYSPACE']}", timeout_s=60)
    finally:
        cluster.shutdown()
    conn = await asyncpg.connect(get_settings().postgres_dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {env['CART_POSTGRES_DATABASE']} WITH (FORCE)")
    finally:
        await conn.close()


def cart_cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the `cart` command as an operator would, with an isolated system's settings."""
    return subprocess.run(
        [sys.executable, "-m", "app.tools.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class System:
    """A worker and an API with topics and a consumer group of their own (and, if asked, their own stores)."""

    def __init__(self, tag: str, port: int, own_stores: bool = False, extra_env: dict[str, str] | None = None) -> None:
        self.env = {**isolated_env(tag, port, own_stores), **(extra_env or {})}
        if own_stores:
            from app.settings import Settings
            from app.tools.services import Postgres

            asyncio.run(Postgres(Settings(postgres_database=self.env["CART_POSTGRES_DATABASE"]))._create_database())
        self.url = f"http://{get_settings().api_host}:{port}"
        self.api = start_api(**self.env, CART_COMMAND_TIMEOUT_S="4")
        self.workers: list[Process] = []

    def start_worker(self, **env: str) -> Process:
        worker = start_worker(**self.env, **env)
        self.workers.append(worker)
        wait_ready_at(self.url, [self.api, worker])
        return worker

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, headers=operator_headers())

    def close(self) -> None:
        for p in [*self.workers, self.api]:
            if p.alive():
                p.kill()
        if os.environ.get("CART_TEST_KEEP"):  # for a post-mortem of a failed run
            print(f"kept {self.env}")
            return
        asyncio.run(delete_topics(self.env))
        asyncio.run(drop_stores(self.env))


def post_or_none(client: httpx.Client, path: str, body: dict[str, Any] | None, key: str) -> httpx.Response | None:
    """A POST as a careful client sends it; None when the connection failed (the API's answer is unknown)."""
    try:
        return client.post(path, json=body, headers={"Idempotency-Key": key})
    except httpx.TransportError:
        return None


def post_until_accepted(
    client: httpx.Client, path: str, body: dict[str, Any] | None, key: str, attempts: int = 120
) -> httpx.Response | str:
    """POST as a client should while the system recovers: a 503 or a lost connection is retried with the same
    Idempotency-Key. The 200 response, or a line saying why it never came."""
    for _ in range(attempts):
        response = post_or_none(client, path, body, key)
        if response is not None and response.status_code == 200:
            return response
        if response is not None and response.status_code != 503:
            return f"{key}: {response.status_code} {response.text}"
        time.sleep(0.5)
    return f"{key}: never accepted"


def a_pear() -> dict[str, object]:
    """An item to add: a new product of a new vendor each time."""
    return {
        "productId": str(uuid.uuid4()),
        "vendorId": str(uuid.uuid4()),
        "name": "pear",
        "price": "0.99",
        "quantity": 1,
    }


def wait_answering(url: str, timeout: float = 180, then: str = "") -> None:
    """Until the API at `url` answers a cart read with 200 (a worker owns the partition), or fail with `then`."""
    deadline, member = time.monotonic() + timeout, str(uuid.uuid4())
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/cart/{member}", timeout=15, headers=operator_headers()).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout}s{then}")
