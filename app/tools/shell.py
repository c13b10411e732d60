"""`cart shell`: the original's REPL, talking to the HTTP API.

    change-member NAME | current-member | add ITEM [PRICE] [QUANTITY] | remove ITEM | adjust ITEM [N]
    list | checkout | help | exit

Member and product ids come from names exactly as the original derived them (`app.tools.names`), so `change-member
calvin` shops in the same cart the original's `change-member calvin` did. Every command that changes the cart
sends a fresh Idempotency-Key. Every failure is one line on stderr, never a traceback.

On a terminal the shell has a prompt, history and tab completion (readline). With commands piped to stdin, one per
line, it prints only what the commands print and exits 0 when every command succeeded, 1 when any failed.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import re
import shlex
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO, TypeAlias
from uuid import UUID

import httpx

from app.api.models import MAX_NAME_LENGTH, MAX_PRICE
from app.cart.rules import MAX_QUANTITY
from app.tools.names import DEFAULT_PRICE, DEFAULT_QUANTITY, member_id, product_id, vendor_id

CENT = Decimal("0.01")
TIMEOUT_S = 30.0  # above the API's own command timeout (10 s), so the API's 503 arrives before ours

HELP = f"""\
commands:
  change-member NAME           shop as NAME (the member id comes from the name, as in the original)
  current-member               who is shopping, and their member id
  add ITEM [PRICE] [QUANTITY]  put ITEM in the cart (price {DEFAULT_PRICE} and quantity {DEFAULT_QUANTITY} unless given)
  remove ITEM                  take ITEM out of the cart
  adjust ITEM [N]              change ITEM's quantity by N (negative decreases; 1 unless given)
  list                         the cart and its total
  checkout                     buy everything in the cart
  help                         this list
  exit                         leave (Ctrl-D too)
quote names with spaces: add "green apple" 0.80 6"""

USAGE = {
    "change-member": "change-member NAME",
    "current-member": "current-member",
    "add": "add ITEM [PRICE] [QUANTITY]",
    "remove": "remove ITEM",
    "adjust": "adjust ITEM [N]",
    "list": "list",
    "checkout": "checkout",
    "help": "help",
    "exit": "exit",
}
COMMAND_NAMES = tuple(USAGE)
ITEM_COMMANDS = frozenset({"add", "remove", "adjust"})

CHOOSE_MEMBER = "choose a member first: change-member NAME"
ADJUST_NEEDS_NUMBER = "adjust needs a whole number, e.g. adjust orange -2"

WHOLE_NUMBER = re.compile(r"^[+-]?[0-9]+$")


class ShellError(Exception):
    """A command failed; the message is the one line to show."""


# --- Commands: what a line asks for. ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeMember:
    name: str


@dataclass(frozen=True)
class CurrentMember:
    pass


@dataclass(frozen=True)
class Add:
    item: str
    price: Decimal = DEFAULT_PRICE
    quantity: int = DEFAULT_QUANTITY


@dataclass(frozen=True)
class Remove:
    item: str


@dataclass(frozen=True)
class Adjust:
    item: str
    delta: int = 1  # the original's `adjust ITEM` without a number adjusted by 1


@dataclass(frozen=True)
class ListCart:
    pass


@dataclass(frozen=True)
class CheckoutCart:
    pass


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Exit:
    pass


ShellCommand: TypeAlias = ChangeMember | CurrentMember | Add | Remove | Adjust | ListCart | CheckoutCart | Help | Exit


def parse(line: str) -> ShellCommand | None:
    """The command on `line`; None for a blank line or a `#` comment. Raises ShellError with the one-line reason."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    try:
        words = shlex.split(line)
    except ValueError as error:  # an unclosed quote or a trailing backslash
        raise ShellError(f"cannot read that line: {str(error).lower()}") from None
    if not words:
        return None
    name, args = words[0].lower(), words[1:]
    match name:
        case "change-member":
            _arity(name, args, 1, 1)
            return ChangeMember(_name(args[0], "member"))
        case "add":
            _arity(name, args, 1, 3)
            price = _price(args[1]) if len(args) > 1 else DEFAULT_PRICE
            quantity = _quantity(args[2]) if len(args) > 2 else DEFAULT_QUANTITY
            return Add(_name(args[0], "item"), price, quantity)
        case "remove":
            _arity(name, args, 1, 1)
            return Remove(_name(args[0], "item"))
        case "adjust":
            _arity(name, args, 1, 2)
            return Adjust(_name(args[0], "item"), _delta(args[1]) if len(args) > 1 else 1)
        case "current-member" | "list" | "checkout" | "help" | "exit" | "quit":
            _arity(name, args, 0, 0)
            simple: dict[str, ShellCommand] = {
                "current-member": CurrentMember(),
                "list": ListCart(),
                "checkout": CheckoutCart(),
                "help": Help(),
                "exit": Exit(),
                "quit": Exit(),
            }
            return simple[name]
        case _:
            raise ShellError(f"unknown command '{words[0]}'; type help")


