"""`cart run` as a user runs it: a command worker SIGKILLed again and again is started again and the system keeps
answering; SIGTERM to `cart run` alone stops every process it started (no orphans holding the ports)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from app.settings import get_settings
from tests.e2e.conftest import free_port
from tests.e2e.system import RUN_DIR, delete_topics, isolated_env, operator_headers, post_until_accepted, wait_answering

pytestmark = pytest.mark.slow


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().split(") ")[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def command_worker_of(supervisor: int) -> int:
    for pid in children_of(supervisor):
        try:
            if b"CART_AGENTS=cart_commands" in Path(f"/proc/{pid}/environ").read_bytes():
                return pid
        except OSError:
            continue
    raise AssertionError("no command worker among cart run's children")


def niceness_by_kind(supervisor: int) -> dict[str, set[int]]:
    """The niceness of every thread of cart run's children, by kind of child (api, command, query)."""
    found: dict[str, set[int]] = {}
    for pid in children_of(supervisor):
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        kind = (
            "command" if b"CART_AGENTS=cart_commands\0" in environ else "query" if b"CART_AGENTS=" in environ else "api"
        )
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.setdefault(kind, set()).add(int((task / "stat").read_text().rsplit(")", 1)[1].split()[16]))
    return found


def test_cart_run_restarts_a_killed_worker_and_stops_everything_on_sigterm() -> None:
    port = free_port()
    env = isolated_env("run", port)
    url = f"http://127.0.0.1:{port}"
    log = (RUN_DIR / f"cart-run-{port}.log").open("wb")
    run = subprocess.Popen(
        [sys.executable, "-m", "app.tools.cli", "run"],
        env={**os.environ, **env, "CART_STATE_DIR": str(RUN_DIR / f"run-{port}")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_answering(url)
        member, item = str(uuid.uuid4()), {"vendorId": str(uuid.uuid4()), "name": "x", "price": "1.00", "quantity": 1}
        with httpx.Client(base_url=url, timeout=30, headers=operator_headers()) as client:
            for n in range(3):
                os.kill(command_worker_of(run.pid), signal.SIGKILL)  # while the API keeps serving
                outcome = post_until_accepted(
                    client, f"/cart/{member}", {**item, "productId": str(uuid.uuid4())}, f"{member}-{n}", attempts=120
                )
                assert not isinstance(outcome, str), outcome
                assert outcome.json()["version"] == n + 1
        children = children_of(run.pid)
        assert len(children) == 3  # the API and a command and a query-side worker, all started again if need be
        # The query side yields the CPU to the commands (Settings.query_worker_nice), each of its threads.
        mine, nicer = os.getpriority(os.PRIO_PROCESS, 0), get_settings().query_worker_nice
        assert nicer > 0
        assert niceness_by_kind(run.pid) == {"api": {mine}, "command": {mine}, "query": {min(mine + nicer, 19)}}

        run.send_signal(signal.SIGTERM)
        assert run.wait(90) == 0
        for pid in children:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        text = (RUN_DIR / f"cart-run-{port}.log").read_text(errors="replace")
        assert text.count("command-worker-1 killed by SIGKILL; starting it again") == 3, text[-3000:]
    finally:
        if run.poll() is None:
            run.kill()
        log.close()
        asyncio.run(delete_topics(env))
