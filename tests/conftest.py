"""Test-wide set-up: every test run uses its own topics, keyspace, database and ports, so a `make run` on the
same machine is never disturbed and never disturbs the tests. Ids are random per test (no teardown needed).

`CART_TEST_NAMESPACE=n` (a small number) gives a run names and ports of its own, so two test runs can share the
services at the same time (e.g. two checkouts on one machine)."""

from __future__ import annotations

import os
import tempfile

_namespace = os.environ.get("CART_TEST_NAMESPACE", "")
_tag = f"-{_namespace}" if _namespace else ""
_offset = int(_namespace) * 10 if _namespace.isdigit() else 0

# Set before anything reads Settings (they are read lazily, on first use).
TEST_ENV = {
    "CART_APP_ID": f"cart-test{_tag}",
    "CART_TOPIC_COMMANDS": f"test{_tag}-cart-commands",
    "CART_TOPIC_EVENTS": f"test{_tag}-cart-events",
    "CART_TOPIC_REPLIES": f"test{_tag}-cart-replies",
    "CART_TOPIC_ITEM_PURCHASED": f"test{_tag}-item-purchased",
    "CART_TOPIC_POPULAR_ITEMS_UPDATES": f"test{_tag}-popular-items-updates",
    "CART_TOPIC_VENDOR_BILLING_UPDATES": f"test{_tag}-vendor-billing-updates",
    "CART_PARTITIONS": "4",
    "CART_CASSANDRA_KEYSPACE": f"shopping_cart_test{_tag.replace('-', '_')}",
    "CART_POSTGRES_DATABASE": f"shopping_cart_test{_tag.replace('-', '_')}",
    "CART_API_PORT": str(19001 + _offset),
    # The API checks tokens signed with this (app/api/auth.py); the tests sign theirs with it too.
    "CART_AUTH_SECRET": os.environ.get("CART_TEST_AUTH_SECRET", "test-secret-" + os.urandom(16).hex()),
    "CART_WORKER_WEB_PORT": str(16066 + _offset),
}
for key, value in TEST_ENV.items():
    os.environ[key] = value
os.environ.setdefault("CART_TEST_RUN_DIR", tempfile.mkdtemp(prefix="cart-test-"))
