"""The cart over HTTP, as a client sees it, against a real worker, Kafka and Cassandra."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

ORIGINAL_MEMBER = "9a475f59-8863-43cc-aebd-7da999c16bea"
ORIGINAL_BODY = """{
	"productId": "9054a277-9998-4bb4-be89-7d1ac45828d2",
	"vendorId": "fbea6379-b76c-478b-8f86-4f1626fb8acf",
	"name": "awesome-desktop-pc",
	"price": "3200",
	"quantity": 1
}"""


def a_member() -> str:
    return str(uuid.uuid4())


def an_item(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "productId": str(uuid.uuid4()),
        "vendorId": str(uuid.uuid4()),
        "name": "orange",
        "price": "1.25",
        "quantity": 2,
    }
    return {**item, **overrides}


def events_of(client: httpx.Client, member: str) -> list[dict[str, Any]]:
    response = client.get(f"/cart/{member}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_the_original_readme_requests_work_verbatim(client: httpx.Client) -> None:
    # The original README's member id, so first empty whatever an earlier run left in that cart.
    client.post(f"/cart/{ORIGINAL_MEMBER}/checkout")
    added = client.post(f"/cart/{ORIGINAL_MEMBER}", content=ORIGINAL_BODY, headers={"content-type": "application/json"})
    assert added.status_code == 200, added.text
    assert added.json()["items"][0]["name"] == "awesome-desktop-pc"
    assert added.json()["items"][0]["price"] == "3200"

    cart = client.get(f"/cart/{ORIGINAL_MEMBER}").json()
    assert [i["productId"] for i in cart["items"]] == ["9054a277-9998-4bb4-be89-7d1ac45828d2"]

    removed = client.delete(f"/cart/{ORIGINAL_MEMBER}/productId/9054a277-9998-4bb4-be89-7d1ac45828d2")
    assert removed.status_code == 200 and removed.json()["items"] == []

    client.post(f"/cart/{ORIGINAL_MEMBER}", content=ORIGINAL_BODY, headers={"content-type": "application/json"})
    bought = client.post(f"/cart/{ORIGINAL_MEMBER}/checkout")
    assert bought.status_code == 200, bought.text
    assert bought.json()["total"] == "3200"
    assert client.get(f"/cart/{ORIGINAL_MEMBER}").json()["items"] == []


def test_an_item_is_added_adjusted_and_read_back(client: httpx.Client) -> None:
    member, item = a_member(), an_item(price=19.99, quantity=1)  # a JSON number, as the original took it
    assert client.put(f"/cart/{member}", json=item).status_code == 200
    adjusted = client.patch(f"/cart/{member}/productId/{item['productId']}", json={"delta": 4})
    assert adjusted.status_code == 200, adjusted.text
    assert adjusted.json()["events"][0]["type"] == "ItemQuantityIncreased"
    decreased = client.patch(f"/cart/{member}/productId/{item['productId']}", json={"delta": -2})
    assert decreased.json()["events"][0]["type"] == "ItemQuantityDecreased"
    cart = client.get(f"/cart/{member}").json()
    assert cart["version"] == 3
    assert cart["items"][0]["quantity"] == 3
    assert cart["items"][0]["price"] == "19.99"
    assert cart["total"] == "59.97"


def test_checkout_buys_everything_and_the_next_item_starts_a_new_cart(client: httpx.Client) -> None:
    member = a_member()
    first, second = an_item(price="10.10", quantity=3), an_item(name="apple", price="0.05", quantity=1)
    client.post(f"/cart/{member}", json=first)
    cart_id = client.post(f"/cart/{member}", json=second).json()["cartId"]

    bought = client.post(f"/cart/{member}/checkout")
    assert bought.status_code == 200, bought.text
    body = bought.json()
    assert body["cartId"] == cart_id
    assert body["total"] == "30.35"
    assert {i["productId"] for i in body["items"]} == {first["productId"], second["productId"]}
    assert body["purchasedAt"].endswith("+00:00")
    assert [e["type"] for e in body["events"]] == ["ItemPurchased", "ItemPurchased"]

    assert client.get(f"/cart/{member}").json()["items"] == []
    again = client.post(f"/cart/{member}", json=an_item())
    assert again.json()["cartId"] not in (None, cart_id)


@pytest.mark.parametrize(
    ("request_args", "error"),
    [
        ("add-twice", "ItemAlreadyInCart"),
        ("remove-missing", "ItemNotInCart"),
        ("adjust-missing", "ItemNotInCart"),
        ("adjust-to-zero", "NegativeQuantity"),
        ("checkout-empty", "EmptyCartCheckout"),
    ],
)
def test_a_rule_violation_is_a_409_naming_the_rule(client: httpx.Client, request_args: str, error: str) -> None:
    member, item = a_member(), an_item(quantity=2)
    product = item["productId"]
    if request_args != "checkout-empty" and not request_args.endswith("missing"):
        assert client.post(f"/cart/{member}", json=item).status_code == 200
    response = {
        "add-twice": lambda: client.post(f"/cart/{member}", json=item),
        "remove-missing": lambda: client.delete(f"/cart/{member}/productId/{product}"),
        "adjust-missing": lambda: client.patch(f"/cart/{member}/productId/{product}", json={"delta": 1}),
        "adjust-to-zero": lambda: client.patch(f"/cart/{member}/productId/{product}", json={"delta": -2}),
        "checkout-empty": lambda: client.post(f"/cart/{member}/checkout"),
    }[request_args]()
    assert response.status_code == 409, response.text
    assert response.json()["error"] == error
    assert response.json()["reason"]


BAD_ITEMS = [
    ({"productId": "not-a-uuid"}, "productId"),
    ({"vendorId": 12}, "vendorId"),
    ({"quantity": 1.5}, "quantity"),
    ({"quantity": "1"}, "quantity"),
    ({"quantity": 0}, "quantity"),
    ({"quantity": -3}, "quantity"),
    ({"quantity": 10_000_000}, "quantity"),
    ({"price": "-1"}, "price"),
    ({"price": "-0"}, "price"),
    ({"price": "1.001"}, "price"),
    ({"price": "abc"}, "price"),
    ({"price": "NaN"}, "price"),
    ({"price": True}, "price"),
    ({"price": "1e400"}, "price"),
    ({"price": 19.999}, "price"),
    ({"price": " 3200"}, "price"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("change", "field"), BAD_ITEMS)
def test_a_malformed_item_is_a_422_naming_the_field_and_writes_nothing(
    client: httpx.Client, change: dict[str, Any], field: str
) -> None:
    member = a_member()
    response = client.post(f"/cart/{member}", json=an_item(**change))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "ValidationError"
    assert any(field in f["field"] for f in body["fields"]), body
    assert events_of(client, member) == []


def test_a_missing_field_is_a_422(client: httpx.Client) -> None:
    item = an_item()
    del item["price"]
    response = client.post(f"/cart/{a_member()}", json=item)
    assert response.status_code == 422
    assert any("price" in f["field"] for f in response.json()["fields"])


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/cart/not-a-member", json.dumps(an_item())),
        ("POST", "/cart/{member}", "{not json"),
        ("POST", "/cart/{member}", b'{"name": "\xff\xfe"}'),  # not UTF-8
        ("POST", "/cart/{member}", "[]"),
        ("DELETE", "/cart/{member}/productId/nope", None),
        ("PATCH", "/cart/{member}/productId/{product}", '{"delta": 0}'),
        ("PATCH", "/cart/{member}/productId/{product}", '{"delta": 1.5}'),
        ("PATCH", "/cart/{member}/productId/{product}", '{"delta": "2"}'),
        ("PATCH", "/cart/{member}/productId/{product}", "{}"),
        ("GET", "/cart/{member}/events?limit=0", None),
    ],
)
def test_malformed_requests_are_422_never_500(
    client: httpx.Client, method: str, path: str, body: str | bytes | None
) -> None:
    url = path.format(member=a_member(), product=uuid.uuid4())
    response = client.request(method, url, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["reason"]


def test_a_body_over_64_kib_is_refused_with_413(client: httpx.Client) -> None:
    response = client.post(f"/cart/{a_member()}", json=an_item(name="x" * (70 * 1024)))
    assert response.status_code == 413
    assert "64" in response.json()["reason"] or "65536" in response.json()["reason"]


def test_a_body_over_64_kib_sent_in_chunks_is_refused_with_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"productId": "' + str(uuid.uuid4()).encode() + b'", "name": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    member = a_member()
    response = client.post(f"/cart/{member}", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "PayloadTooLarge"
    assert events_of(client, member) == []


def test_an_idempotency_key_reused_for_another_command_is_a_422(client: httpx.Client) -> None:
    member, key = a_member(), {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    assert client.post(f"/cart/{member}", json=an_item(), headers=key).status_code == 200
    reused = client.post(f"/cart/{member}/checkout", headers=key)
    assert reused.status_code == 422, reused.text
    assert reused.json()["error"] == "IdempotencyKeyReused"
    assert [e["type"] for e in events_of(client, member)] == ["ItemAdded"]


def test_an_invalid_idempotency_key_is_a_422(client: httpx.Client) -> None:
    response = client.post(f"/cart/{a_member()}", json=an_item(), headers={"Idempotency-Key": "has spaces"})
    assert response.status_code == 422


def test_a_retry_with_the_same_idempotency_key_returns_the_first_reply_and_writes_nothing(client: httpx.Client) -> None:
    member, item = a_member(), an_item()
    key = {"Idempotency-Key": f"add-{uuid.uuid4()}"}
    first = client.post(f"/cart/{member}", json=item, headers=key)
    second = client.post(f"/cart/{member}", json=item, headers=key)
    assert first.status_code == second.status_code == 200
    assert second.json()["events"] == first.json()["events"]
    assert [e["seqNr"] for e in events_of(client, member)] == [1]

    # A rejected command keeps its answer too.
    bad = {"Idempotency-Key": f"remove-{uuid.uuid4()}"}
    missing = uuid.uuid4()
    assert client.delete(f"/cart/{member}/productId/{missing}", headers=bad).status_code == 409
    assert client.delete(f"/cart/{member}/productId/{missing}", headers=bad).json()["error"] == "ItemNotInCart"

    # Without a key, the same body is a new command (and here a rule violation).
    assert client.post(f"/cart/{member}", json=item).status_code == 409


def test_fifty_concurrent_adds_to_one_cart_all_land_with_gap_free_seq_nrs(client: httpx.Client) -> None:
    member = a_member()
    items = [an_item(name=f"item-{i}") for i in range(50)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(lambda item: client.post(f"/cart/{member}", json=item), items))
    assert [r.status_code for r in replies] == [200] * 50
    assert sorted(r.json()["version"] for r in replies) == list(range(1, 51))
    assert [e["seqNr"] for e in events_of(client, member)] == list(range(1, 51))
    cart = client.get(f"/cart/{member}").json()
    assert {i["productId"] for i in cart["items"]} == {i["productId"] for i in items}


def test_the_history_is_served_from_the_journal_oldest_first_in_pages(client: httpx.Client) -> None:
    member = a_member()
    for i in range(5):
        client.post(f"/cart/{member}", json=an_item(name=f"item-{i}"))
    page = client.get(f"/cart/{member}/events", params={"limit": 2}).json()
    assert [e["seqNr"] for e in page["events"]] == [1, 2] and page["nextSeqNr"] == 3
    rest = client.get(f"/cart/{member}/events", params={"fromSeqNr": 3, "limit": 10}).json()
    assert [e["seqNr"] for e in rest["events"]] == [3, 4, 5] and rest["nextSeqNr"] is None
    first = page["events"][0]
    assert first["type"] == "ItemAdded" and first["schemaVersion"] == 1
    assert {"eventId", "memberId", "cartId", "commandId", "occurredAt", "payload"} <= first.keys()


def test_operations_endpoints_answer(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["ready"] is True
    client.get(f"/cart/{a_member()}")
    assert "cart_http_requests_total" in client.get("/metrics").text
    assert client.get("/docs").status_code == 200
    assert "/cart/{memberId}/checkout" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/cart/{member}", {"GET", "POST", "PUT"}),
        ("/cart/{member}/productId/{product}", {"DELETE", "PATCH"}),
        ("/cart/{member}/checkout", {"POST"}),
    ],
)
def test_a_method_the_path_does_not_serve_is_405_naming_every_method_it_does(
    client: httpx.Client, path: str, allowed: set[str]
) -> None:
    response = client.request("OPTIONS", path.format(member=a_member(), product=uuid.uuid4()))
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
    assert response.json()["error"] == "HTTPError"
