"""Ids derived from names, exactly as the original Scala system derived them.

The original's REPL (calvinlfer/es-cqrs-shopping-cart,
`shopping-cart-command/src/main/scala/com/experiments/shopping/cart/Repl.scala`) did:

- member id  = `UUID.nameUUIDFromBytes(userName.getBytes())`
- product id = `UUID.nameUUIDFromBytes(itemName.getBytes())`
- vendor id  = the product id (`VendorId(uuidFromItem)`: the same UUID as the product)
- price 1.0 and quantity 1 for every `add`

`getBytes()` used the platform charset, which is UTF-8 on every JVM since Java 18 (JEP 400) and on any UTF-8
locale before; we always use UTF-8 so the ids do not depend on where the shell runs.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from uuid import UUID

DEFAULT_PRICE = Decimal("1.00")
"""The unit price the original's `add` gave every item (`1.0`)."""

DEFAULT_QUANTITY = 1
"""The quantity the original's `add` gave every item."""


def name_uuid(name: str) -> UUID:
    """Java's `UUID.nameUUIDFromBytes(name.getBytes("UTF-8"))`: a version-3 UUID without a namespace.

    The MD5 digest of the UTF-8 bytes of `name`, with the version set to 3 (byte 6: `& 0x0f | 0x30`) and the
    IETF variant (byte 8: `& 0x3f | 0x80`). Unlike `uuid.uuid3`, no namespace is prepended, so
    `name_uuid("calvin")` is `e6e66b89-81c1-330d-9650-da159e79539a`, the id the original gave member calvin.
    """
    digest = bytearray(hashlib.md5(name.encode("utf-8"), usedforsecurity=False).digest())
    digest[6] = digest[6] & 0x0F | 0x30
    digest[8] = digest[8] & 0x3F | 0x80
    return UUID(bytes=bytes(digest))


def member_id(name: str) -> UUID:
    """The member's id, from the friendly name given to `change-member`."""
    return name_uuid(name)


def product_id(item_name: str) -> UUID:
    """The product's id, from the item's name."""
    return name_uuid(item_name)


def vendor_id(item_name: str) -> UUID:
    """The vendor's id: the original used the product's id (`VendorId(uuidFromItem)`): each item is its own vendor."""
    return name_uuid(item_name)