def _arity(name: str, args: Sequence[str], least: int, most: int) -> None:
    if least <= len(args) <= most:
        return
    hint = " (quote names with spaces)" if len(args) > most and most > 0 else ""
    raise ShellError(f"usage: {USAGE[name]}{hint}")


def _name(text: str, what: str) -> str:
    name = text.strip()  # the API strips names too; the id must come from the name it keeps
    if not name:
        raise ShellError(f"the {what} name must not be blank")
    if len(name) > MAX_NAME_LENGTH:
        raise ShellError(f"the {what} name must be at most {MAX_NAME_LENGTH} characters")
    return name


def _price(text: str) -> Decimal:
    message = f"price must be a number like 2.50, not '{text}'"
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ShellError(message) from None
    if not price.is_finite():
        raise ShellError(message)
    if price < 0:
        raise ShellError("price must not be negative")
    if price > MAX_PRICE:
        raise ShellError(f"price must be at most {MAX_PRICE}")
    if price != price.quantize(CENT):
        raise ShellError("price must have at most 2 decimal places")
    return price.quantize(CENT)


def _quantity(text: str) -> int:
    if not WHOLE_NUMBER.match(text) or not 1 <= int(text) <= MAX_QUANTITY:
        raise ShellError(f"quantity must be a whole number from 1 to {MAX_QUANTITY}, e.g. add apple 2.50 3")
    return int(text)


def _delta(text: str) -> int:
    if not WHOLE_NUMBER.match(text):
        raise ShellError(ADJUST_NEEDS_NUMBER)
    delta = int(text)
    if delta == 0:
        raise ShellError("adjust needs a whole number other than 0, e.g. adjust orange -2")
    if abs(delta) > MAX_QUANTITY:
        raise ShellError(f"adjust by at most {MAX_QUANTITY} either way")
    return delta


# --- Formatting: what a person sees. ----------------------------------------------------------------------


