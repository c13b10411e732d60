"""Test-wide set-up: every test run uses its own topics, keyspace, database and ports, so a `make run` on the
same machine is never disturbed and never disturbs the tests. Ids are random per test (no teardown needed)."""

from __future__ import annotations

import os
import tempfile

# Set before anything reads Settings (they are read lazily, on first use).
TEST_ENV = {
    "CART_APP_ID": "cart-test",
    "CART_TOPIC_COMMANDS": "test-cart-commands",
    "CART_TOPIC_EVENTS": "test-cart-events",
    "CART_TOPIC_REPLIES": "test-cart-replies",
    "CART_TOPIC_ITEM_PURCHASED": "test-item-purchased",
    "CART_TOPIC_POPULAR_ITEMS_UPDATES": "test-popular-items-updates",
    "CART_TOPIC_VENDOR_BILLING_UPDATES": "test-vendor-billing-updates",
    "CART_PARTITIONS": "4",
    "CART_CASSANDRA_KEYSPACE": "shopping_cart_test",
    "CART_POSTGRES_DATABASE": "shopping_cart_test",
    "CART_API_PORT": "19001",
    "CART_WORKER_WEB_PORT": "16066",
}
for key, value in TEST_ENV.items():
    os.environ[key] = value
os.environ.setdefault("CART_TEST_RUN_DIR", tempfile.mkdtemp(prefix="cart-test-"))
