"""`cart shell` with commands piped to it, against the running worker and API: what a person would see."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from uuid import uuid4

import httpx

from app.settings import PROJECT_ROOT
from app.tools.names import name_uuid
from tests.e2e.system import Process


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def out_lines(self) -> list[list[str]]:
        """stdout's lines, each as its words (the table's column widths do not matter)."""
        return [line.split() for line in self.out.splitlines()]


def shell(*lines: str, api: str | None = None) -> Run:
    """Run `cart shell` (inheriting the test settings from os.environ) with `lines` on stdin."""
    command = [sys.executable, "-m", "app.tools.cli", "shell", *(["--api", api] if api else [])]
    done = subprocess.run(
        command, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=180, cwd=PROJECT_ROOT
    )
    run = Run(done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in run.out + run.err, run
    return run


def a_member() -> str:
    return f"calvin-{uuid4().hex[:6]}"


def test_a_shopping_session(system: dict[str, Process], client: httpx.Client) -> None:
    member = a_member()
    run = shell(
        f"change-member {member}",
        "current-member",
        "add orange",
        "add apple 2.50 3",
        "adjust orange 2",
        "list",
        "remove apple",
        "checkout",
        "list",
    )
    assert run.err == ""
    assert run.code == 0
    lines = run.out_lines
    member_id = name_uuid(member)
    assert lines[0] == ["now", "shopping", "as", member, "(member", f"{member_id})"]
    assert lines[1] == [member, "(member", f"{member_id})"]
    assert lines[2] == ["added", "orange", "(1", "at", "1.00)", "to", f"{member}'s", "cart"]
    assert lines[3] == ["added", "apple", "(3", "at", "2.50)", "to", f"{member}'s", "cart"]
    assert lines[4] == ["adjusted", "orange", "by", "+2", "in", f"{member}'s", "cart;", "quantity", "now", "3"]
    # list: both items with quantities, unit prices, subtotals and the total.
    assert lines[5] == [f"{member}'s", "cart", "(6", "items):"]
    assert lines[6] == ["item", "qty", "unit", "price", "subtotal"]
    assert lines[7] == ["orange", "3", "1.00", "3.00"]
    assert lines[8] == ["apple", "3", "2.50", "7.50"]
    assert lines[9] == ["total", "10.50"]
    assert lines[10] == ["removed", "apple", "from", f"{member}'s", "cart"]
    # checkout: what was bought and the total.
    assert lines[11][:3] == [member, "bought", "at"]
    assert lines[12] == ["item", "qty", "unit", "price", "subtotal"]
    assert lines[13] == ["orange", "3", "1.00", "3.00"]
    assert lines[14] == ["total", "3.00"]
    # and the cart is empty afterwards.
    assert lines[15] == [f"{member}'s", "cart", "is", "empty"]
    assert len(lines) == 16

    # The shell used the original's ids: the member's journal holds the purchase of product "orange".
    history = client.get(f"/cart/{member_id}/events").json()["events"]
    purchased = [e["payload"]["item"] for e in history if e["type"] == "ItemPurchased"]
    assert purchased == [
        {
            "productId": str(name_uuid("orange")),
            "vendorId": str(name_uuid("orange")),
            "name": "orange",
            "price": "1.00",
            "quantity": 3,
        }
    ]


def test_removing_a_missing_item_is_one_line_and_exit_1(system: dict[str, Process]) -> None:
    member = a_member()
    run = shell(f"change-member {member}", "remove orange")
    assert run.code == 1
    assert run.err == f"{member}'s cart has no orange\n"
    assert run.out_lines == [["now", "shopping", "as", member, "(member", f"{name_uuid(member)})"]]


def test_rejections_are_one_line_each_and_the_shell_carries_on(system: dict[str, Process]) -> None:
    member = a_member()
    run = shell(
        f"change-member {member}",
        "checkout",
        "add orange",
        "add orange",
        "adjust orange -1",
        "adjust kiwi 1",
        "adjust orange x",
        "frobnicate",
        "list",
    )
    assert run.code == 1
    assert run.err.splitlines() == [
        f"{member}'s cart is empty",
        f"orange is already in {member}'s cart (use adjust)",
        f"orange has quantity 1 in {member}'s cart; adjusting by -1 would leave 0, but it must stay at least 1 "
        "(use remove orange)",
        f"{member}'s cart has no kiwi",
        "adjust needs a whole number, e.g. adjust orange -2",
        "unknown command 'frobnicate'; type help",
    ]
    # The commands that succeeded still ran, and the last one shows the cart as the rejections left it.
    assert run.out_lines[-2:] == [["orange", "1", "1.00", "1.00"], ["total", "1.00"]]


def test_a_command_before_change_member_asks_for_a_member(system: dict[str, Process]) -> None:
    run = shell("add orange", "list")
    assert run.code == 1
    assert run.out == ""
    assert run.err.splitlines() == ["choose a member first: change-member NAME"] * 2


def test_piped_help_and_exit_succeed_without_prompts(system: dict[str, Process]) -> None:
    run = shell("help", "exit", "this line is never read")
    assert run.code == 0
    assert run.err == ""
    assert run.out.startswith("commands:\n")
    assert ">" not in run.out


def test_an_unreachable_api_says_how_to_start_it() -> None:
    member = a_member()
    run = shell(f"change-member {member}", "add orange", "list", api="http://127.0.0.1:9")
    assert run.code == 1
    line = "cannot reach the cart API at http://127.0.0.1:9; start it with 'make run' (or 'cart run')"
    assert run.err.splitlines() == [line, line]