def money(value: object) -> str:
    """A price or total from the API ("2.5", "10", "3.00") as an amount with cents ("2.50", "10.00", "3.00")."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not amount.is_finite():
        return str(value)
    exponent = amount.as_tuple().exponent
    return str(amount.quantize(CENT)) if isinstance(exponent, int) and exponent >= -2 else str(amount)


def possessive(name: str) -> str:
    return f"{name}'s"


def items_table(items: Sequence[Mapping[str, Any]], total: object) -> list[str]:
    """A table of the items (name, quantity, unit price, subtotal) and a last line with the total."""
    header = ("item", "qty", "unit price", "subtotal")
    rows = []
    for item in items:
        price = Decimal(str(item.get("price", "0")))
        quantity = int(item.get("quantity", 0))
        rows.append((str(item.get("name", "?")), str(quantity), money(price), money(price * quantity)))
    total_row = ("total", "", "", money(total))
    widths = [max(len(row[i]) for row in (header, *rows, total_row)) for i in range(4)]

    def line(row: tuple[str, str, str, str]) -> str:
        name, *numbers = row
        cells = [name.ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(numbers, widths[1:], strict=True)]
        return "  ".join(cells).rstrip()

    return [line(header), *(line(row) for row in rows), line(total_row)]


def format_cart(member: str, cart: Mapping[str, Any]) -> str:
    items = cart.get("items") or []
    if not items:
        return f"{possessive(member)} cart is empty"
    count = sum(int(i.get("quantity", 0)) for i in items)
    lines = [f"{possessive(member)} cart ({count} {'item' if count == 1 else 'items'}):"]
    return "\n".join([*lines, *items_table(items, cart.get("total", "0"))])


def format_checkout(member: str, purchase: Mapping[str, Any]) -> str:
    items = purchase.get("items") or []
    when = f" at {purchase['purchasedAt']}" if purchase.get("purchasedAt") else ""
    lines = [f"{member} bought{when}:", *items_table(items, purchase.get("total", "0"))]
    return "\n".join(lines)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe_refusal(status: int, body: Mapping[str, Any], member: str, item: str | None) -> str:
    """The one line to show for an API answer other than 200; `item` is the item the command named, if any."""
    error = body.get("error")
    reason = one_line(str(body.get("reason") or ""))
    what = item if item is not None else "the item"
    if status == 409:
        match error:
            case "ItemNotInCart":
                return f"{possessive(member)} cart has no {what}"
            case "ItemAlreadyInCart":
                return f"{what} is already in {possessive(member)} cart (use adjust)"
            case "NegativeQuantity":
                quantity, delta = body.get("quantity"), body.get("delta")
                if isinstance(quantity, int) and isinstance(delta, int) and quantity > 0:
                    return (
                        f"{what} has quantity {quantity} in {possessive(member)} cart; adjusting by {delta} would "
                        f"leave {quantity + delta}, but it must stay at least 1 (use remove {_quoted(what)})"
                    )
                return f"the quantity of {what} must stay at least 1"
            case "EmptyCartCheckout":
                return f"{possessive(member)} cart is empty"
            case "QuantityLimitExceeded":
                return (
                    f"{what} would have quantity {body.get('quantity')} in {possessive(member)} cart, "
                    f"more than the limit of {body.get('limit')}"
                )
            case "CartFull":
                return f"{possessive(member)} cart already holds the maximum of {body.get('limit')} different items"
    if status == 503:
        return reason or "the cart service is unavailable right now; try again"
    if reason:
        return reason
    return f"the cart API answered {status}"


def _quoted(name: str) -> str:
    return shlex.quote(name)


def unreachable(base_url: str) -> str:
    return f"cannot reach the cart API at {base_url}; start it with 'make run' (or 'cart run')"


def completions(line: str, text: str, known_items: Iterable[str]) -> list[str]:
    """Tab completions for the word `text` being typed at the end of `line`: command names first, then items."""
    before = line[: len(line) - len(text)] if line.endswith(text) else line
    words = before.split()
    if not words:
        return [name + " " for name in COMMAND_NAMES if name.startswith(text)]
    if len(words) == 1 and words[0].lower() in ITEM_COMMANDS:
        return sorted(shlex.quote(name) + " " for name in set(known_items) if name.startswith(text))
    return []


# --- The API. ---------------------------------------------------------------------------------------------


class Refused(Exception):
    """The API answered with a status other than 200."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def member_tokens() -> Callable[[UUID], str] | None:
    """A token per member, made with the local signing key (app/api/auth.py), or None when auth is off."""
    from app.api.auth import ensure_signing_key, mint
    from app.settings import get_settings

    settings = get_settings()
    if settings.auth == "off":
        return None
    if settings.auth_secret is None:
        ensure_signing_key(settings)
    made: dict[UUID, str] = {}

    def token_for(member: UUID) -> str:
        if member not in made:
            made[member] = mint(settings, str(member), [], ttl_s=12 * 3600)
        return made[member]

    return token_for


