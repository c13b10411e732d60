"""A store that stops answering: the API says 503 with a reason, nothing is half-applied, and a retry with the same
Idempotency-Key succeeds once the store is back. The real Cassandra and Kafka processes are paused (SIGSTOP), as a
hung machine or a long GC pause would do, and resumed."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.settings import get_settings
from tests.e2e.system import System, a_pear, post_until_accepted

pytestmark = pytest.mark.slow


def pid_listening_on(port: int) -> int:
    """The process that listens on a local TCP port (whichever checkout started it), found through /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        with contextlib.suppress(OSError):
            if os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes:
                return int(fd.parts[2])
    raise AssertionError(f"nothing listens on port {port}")


@contextmanager
def paused(service: str) -> Iterator[None]:
    settings = get_settings()
    port = settings.cassandra_port if service == "cassandra" else settings.kafka_host_port[1]
    pid = pid_listening_on(port)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def until_accepted(client: httpx.Client, member: str, item: dict[str, object], key: str) -> httpx.Response:
    outcome = post_until_accepted(client, f"/cart/{member}", item, key)
    assert not isinstance(outcome, str), outcome
    return outcome


def test_while_cassandra_does_not_answer_commands_get_503_and_nothing_is_half_applied(
    isolated: System,
) -> None:
    isolated.start_worker()
    member, item, key = str(uuid.uuid4()), a_pear(), f"k-{uuid.uuid4()}"
    with isolated.client() as client, paused("cassandra"):
        refused = client.post(f"/cart/{member}", json=item, headers={"Idempotency-Key": key})
        history = client.get(f"/cart/{member}/events")
        ready = client.get("/ready")
    assert ready.status_code == 503 and ready.json()["ready"] is False
    assert ready.json()["cassandra"] is not True and "not reachable" in ready.json()["cassandra"], ready.text
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["reason"]
    assert history.status_code == 503, history.text

    with isolated.client() as client:
        accepted = until_accepted(client, member, item, key)
        assert accepted.json()["version"] == 1
        events = client.get(f"/cart/{member}/events").json()["events"]
        assert [e["seqNr"] for e in events] == [1]  # once, whatever happened while Cassandra was away


def test_while_kafka_does_not_answer_commands_get_503(isolated: System) -> None:
    isolated.start_worker()
    member, item, key = str(uuid.uuid4()), a_pear(), f"k-{uuid.uuid4()}"
    with isolated.client() as client:
        with paused("kafka"):
            # The client's own timeout (30 s) is far above the API's command timeout (4 s): a hang fails here.
            refused = client.post(f"/cart/{member}", json=item, headers={"Idempotency-Key": key})
            ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["kafka"] is not True, ready.text
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "ServiceUnavailable"
        accepted = until_accepted(client, member, item, key)
        assert [e["seqNr"] for e in client.get(f"/cart/{member}/events").json()["events"]] == [1]
        assert accepted.json()["items"][0]["productId"] == item["productId"]


def test_while_postgresql_is_down_ready_names_it_and_commands_go_on(isolated_stores: System) -> None:
    """PostgreSQL serves one read model: /ready says it is away but stays 200, carts keep working, and both the
    check and the PostgreSQL read model come back by themselves when it returns. (Its own database: PostgreSQL's
    positions are per partition number, and another system's topics have the same numbers.)"""
    from app.tools.services import Postgres

    isolated = isolated_stores
    isolated.start_worker()
    member, item, key = str(uuid.uuid4()), a_pear(), f"k-{uuid.uuid4()}"
    postgres = Postgres(get_settings())
    with isolated.client() as client:
        assert client.get("/ready").json()["postgres"] is True
        postgres.down()
        try:
            ready = client.get("/ready")
            assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text
            assert "not reachable" in ready.json()["postgres"], ready.text
            assert until_accepted(client, member, item, key).json()["version"] == 1
            billing = client.get(f"/vendor-billing/{item['vendorId']}/2026?source=postgres")
            assert billing.status_code == 503 and billing.json()["reason"], billing.text
        finally:
            postgres.up()
        deadline = time.monotonic() + 60
        while client.get("/ready").json()["postgres"] is not True:
            assert time.monotonic() < deadline, "the PostgreSQL check did not come back within 60 s"
            time.sleep(1)
        checkout = client.post(f"/cart/{member}/checkout", headers={"Idempotency-Key": f"c-{uuid.uuid4()}"})
        assert checkout.status_code == 200, checkout.text
        year, position = checkout.json()["purchasedAt"][:4], checkout.json()["events"][-1]["position"]
        after = f"after={position['partition']}:{position['offset']}&waitMs=10000"
        seen = client.get(f"/vendor-billing/{item['vendorId']}/{year}?source=postgres&{after}")
        assert seen.status_code == 200, seen.text
        assert seen.json()["projection"]["caughtUp"] is True, seen.text
