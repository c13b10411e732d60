"""The OpenAPI document in the repository is the one the API serves, and says what the server enforces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.api.main import openapi_document
from app.api.models import AddItemBody, AdjustQuantityBody
from app.cart.rules import MAX_QUANTITY

DOCUMENT = Path(__file__).parents[2] / "docs" / "openapi.json"


@pytest.fixture(scope="module")
def served() -> dict[str, Any]:
    return openapi_document()


def test_the_file_in_the_repository_is_the_served_document(served: dict[str, Any]) -> None:
    kept = json.loads(DOCUMENT.read_text())
    assert kept == served, "docs/openapi.json is stale: run `cart openapi --write` (make openapi) and commit it"


def test_every_operation_documents_a_response_schema_and_its_errors(served: dict[str, Any]) -> None:
    for path, operations in served["paths"].items():
        for method, operation in operations.items():
            ok = operation["responses"]["200"]["content"]
            schema = next(iter(ok.values()))["schema"]
            assert schema, f"{method} {path}: no response schema"
            assert "429" in operation["responses"], f"{method} {path}: rate limits answer every route"
            assert "408" in operation["responses"], f"{method} {path}: so does the read deadline"
            if path.startswith(("/cart", "/popular-items", "/vendor-billing")):
                assert {"401", "403", "422", "503"} <= set(operation["responses"]), f"{method} {path}"
                assert operation.get("security") == [{"bearer": []}], f"{method} {path}"


def test_response_models_forbid_what_they_do_not_name(served: dict[str, Any]) -> None:
    schemas = served["components"]["schemas"]
    for name in ("CartView", "CartState", "CheckoutView", "HistoryPage", "VendorBilling", "ErrorBody"):
        assert schemas[name]["additionalProperties"] is False, name


def test_rule_violations_are_an_enum_of_the_rule_names(served: dict[str, Any]) -> None:
    error = served["components"]["schemas"]["RuleViolation"]["properties"]["error"]
    assert set(error["enum"]) >= {"ItemAlreadyInCart", "ItemNotInCart", "NegativeQuantity", "EmptyCartCheckout"}


def test_the_503s_and_429s_document_retry_after(served: dict[str, Any]) -> None:
    add = served["paths"]["/cart/{memberId}"]["post"]["responses"]
    assert "Retry-After" in add["503"]["headers"]
    assert "Retry-After" in add["429"]["headers"]


def test_the_idempotency_key_and_delta_constraints_are_in_the_schema(served: dict[str, Any]) -> None:
    patch = served["paths"]["/cart/{memberId}/productId/{productId}"]["patch"]
    key = next(p for p in patch["parameters"] if p["name"] == "Idempotency-Key")
    assert key["schema"]["anyOf"][0]["pattern"] == r"^[A-Za-z0-9._:\-]{1,128}$"
    delta = served["components"]["schemas"]["AdjustQuantityBody"]["properties"]["delta"]
    assert delta["not"] == {"const": 0}
    assert (delta["minimum"], delta["maximum"]) == (-MAX_QUANTITY, MAX_QUANTITY)
    quantity = served["components"]["schemas"]["AddItemBody"]["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == (1, MAX_QUANTITY)


def test_the_original_readme_request_is_an_example(served: dict[str, Any]) -> None:
    body = served["paths"]["/cart/{memberId}"]["post"]["requestBody"]["content"]["application/json"]
    example = body["examples"]["awesome-desktop-pc"]["value"]
    assert example["name"] == "awesome-desktop-pc" and example["price"] == "3200"
    AddItemBody.model_validate(example)  # and the server takes it


@pytest.mark.parametrize(
    ("price", "taken"),
    [
        ("3200", "3200"), ("19.99", "19.99"), ("0.5", "0.50"), ("1000000000", "1000000000"),
        ("1000000000.00", "1000000000.00"), (0, "0"), (3200, "3200"), (1_000_000_000, "1000000000"),
        (3200.0, "3200"), (1e9, "1000000000"),  # JSON Schema's integers include 3200.0
        (19.99, "19.99"), (0.5, "0.50"), (999999999.99, "999999999.99"),  # numbers, taken as their cents
        (0.1 * 3, "0.30"), (57 * 0.01, "0.57"),  # float noise (0.30000000000000004) is not a fraction of a cent
    ],
)  # fmt: skip
def test_a_price_the_schema_allows_is_taken(price: object, taken: str) -> None:
    assert str(AddItemBody.model_validate({**EXAMPLE, "price": price}).price) == taken


@pytest.mark.parametrize(("given", "taken"), [(2, 2), (2.0, 2), (-1.0, -1)])
def test_a_whole_number_is_taken_as_json_schema_counts_them(given: object, taken: int) -> None:
    assert AdjustQuantityBody.model_validate({"delta": given}).delta == taken
    assert AddItemBody.model_validate({**EXAMPLE, "quantity": abs(given)}).quantity == abs(taken)  # type: ignore[arg-type]


@pytest.mark.parametrize("given", [1.5, True, "2", None, float("nan"), float("inf")])
def test_anything_but_a_whole_number_is_refused_as_a_quantity(given: object) -> None:
    with pytest.raises(ValidationError):
        AdjustQuantityBody.model_validate({"delta": given})
    with pytest.raises(ValidationError):
        AddItemBody.model_validate({**EXAMPLE, "quantity": given})


@pytest.mark.parametrize(
    "price",
    [
        *["1.001", "1.230", "1e3", " 3200", "3200\n", "-1", "1000000000.01", "1000000001", "٣"],
        *[19.999, 0.005, 999999999.991, True, -1, -0.01, 1e10, float("nan"), float("inf")],
    ],
)
def test_a_price_the_schema_refuses_is_refused(price: object) -> None:
    with pytest.raises(ValidationError):
        AddItemBody.model_validate({**EXAMPLE, "price": price})


def test_a_zero_delta_is_refused_as_the_schema_says() -> None:
    with pytest.raises(ValidationError):
        AdjustQuantityBody.model_validate({"delta": 0})


EXAMPLE = {
    "productId": "9054a277-9998-4bb4-be89-7d1ac45828d2",
    "vendorId": "fbea6379-b76c-478b-8f86-4f1626fb8acf",
    "name": "awesome-desktop-pc",
    "price": "3200",
    "quantity": 1,
}
