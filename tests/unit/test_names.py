"""`name_uuid` is Java's `UUID.nameUUIDFromBytes(name.getBytes(UTF_8))`, so names give the original's ids.

The expected values were printed by Java 17 (`UUID.nameUUIDFromBytes(n.getBytes(StandardCharsets.UTF_8))`);
the MD5 column re-derives them from the algorithm, so a wrong constant here cannot hide a wrong implementation.
"""

from __future__ import annotations

import hashlib
import uuid
from uuid import UUID

import pytest

from app.tools.names import DEFAULT_PRICE, DEFAULT_QUANTITY, member_id, name_uuid, product_id, vendor_id

FROM_JAVA = {
    "calvin": "e6e66b89-81c1-330d-9650-da159e79539a",
    "apple": "1f3870be-274f-3c49-b3e3-1a0c6728957f",
    "orange": "fe01d67a-002d-3a0f-bac0-84298142eccd",
    "": "d41d8cd9-8f00-3204-a980-0998ecf8427e",
    "green apple": "fdff729a-d710-3cba-a172-ed20562f601e",
    "café": "07117fe4-a1eb-3544-965d-c19573183da2",
    "日本語": "00110af8-b439-3ef3-b72c-50be5b332bec",
    "🛒 cart": "73d5474e-06c2-3128-bc7b-a7a93a9f145a",
}


@pytest.mark.parametrize(("name", "expected"), FROM_JAVA.items())
def test_matches_java_name_uuid_from_bytes(name: str, expected: str) -> None:
    assert name_uuid(name) == UUID(expected)
    assert str(name_uuid(name)) == expected


@pytest.mark.parametrize("name", [*FROM_JAVA, "x" * 1000, "a\nb", "\x00"])
def test_is_md5_of_the_utf8_bytes_with_version_3_and_ietf_variant(name: str) -> None:
    digest = hashlib.md5(name.encode("utf-8")).digest()
    got = name_uuid(name)
    # Only the version nibble and the two variant bits differ from the digest.
    assert got.bytes[:6] == digest[:6]
    assert got.bytes[6] == (digest[6] & 0x0F) | 0x30
    assert got.bytes[7] == digest[7]
    assert got.bytes[8] == (digest[8] & 0x3F) | 0x80
    assert got.bytes[9:] == digest[9:]
    assert got.version == 3
    assert got.variant == uuid.RFC_4122  # variant bits 10xx
    assert str(got)[14] == "3"
    assert str(got)[19] in "89ab"


def test_the_md5_of_the_empty_name_is_the_well_known_one() -> None:
    # MD5("") = d41d8cd98f00b204e9800998ecf8427e: byte 6 b2 -> 32 and byte 8 e9 -> a9.
    assert name_uuid("") == UUID("d41d8cd9-8f00-3204-a980-0998ecf8427e")


def test_is_not_python_uuid3_which_prepends_a_namespace() -> None:
    for namespace in (uuid.NAMESPACE_DNS, uuid.NAMESPACE_URL, uuid.NAMESPACE_OID, uuid.NAMESPACE_X500):
        assert name_uuid("calvin") != uuid.uuid3(namespace, "calvin")


def test_unicode_names_use_utf8_not_another_encoding() -> None:
    assert name_uuid("café") == UUID(bytes=_java("café".encode()))
    assert name_uuid("café") != UUID(bytes=_java("café".encode("latin-1")))
    # Composed and decomposed forms are different bytes, so different ids (as in Java): no normalisation.
    assert name_uuid("caf\u00e9") != name_uuid("cafe\u0301")


def test_names_are_case_and_space_sensitive() -> None:
    assert name_uuid("Orange") != name_uuid("orange")
    assert name_uuid("orange ") != name_uuid("orange")


def test_ids_as_the_original_repl_derived_them() -> None:
    assert member_id("calvin") == UUID(FROM_JAVA["calvin"])
    assert product_id("orange") == UUID(FROM_JAVA["orange"])
    # The original gave an item's vendor the item's own id: VendorId(uuidFromItem).
    assert vendor_id("orange") == product_id("orange")
    assert str(DEFAULT_PRICE) == "1.00"
    assert DEFAULT_QUANTITY == 1


def _java(data: bytes) -> bytes:
    """An independent transcription of java.util.UUID.nameUUIDFromBytes."""
    md5 = bytearray(hashlib.md5(data).digest())
    md5[6] &= 0x0F
    md5[6] |= 0x30
    md5[8] &= 0x3F
    md5[8] |= 0x80
    return bytes(md5)
