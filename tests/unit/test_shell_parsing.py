"""The shell's parsing, formatting and error lines, without I/O (the API is an httpx.MockTransport)."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.tools.names import name_uuid
from app.tools.shell import (
    ADJUST_NEEDS_NUMBER,
    CHOOSE_MEMBER,
    Add,
    Adjust,
    CartApi,
    ChangeMember,
    CheckoutCart,
    CurrentMember,
    Exit,
    Help,
    ListCart,
    Remove,
    Result,
    Shell,
    ShellError,
    completions,
    describe_refusal,
    format_cart,
    format_checkout,
    items_table,
    money,
    parse,
    run_lines,
    run_shell,
    unreachable,
)

# --- parsing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("change-member calvin", ChangeMember("calvin")),
        ("  change-member   calvin  ", ChangeMember("calvin")),
        ('change-member "calvin lee"', ChangeMember("calvin lee")),
        ("current-member", CurrentMember()),
        ("add orange", Add("orange", Decimal("1.00"), 1)),
        ("add apple 2.50 3", Add("apple", Decimal("2.50"), 3)),
        ("add apple 2.5", Add("apple", Decimal("2.50"), 1)),
        ("add apple 0", Add("apple", Decimal("0.00"), 1)),
        ("add 'green apple' 0.80 6", Add("green apple", Decimal("0.80"), 6)),
        ("add café", Add("café", Decimal("1.00"), 1)),
        ("remove orange", Remove("orange")),
        ("adjust orange 2", Adjust("orange", 2)),
        ("adjust orange -2", Adjust("orange", -2)),
        ("adjust orange +2", Adjust("orange", 2)),
        ("adjust orange", Adjust("orange", 1)),
        ("list", ListCart()),
        ("LIST", ListCart()),
        ("checkout", CheckoutCart()),
        ("help", Help()),
        ("exit", Exit()),
        ("quit", Exit()),
    ],
)
def test_parses_commands(line: str, command: object) -> None:
    assert parse(line) == command


@pytest.mark.parametrize("line", ["", "   ", "\t", "# a comment", "   # indented comment"])
def test_blank_lines_and_comments_are_nothing(line: str) -> None:
    assert parse(line) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x", "unknown command 'x'; type help"),
        ("buy orange", "unknown command 'buy'; type help"),
        ("adjust orange two", ADJUST_NEEDS_NUMBER),
        ("adjust orange 1.5", ADJUST_NEEDS_NUMBER),
        ("adjust orange 1_000", ADJUST_NEEDS_NUMBER),
        ("adjust orange -", ADJUST_NEEDS_NUMBER),
        ("adjust orange 0", "adjust needs a whole number other than 0, e.g. adjust orange -2"),
        ("adjust orange 10001", "adjust by at most 10000 either way"),
        ("adjust", "usage: adjust ITEM [N]"),
        ("adjust orange 1 2", "usage: adjust ITEM [N] (quote names with spaces)"),
        ("add", "usage: add ITEM [PRICE] [QUANTITY]"),
        ("add green apple", "price must be a number like 2.50, not 'apple'"),
        ("add apple cheap", "price must be a number like 2.50, not 'cheap'"),
        ("add apple NaN", "price must be a number like 2.50, not 'NaN'"),
        ("add apple inf", "price must be a number like 2.50, not 'inf'"),
        ("add apple -1", "price must not be negative"),
        ("add apple 1.005", "price must have at most 2 decimal places"),
        ("add apple 1000000001", "price must be at most 1000000000"),
        ("add apple 1 0", "quantity must be a whole number from 1 to 10000, e.g. add apple 2.50 3"),
        ("add apple 1 -3", "quantity must be a whole number from 1 to 10000, e.g. add apple 2.50 3"),
        ("add apple 1 2.5", "quantity must be a whole number from 1 to 10000, e.g. add apple 2.50 3"),
        ("add apple 1 10001", "quantity must be a whole number from 1 to 10000, e.g. add apple 2.50 3"),
        ("add a b c d", "usage: add ITEM [PRICE] [QUANTITY] (quote names with spaces)"),
        ("add '  '", "the item name must not be blank"),
        ("add " + "x" * 201, "the item name must be at most 200 characters"),
        ("remove", "usage: remove ITEM"),
        ("remove green apple", "usage: remove ITEM (quote names with spaces)"),
        ("change-member", "usage: change-member NAME"),
        ("change-member ''", "the member name must not be blank"),
        ("list everything", "usage: list"),
        ("checkout now", "usage: checkout"),
        ('add "orange', "cannot read that line: no closing quotation"),
    ],
)
def test_bad_arguments_give_one_clear_line(line: str, message: str) -> None:
    with pytest.raises(ShellError) as raised:
        parse(line)
    assert str(raised.value) == message
    assert "\n" not in str(raised.value)


# --- formatting -----------------------------------------------------------------------------------------

ORANGE = {"productId": str(name_uuid("orange")), "name": "orange", "price": "1.00", "quantity": 3}
APPLE = {"productId": str(name_uuid("apple")), "name": "apple", "price": "2.5", "quantity": 3}


@pytest.mark.parametrize(
    ("value", "shown"),
    [("1", "1.00"), ("2.5", "2.50"), ("10.50", "10.50"), (Decimal("0"), "0.00"), ("0.125", "0.125"), ("x", "x")],
)
def test_money_shows_cents(value: object, shown: str) -> None:
    assert money(value) == shown


def test_table_has_name_quantity_unit_price_subtotal_and_total() -> None:
    assert items_table([ORANGE, APPLE], "10.50") == [
        "item    qty  unit price  subtotal",
        "orange    3        1.00      3.00",
        "apple     3        2.50      7.50",
        "total                       10.50",
    ]


def test_cart_format() -> None:
    text = format_cart("calvin", {"items": [ORANGE, APPLE], "total": "10.5"})
    assert text.splitlines()[0] == "calvin's cart (6 items):"
    assert text.splitlines()[-1].split() == ["total", "10.50"]
    assert format_cart("calvin", {"items": [], "total": "0"}) == "calvin's cart is empty"


def test_checkout_format() -> None:
    text = format_checkout("calvin", {"items": [ORANGE], "total": "3.00", "purchasedAt": "2024-05-17T12:30:15+00:00"})
    assert text.splitlines()[0] == "calvin bought at 2024-05-17T12:30:15+00:00:"
    assert "orange" in text
    assert text.splitlines()[-1].split() == ["total", "3.00"]


@pytest.mark.parametrize(
    ("status", "body", "item", "message"),
    [
        (
            409,
            {"error": "ItemNotInCart", "reason": "item ... is not in the cart"},
            "orange",
            "calvin's cart has no orange",
        ),
        (409, {"error": "ItemAlreadyInCart"}, "orange", "orange is already in calvin's cart (use adjust)"),
        (
            409,
            {"error": "NegativeQuantity", "quantity": 3, "delta": -5},
            "orange",
            "orange has quantity 3 in calvin's cart; adjusting by -5 would leave -2, but it must stay at least 1 "
            "(use remove orange)",
        ),
        (409, {"error": "EmptyCartCheckout"}, None, "calvin's cart is empty"),
        (
            409,
            {"error": "QuantityLimitExceeded", "quantity": 10001, "limit": 10000},
            "orange",
            "orange would have quantity 10001 in calvin's cart, more than the limit of 10000",
        ),
        (
            409,
            {"error": "CartFull", "limit": 100},
            "kiwi",
            "calvin's cart already holds the maximum of 100 different items",
        ),
        (
            503,
            {"error": "ServiceUnavailable", "reason": "no cart worker\nanswered in 10 s"},
            None,
            "no cart worker answered in 10 s",
        ),
        (503, {}, None, "the cart service is unavailable right now; try again"),
        (422, {"error": "ValidationError", "reason": "body.price: too big"}, "orange", "body.price: too big"),
        (418, {}, None, "the cart API answered 418"),
    ],
)
def test_refusals_are_one_line(status: int, body: dict[str, Any], item: str | None, message: str) -> None:
    assert describe_refusal(status, body, "calvin", item) == message


def test_unreachable_says_how_to_start_the_api() -> None:
    assert unreachable("http://127.0.0.1:9") == (
        "cannot reach the cart API at http://127.0.0.1:9; start it with 'make run' (or 'cart run')"
    )


def test_completions() -> None:
    assert completions("", "", []) == [
        "change-member ", "current-member ", "add ", "remove ", "adjust ", "list ", "checkout ", "help ", "exit ",
    ]  # fmt: skip
    assert completions("c", "c", []) == ["change-member ", "current-member ", "checkout "]
    assert completions("ch", "ch", []) == ["change-member ", "checkout "]
    assert completions("remove o", "o", ["orange", "apple", "onion"]) == ["onion ", "orange "]
    assert completions("adjust ", "", ["green apple"]) == ["'green apple' "]
    assert completions("list o", "o", ["orange"]) == []
    assert completions("adjust orange ", "", ["orange"]) == []


# --- the shell against a fake API (no sockets) ----------------------------------------------------------


class FakeApi:
    """Records requests; answers with the next queued (status, body)."""

    def __init__(self, *answers: tuple[int, dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body = self.answers.pop(0)
        return httpx.Response(status, json=body)


def shell_with(fake: FakeApi) -> tuple[Shell, list[str], list[str]]:
    out: list[str] = []
    err: list[str] = []
    api = CartApi("http://cart.test", transport=httpx.MockTransport(fake))
    return Shell(api, out.append, err.append), out, err


def test_commands_before_change_member_ask_for_a_member() -> None:
    fake = FakeApi()
    shell, out, err = shell_with(fake)
    for line in ["add orange", "list", "remove orange", "adjust orange 1", "checkout", "current-member"]:
        assert shell.execute(line) is Result.FAILED
    assert err == [CHOOSE_MEMBER] * 6
    assert fake.requests == []
    assert shell.execute("help") is Result.OK
    assert "change-member NAME" in out[0]


def test_add_sends_the_originals_ids_and_a_fresh_idempotency_key() -> None:
    cart = {"items": [ORANGE], "total": "1.00"}
    fake = FakeApi((200, cart), (200, cart))
    shell, out, err = shell_with(fake)
    assert shell.execute("change-member calvin") is Result.OK
    assert out == ["now shopping as calvin (member e6e66b89-81c1-330d-9650-da159e79539a)"]
    assert shell.execute("add orange") is Result.OK
    assert shell.execute("add apple 2.50 3") is Result.OK
    first, second = fake.requests
    assert first.method == "POST"
    assert first.url.path == "/cart/e6e66b89-81c1-330d-9650-da159e79539a"
    assert json.loads(first.content) == {
        "productId": "fe01d67a-002d-3a0f-bac0-84298142eccd",
        "vendorId": "fe01d67a-002d-3a0f-bac0-84298142eccd",
        "name": "orange",
        "price": "1.00",
        "quantity": 1,
    }
    assert json.loads(second.content)["price"] == "2.50"
    assert json.loads(second.content)["quantity"] == 3
    assert first.headers["Idempotency-Key"] != second.headers["Idempotency-Key"]
    assert out[1:] == ["added orange (1 at 1.00) to calvin's cart", "added apple (3 at 2.50) to calvin's cart"]
    assert err == []


def test_a_rejection_is_one_line_naming_the_member_and_item() -> None:
    fake = FakeApi((409, {"error": "ItemNotInCart", "reason": "item x is not in the cart"}))
    shell, _out, err = shell_with(fake)
    shell.execute("change-member calvin")
    assert shell.execute("remove orange") is Result.FAILED
    assert err == ["calvin's cart has no orange"]
    assert fake.requests[0].method == "DELETE"
    assert fake.requests[0].url.path.endswith("/productId/fe01d67a-002d-3a0f-bac0-84298142eccd")
    assert "Idempotency-Key" in fake.requests[0].headers


def test_list_is_a_read_without_an_idempotency_key() -> None:
    fake = FakeApi((200, {"items": [], "total": "0"}))
    shell, out, _err = shell_with(fake)
    shell.execute("change-member calvin")
    assert shell.execute("list") is Result.OK
    assert out[-1] == "calvin's cart is empty"
    assert fake.requests[0].method == "GET"
    assert "Idempotency-Key" not in fake.requests[0].headers


def test_adjust_says_the_new_quantity() -> None:
    fake = FakeApi((200, {"items": [{**ORANGE, "quantity": 3}], "total": "3.00"}))
    shell, out, _err = shell_with(fake)
    shell.execute("change-member calvin")
    assert shell.execute("adjust orange 2") is Result.OK
    assert json.loads(fake.requests[0].content) == {"delta": 2}
    assert out[-1] == "adjusted orange by +2 in calvin's cart; quantity now 3"


def test_an_unexpected_answer_is_one_line_not_a_traceback() -> None:
    def broken(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"name": "orange", "price": "not money", "quantity": 1}]})

    out: list[str] = []
    err: list[str] = []
    shell = Shell(CartApi("http://cart.test", transport=httpx.MockTransport(broken)), out.append, err.append)
    shell.execute("change-member calvin")
    assert shell.execute("list") is Result.FAILED
    assert len(err) == 1
    assert err[0].startswith("unexpected ")


def test_run_lines_stops_at_exit_and_reports_any_failure() -> None:
    fake = FakeApi()
    shell, _out, _err = shell_with(fake)
    assert run_lines(shell, ["help", "exit", "bogus"]) == 0
    assert run_lines(shell, ["bogus", "help"]) == 1
    assert run_lines(shell, ["help", ""]) == 0


def test_run_shell_refuses_a_url_that_is_not_http() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run_shell("nope", stdin=io.StringIO("list\n"), stdout=stdout, stderr=stderr)
    assert code == 1
    assert stdout.getvalue() == ""
    assert stderr.getvalue() == ("--api must be an http:// or https:// URL, e.g. http://127.0.0.1:9001, not 'nope'\n")


def test_run_shell_with_piped_commands_prints_no_prompt() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run_shell("http://cart.test", stdin=io.StringIO("help\nchange-member calvin\nexit\n"), stdout=stdout,
                     stderr=stderr)  # fmt: skip
    assert code == 0
    assert stderr.getvalue() == ""
    assert "cart>" not in stdout.getvalue()
    assert stdout.getvalue().splitlines()[-1] == "now shopping as calvin (member e6e66b89-81c1-330d-9650-da159e79539a)"
