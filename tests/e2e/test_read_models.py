"""The query side against the real pipeline: popular items and vendor billing in Cassandra and PostgreSQL, exactly
once in effect whatever is replayed or killed; item-purchased events for analytics; rebuild, verify and lag."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from aiokafka import AIOKafkaProducer

from app.settings import get_settings
from tests.e2e.system import System, cart_cli, post_until_accepted, read_topic

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "item_purchased.v1.json").read_text())


def an_item(vendor: str, product: str | None = None, price: str = "2.50", quantity: int = 1) -> dict[str, Any]:
    return {
        "productId": product or str(uuid.uuid4()),
        "vendorId": vendor,
        "name": "orange",
        "price": price,
        "quantity": quantity,
    }


def buy(client: httpx.Client, member: str, *items: dict[str, Any]) -> dict[str, Any]:
    for item in items:
        assert client.post(f"/cart/{member}", json=item).status_code == 200
    response = client.post(f"/cart/{member}/checkout")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def after(event: dict[str, Any]) -> dict[str, str]:
    position = event["position"]
    return {"after": f"{position['partition']}:{position['offset']}", "waitMs": "10000"}


def wait_for(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def test_a_checkout_lands_in_every_read_model_and_a_client_can_read_its_own_writes(client: httpx.Client) -> None:
    vendor, product, member = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    bought = buy(client, member, an_item(vendor, product, "10.05", 3), an_item(vendor, price="0.10", quantity=7))
    first = bought["events"][0]
    year, month, day = (int(x) for x in bought["purchasedAt"][:10].split("-"))

    popular = client.get(f"/popular-items/{vendor}/{product}/{year}/{month}", params=after(first))
    assert popular.status_code == 200, popular.text
    assert popular.json()["days"] == [{"day": day, "quantity": 3, "name": "orange"}]
    assert popular.json()["projection"]["caughtUp"] is True

    for source in ("cassandra", "postgres"):
        billing = client.get(
            f"/vendor-billing/{vendor}/{year}", params={**after(bought["events"][1]), "source": source}
        )
        assert billing.status_code == 200, billing.text
        assert billing.json()["projection"]["caughtUp"] is True
        assert billing.json()["months"] == [{"month": month, "balance": "30.85"}]  # 3 x 10.05 + 7 x 0.10

    top = client.get("/popular-items/top", params={"date": bought["purchasedAt"][:10], "limit": 100}).json()["items"]
    quantities = [item["quantity"] for item in top]
    assert quantities == sorted(quantities, reverse=True)
    # In the top 100 of the day, unless 100 other items bought that day (earlier runs on this machine) outrank it.
    ours = {"vendorId": vendor, "productId": product, "name": "orange", "quantity": 3}
    assert ours in top or (len(top) == 100 and quantities[-1] >= 3)


def test_every_item_purchased_reaches_the_public_topic_as_schema_valid_json(client: httpx.Client) -> None:
    vendor, member = str(uuid.uuid4()), str(uuid.uuid4())
    bought = buy(client, member, an_item(vendor, price="3200", quantity=2))
    event_id = bought["events"][0]["eventId"]
    topic = get_settings().topic_item_purchased

    messages = wait_for(lambda: [m for m in read_topic(topic) if m.get("eventId") == event_id])
    assert len(messages) >= 1  # at least once
    for message in read_topic(topic):
        jsonschema.validate(message, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert messages[0] == {
        "schemaVersion": 1,
        "eventId": event_id,
        "memberId": member,
        "cartId": bought["cartId"],
        "productId": bought["items"][0]["productId"],
        "vendorId": vendor,
        "name": "orange",
        "price": "3200",
        "quantity": 2,
        "purchasedAt": bought["purchasedAt"],
    }


def test_an_event_delivered_twice_on_cart_events_is_counted_once(client: httpx.Client) -> None:
    vendor, product, member = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    bought = buy(client, member, an_item(vendor, product, "1.00", 5))
    event = bought["events"][0]
    year, month = int(bought["purchasedAt"][:4]), int(bought["purchasedAt"][5:7])
    client.get(f"/vendor-billing/{vendor}/{year}", params=after(event))

    # Replay the very same event (same member_id and seq_nr) onto cart-events, as a redelivery would.
    replayed = {
        "event_id": event["eventId"],
        "member_id": event["memberId"],
        "cart_id": event["cartId"],
        "seq_nr": event["seqNr"],
        "command_id": event["commandId"],
        "type": event["type"],
        "schema_version": event["schemaVersion"],
        "occurred_at": event["occurredAt"],
        "payload": {
            "cart_id": event["payload"]["cartId"],
            "item": {
                "product_id": product, "vendor_id": vendor, "name": "orange", "price": "1.00", "quantity": 5,
            },
            "purchased_at": event["payload"]["purchasedAt"],
        },
    }  # fmt: skip
    partition, offset = asyncio.run(produce(get_settings().topic_events, member, replayed))
    # A later purchase by the same member on the same partition shows when the replay has been processed.
    later = buy(client, member, an_item(vendor, product, "1.00", 1))
    assert later["events"][0]["position"]["partition"] == partition
    assert later["events"][0]["position"]["offset"] > offset

    for source in ("cassandra", "postgres"):
        params = {**after(later["events"][0]), "source": source}
        billing = client.get(f"/vendor-billing/{vendor}/{year}", params=params).json()
        assert billing["months"] == [{"month": month, "balance": "6.00"}], f"{source}: {json.dumps(billing)}"
    days = client.get(f"/popular-items/{vendor}/{product}/{year}/{month}", params=after(later["events"][0])).json()
    assert sum(d["quantity"] for d in days["days"]) == 6

    # The public topic gets the purchase once: the replay is dropped before anything is published. The later
    # purchase is published after the replay was processed (same partition, in order).
    topic = get_settings().topic_item_purchased
    wait_for(lambda: [m for m in read_topic(topic) if m["eventId"] == later["events"][0]["eventId"]])
    assert [m["eventId"] for m in read_topic(topic) if m["memberId"] == member] == [
        event["eventId"],
        later["events"][0]["eventId"],
    ]


async def produce(topic: str, key: str, value: dict[str, Any]) -> tuple[int, int]:
    producer = AIOKafkaProducer(bootstrap_servers=get_settings().kafka_bootstrap, acks="all")
    await producer.start()
    try:
        metadata = await producer.send_and_wait(topic, json.dumps(value).encode(), key=key.encode())
        return int(metadata.partition), int(metadata.offset)
    finally:
        await producer.stop()


@pytest.mark.parametrize(
    "path",
    [
        "/popular-items/{vendor}/{product}/2026/13",
        "/popular-items/not-a-uuid/{product}/2026/1",
        "/popular-items/{vendor}/{product}/1969/1",
        "/vendor-billing/{vendor}/2026?source=mysql",
        "/vendor-billing/{vendor}/2026?waitMs=60000",
        "/vendor-billing/{vendor}/2026?after=x:1",
        "/popular-items/top?date=2026-02-30",
        "/popular-items/top?date=2026-02-01&limit=0",
    ],
)
def test_bad_read_parameters_are_422(client: httpx.Client, path: str) -> None:
    response = client.get(path.format(vendor=uuid.uuid4(), product=uuid.uuid4()))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "path", ["/popular-items/{vendor}/{product}/2026/1", "/vendor-billing/{vendor}/2026?source=cassandra",
             "/vendor-billing/{vendor}/2026"]
)  # fmt: skip
def test_an_unknown_vendor_or_product_is_404(client: httpx.Client, path: str) -> None:
    response = client.get(path.format(vendor=uuid.uuid4(), product=uuid.uuid4()))
    assert response.status_code == 404
    assert response.json()["error"] == "NotFound"


def test_lag_per_projection_and_partition_is_on_metrics_and_in_cart_status(client: httpx.Client) -> None:
    metrics = client.get("/metrics").text
    events = get_settings().topic_events
    assert f'cart_consumer_lag{{agents="purchases",partition="0",topic="{events}"}}' in metrics
    assert "cart_consumer_position{" in metrics
    status = cart_cli({}, "status")
    assert status.returncode == 0, status.stderr
    assert "lag" in status.stdout and events in status.stdout
    assert "read-model freshness" in status.stdout and "error" not in status.stdout
    assert "worker group cart-test: Stable, 1 worker(s)" in status.stdout
    assert f"{events} [0, 1, 2, 3]" in status.stdout  # the one worker owns every partition


def shop(
    system: System, members: int, purchases: int, done: list[str] | None = None, pause_s: float = 0.0
) -> list[str]:
    """Members buy concurrently, retrying a 503 with the same Idempotency-Key as a client should, each pausing
    `pause_s` after a checkout; the errors. Each accepted checkout's key is appended to `done` as it happens."""
    errors: list[str] = []
    done = [] if done is None else done
    vendors = [str(uuid.uuid4()) for _ in range(3)]

    def member_loop(index: int) -> None:
        member = str(uuid.uuid4())
        with system.client() as client:
            for n in range(purchases):
                item = an_item(vendors[(index + n) % 3], price=f"{index + 1}.{n:02d}", quantity=n + 1)
                for key, path, body in (
                    (f"{member}-add-{n}", f"/cart/{member}", item),
                    (f"{member}-buy-{n}", f"/cart/{member}/checkout", None),
                ):
                    outcome = post_until_accepted(client, path, body, key)
                    if isinstance(outcome, str):
                        errors.append(outcome)
                        return
                    if "buy" in key:
                        done.append(key)
                        time.sleep(pause_s)

    threads = [threading.Thread(target=member_loop, args=(i,)) for i in range(members)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return errors


def verified(system: System) -> subprocess.CompletedProcess[str]:
    return cart_cli(system.env, "verify")


def wait_until_verified(system: System, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`cart verify` until it finds no difference (the pipeline drains in the background) or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        result = verified(system)
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(2)


@pytest.mark.slow
def test_read_models_equal_the_journal_after_workers_are_killed_mid_stream(isolated_stores: System) -> None:
    system = isolated_stores
    first = system.start_worker()
    errors: list[str] = []
    checkouts: list[str] = []
    # Paced: a command takes 15-30 ms here, so unpaced the shopper could finish between two looks at it (every
    # 0.3 s) and the second kill would land after the purchases instead of in them.
    shopper = threading.Thread(
        target=lambda: errors.extend(shop(system, members=4, purchases=8, done=checkouts, pause_s=0.25))
    )
    shopper.start()
    wait_for(lambda: len(checkouts) >= 4)
    first.kill()  # SIGKILL in the middle of the purchases: nothing flushed, nothing committed
    assert 0 < len(checkouts) < 32, "the kill should land in the middle of the purchases"
    second = system.start_worker()
    wait_for(lambda: len(checkouts) >= 12)
    second.kill()  # and again, with a worker that was recovering and catching up
    assert len(checkouts) < 32
    system.start_worker()
    shopper.join(600)
    assert errors == []

    result = wait_until_verified(system)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 difference(s)" in result.stdout
    assert "4/4 members" in result.stderr  # every member's purchases were compared


@pytest.mark.slow
def test_a_damaged_read_model_is_reported_by_verify_and_repaired_by_rebuild(isolated_stores: System) -> None:
    system = isolated_stores
    worker = system.start_worker()
    assert shop(system, members=2, purchases=3) == []
    assert wait_until_verified(system).returncode == 0
    worker.stop()

    ks, db = system.env["CART_CASSANDRA_KEYSPACE"], system.env["CART_POSTGRES_DATABASE"]
    asyncio.run(damage(ks, db))
    report = verified(system)
    assert report.returncode == 1
    assert "vendor_billing_sql" in report.stdout and "popular_items" in report.stdout

    # The two damaged models (from one read of the journal), then every model.
    rebuilt = cart_cli(system.env, "rebuild", "popular_items", "vendor_billing_sql")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert rebuilt.stdout.count("rebuilt") == 2, rebuilt.stdout
    assert "members" in rebuilt.stderr  # the progress bar
    assert verified(system).returncode == 0
    everything = cart_cli(system.env, "rebuild", "all")
    assert everything.returncode == 0, everything.stdout + everything.stderr
    assert everything.stdout.count("rebuilt") == 3, everything.stdout
    repaired = verified(system)
    assert repaired.returncode == 0, repaired.stdout


async def damage(keyspace: str, database: str) -> None:
    """Lose popular items altogether and corrupt every PostgreSQL balance."""
    import asyncpg

    from app.stores.cassandra import connect_async, execute

    cluster, session = await connect_async(get_settings(), keyspace)
    try:
        await execute(session, "TRUNCATE item_quantity_by_vendor_month", timeout_s=60)
    finally:
        cluster.shutdown()
    conn = await asyncpg.connect(get_settings().postgres_dsn.rsplit("/", 1)[0] + f"/{database}")
    try:
        await conn.execute("UPDATE vendor_billing SET balance = balance + 1")
    finally:
        await conn.close()


def test_purchases_that_never_reached_cart_events_are_recovered_from_the_journal(isolated_stores: System) -> None:
    """A member's seq_nr skipping ahead on cart-events means events were never delivered (a late emission, or a
    message the consumer skipped): the projections read them from the journal instead of losing them."""
    isolated = isolated_stores  # its own database too: PostgreSQL's positions are per partition number
    lost = f"lost-{uuid.uuid4()}"
    isolated.start_worker(CART_UNEMITTED_COMMAND=lost)  # fault injection: this command's events are never emitted
    vendor, product, member = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    with isolated.client() as client:
        client.post(f"/cart/{member}", json=an_item(vendor, product, "7.00", 2)).raise_for_status()
        unemitted = client.post(f"/cart/{member}/checkout", headers={"Idempotency-Key": lost})  # seq 2: never emitted
        assert unemitted.status_code == 200, unemitted.text

        later = client.post(f"/cart/{member}", json=an_item(vendor, price="1.00", quantity=1))  # seq 3, emitted
        assert later.status_code == 200 and later.json()["version"] == 3, later.text
        bought = client.post(f"/cart/{member}/checkout").json()  # seq 4
        year, month = int(bought["purchasedAt"][:4]), int(bought["purchasedAt"][5:7])

        billing = client.get(f"/vendor-billing/{vendor}/{year}", params=after(bought["events"][0])).json()
        assert billing["months"] == [{"month": month, "balance": "15.00"}], billing  # 2 x 7.00 recovered + 1.00
        cassandra = client.get(
            f"/vendor-billing/{vendor}/{year}", params={**after(bought["events"][0]), "source": "cassandra"}
        )
        assert cassandra.json()["months"] == [{"month": month, "balance": "15.00"}], cassandra.text
        days = client.get(f"/popular-items/{vendor}/{product}/{year}/{month}", params=after(bought["events"][0])).json()
        assert sum(d["quantity"] for d in days["days"]) == 2

    # The analytics teams get the recovered purchase too, before the later one.
    lost_purchase = [e["eventId"] for e in unemitted.json()["events"] if e["type"] == "ItemPurchased"]
    later_purchase = [e["eventId"] for e in bought["events"] if e["type"] == "ItemPurchased"]
    topic = isolated.env["CART_TOPIC_ITEM_PURCHASED"]

    def published() -> list[str]:
        return [m["eventId"] for m in read_topic(topic) if m["memberId"] == member]

    wait_for(lambda: later_purchase[0] in published())
    assert published() == lost_purchase + later_purchase