class CartApi:
    """The cart routes of the HTTP API; raises ShellError when the API cannot be reached, Refused for a non-200."""

    def __init__(
        self,
        base_url: str,
        transport: httpx.BaseTransport | None = None,
        token_for: Callable[[UUID], str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, timeout=TIMEOUT_S, transport=transport)
        self.token_for = token_for  # the member's bearer token (the shell makes one per member it acts for)

    def close(self) -> None:
        self.client.close()

    def get_cart(self, member: UUID) -> dict[str, Any]:
        return self._call("GET", f"/cart/{member}", member)

    def add(self, member: UUID, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/cart/{member}", member, json=body, changes=True)

    def remove(self, member: UUID, product: UUID) -> dict[str, Any]:
        return self._call("DELETE", f"/cart/{member}/productId/{product}", member, changes=True)

    def adjust(self, member: UUID, product: UUID, delta: int) -> dict[str, Any]:
        return self._call("PATCH", f"/cart/{member}/productId/{product}", member, json={"delta": delta}, changes=True)

    def checkout(self, member: UUID) -> dict[str, Any]:
        return self._call("POST", f"/cart/{member}/checkout", member, changes=True)

    def _call(self, method: str, path: str, member: UUID, json: Any = None, changes: bool = False) -> dict[str, Any]:
        headers = {"Idempotency-Key": str(uuid.uuid4())} if changes else {}
        if self.token_for is not None:
            headers["Authorization"] = f"Bearer {self.token_for(member)}"
        try:
            response = self.client.request(method, path, json=json, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise ShellError(unreachable(self.base_url)) from None
        except httpx.TimeoutException:
            raise ShellError(f"the cart API at {self.base_url} did not answer in time; try again") from None
        except httpx.HTTPError as error:
            raise ShellError(f"cannot talk to the cart API at {self.base_url}: {one_line(str(error))}") from None
        try:
            body = response.json()
        except ValueError:
            body = {"reason": one_line(response.text)[:200]} if response.text.strip() else {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code != 200:
            raise Refused(response.status_code, body)
        return body


# --- The shell. -------------------------------------------------------------------------------------------


class Result(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    EXIT = "exit"


@dataclass
class Member:
    name: str
    id: UUID


class Shell:
    """Runs one line at a time against `api`; `out` and `err` print one message each (a message may span lines)."""

    def __init__(self, api: CartApi, out: Callable[[str], None], err: Callable[[str], None]) -> None:
        self.api = api
        self.out = out
        self.err = err
        self.member: Member | None = None
        self.known_items: set[str] = set()

    @property
    def prompt(self) -> str:
        return f"{self.member.name}> " if self.member else "cart> "

    def execute(self, line: str) -> Result:
        """Run `line`; OK, FAILED (after printing the one-line reason) or EXIT."""
        command: ShellCommand | None = None
        try:
            command = parse(line)
            if command is None:
                return Result.OK
            if isinstance(command, Exit):
                return Result.EXIT
            self.out(self._run(command))
            return Result.OK
        except ShellError as error:
            self.err(str(error))
        except Refused as refused:
            name = self.member.name if self.member else "the member"
            item = getattr(command, "item", None)
            self.err(describe_refusal(refused.status, refused.body, name, item))
        except Exception as error:  # never a traceback: an answer we did not expect is one line too
            self.err(f"unexpected {type(error).__name__}: {one_line(str(error))}")
        return Result.FAILED

    def _run(self, command: ShellCommand) -> str:
        match command:
            case Help():
                return HELP
            case ChangeMember(name=name):
                self.member = Member(name, member_id(name))
                return f"now shopping as {name} (member {self.member.id})"
            case Exit():  # handled by execute
                return ""
            case _:
                pass
        member = self._member()
        match command:
            case CurrentMember():
                return f"{member.name} (member {member.id})"
            case Add(item=item, price=price, quantity=quantity):
                body = {
                    "productId": str(product_id(item)),
                    "vendorId": str(vendor_id(item)),
                    "name": item,
                    "price": str(price),
                    "quantity": quantity,
                }
                self._remember(self.api.add(member.id, body))
                return f"added {item} ({quantity} at {money(price)}) to {possessive(member.name)} cart"
            case Remove(item=item):
                self._remember(self.api.remove(member.id, product_id(item)))
                return f"removed {item} from {possessive(member.name)} cart"
            case Adjust(item=item, delta=delta):
                cart = self.api.adjust(member.id, product_id(item), delta)
                self._remember(cart)
                line = next((i for i in cart.get("items", []) if i.get("productId") == str(product_id(item))), None)
                now = f"; quantity now {line['quantity']}" if line else ""
                return f"adjusted {item} by {delta:+d} in {possessive(member.name)} cart{now}"
            case ListCart():
                cart = self.api.get_cart(member.id)
                self._remember(cart)
                return format_cart(member.name, cart)
            case CheckoutCart():
                return format_checkout(member.name, self.api.checkout(member.id))
        raise ShellError(f"usage: {USAGE['help']}")  # not reached: every command is handled above

    def _member(self) -> Member:
        if self.member is None:
            raise ShellError(CHOOSE_MEMBER)
        return self.member

    def _remember(self, cart: Mapping[str, Any]) -> None:
        """Item names seen in the cart, for tab completion."""
        self.known_items.update(str(i["name"]) for i in cart.get("items", []) if isinstance(i, dict) and "name" in i)


def run_lines(shell: Shell, lines: Iterable[str]) -> int:
    """Run every line until `exit` or the end; 0 when every command succeeded, 1 when any failed."""
    failed = False
    for line in lines:
        result = shell.execute(line)
        if result is Result.EXIT:
            break
        failed = failed or result is Result.FAILED
    return 1 if failed else 0


def _terminal_lines(shell: Shell, history: Path | None) -> Iterator[str]:
    """Lines typed at a terminal, with readline's history and tab completion; Ctrl-C drops the line."""
    import readline

    def complete(text: str, state: int) -> str | None:
        options = completions(readline.get_line_buffer()[: readline.get_endidx()], text, shell.known_items)
        return options[state] if state < len(options) else None

    readline.set_completer_delims(" \t\n\"'")
    readline.set_completer(complete)
    readline.parse_and_bind("bind ^I rl_complete" if "libedit" in (readline.__doc__ or "") else "tab: complete")
    if history is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(history)
    try:
        while True:
            try:
                yield input(shell.prompt)
            except KeyboardInterrupt:
                print()
            except EOFError:
                print()
                return
    finally:
        if history is not None:
            with contextlib.suppress(OSError):
                readline.set_history_length(1000)
                readline.write_history_file(history)


def default_api_url() -> str:
    from app.settings import get_settings

    s = get_settings()
    return f"http://{s.api_host}:{s.api_port}"


def _history_file() -> Path | None:
    from app.settings import get_settings

    state_dir = get_settings().state_dir
    return state_dir / "shell_history" if state_dir.is_dir() else None


def run_shell(
    api: str | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """The shell's entry point (`cart shell [--api URL]`): its exit status."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr

    def out(text: str) -> None:
        print(text, file=stdout, flush=True)

    def err(text: str) -> None:
        print(text, file=stderr, flush=True)

    try:
        base_url = api or default_api_url()
    except Exception as error:  # invalid CART_ settings
        err(f"invalid settings: {one_line(str(error))}")
        return 1
    if not re.match(r"^https?://[^/\s]+", base_url):
        err(f"--api must be an http:// or https:// URL, e.g. http://127.0.0.1:9001, not '{base_url}'")
        return 1
    try:
        token_for = member_tokens()
    except ValueError as error:  # auth on, and no key to sign with
        err(f"cannot make a token: {one_line(str(error))}")
        return 1
    try:
        cart_api = CartApi(base_url, token_for=token_for)
    except Exception as error:
        err(f"--api is not a usable URL: {one_line(str(error))}")
        return 1
    shell = Shell(cart_api, out, err)
    try:
        if stdin.isatty():
            out(f"cart shell on {cart_api.base_url}; type help, or exit to leave")
            try:
                history = _history_file()
            except Exception:
                history = None
            return run_lines(shell, _terminal_lines(shell, history))
        if hasattr(stdin, "reconfigure"):
            stdin.reconfigure(errors="replace")  # a stray byte in a piped script is a bad line, not a crash
        return run_lines(shell, (line.rstrip("\r\n") for line in stdin))
    finally:
        cart_api.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cart shell", description="The interactive cart shell.")
    parser.add_argument("--api", metavar="URL", help="the HTTP API (default: http://CART_API_HOST:CART_API_PORT)")
    args = parser.parse_args(argv)
    try:
        return run_shell(args.api)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
