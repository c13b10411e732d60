"""Fault drills: a whole system of its own (`cart run`, its own topics, consumer groups, keyspace and database),
hundreds of members shopping through the HTTP API as careful clients do (every command with an Idempotency-Key,
an unanswered one sent again with the same key), faults injected while they shop, and then the figures that say
whether anything was lost:

- acknowledged commands lost (must be 0): a 2xx whose events are not in the journal;
- gaps or forks in any member's journal (0): seq_nrs not exactly 1..n;
- read models against the journal (equal, to the cent): `cart verify`;
- item-purchased messages missing (0), and duplicates (counted, allowed: at least once);
- 5xx other than 503 (0);
- the longest time no command succeeded, and per fault how long until one did again.

A drill that fails names the member and the stage (`tests/tools/postmortem.py` reads a kept system further).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.settings import Settings
from tests.e2e.conftest import free_port
from tests.e2e.system import (
    RUN_DIR,
    delete_topics,
    drop_stores,
    isolated_env,
    operator_headers,
    read_topic,
    wait_answering,
)

SESSION = ("add", "add", "add", "adjust", "remove", "checkout")


@dataclass
class Shopper:
    """One member shopping sessions, one command in flight, as a careful client."""

    member: str
    step: int = 0
    products: list[str] = field(default_factory=list)
    vendors: list[str] = field(default_factory=list)
    sent: int = 0

    def next_command(self, rng: random.Random) -> tuple[str, str, dict[str, Any] | None]:
        kind = SESSION[self.step % len(SESSION)]
        base = f"/cart/{self.member}"
        if kind == "add":
            if self.step % len(SESSION) == 0:
                self.products, self.vendors = [], []
            product, vendor = str(uuid.uuid4()), f"00000000-0000-4000-8000-{rng.randrange(20):012d}"
            self.products.append(product)
            self.vendors.append(vendor)
            price = f"{rng.randint(100, 999) / 100:.2f}"
            body = {
                "productId": product,
                "vendorId": vendor,
                "name": "drill",
                "price": price,
                "quantity": rng.randint(1, 3),
            }
            return "POST", base, body
        if kind == "adjust":
            return "PATCH", f"{base}/productId/{self.products[0]}", {"delta": 1}
        if kind == "remove":
            return "DELETE", f"{base}/productId/{self.products[1]}", None
        return "POST", f"{base}/checkout", None


@dataclass
class Figures:
    answered: int = 0
    retries: int = 0
    server_errors_other_than_503: int = 0
    acknowledged: list[dict[str, Any]] = field(default_factory=list)  # the events of every 2xx
    successes: list[float] = field(default_factory=list)  # times of every 2xx
    faults: list[tuple[float, str]] = field(default_factory=list)  # (time, what)


class DrillSystem:
    """`cart run --workers N` with settings of its own, and what a drill does to it."""

    def __init__(self, tag: str, workers: int = 1) -> None:
        self.port = free_port()
        self.env = {**isolated_env(tag, self.port, own_stores=True), "CART_COMMAND_TIMEOUT_S": "5"}
        self.settings = Settings(**{k[5:].lower(): v for k, v in self.env.items() if k.startswith("CART_")})
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = RUN_DIR / f"drill-{tag}-{self.port}"
        self.log_path = RUN_DIR / f"drill-{tag}-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.extra: list[subprocess.Popen[bytes]] = []
        from app.tools.services import Postgres

        asyncio.run(Postgres(self.settings)._create_database())
        self.run = subprocess.Popen(
            [sys.executable, "-m", "app.tools.cli", "run", "--workers", str(workers)],
            env=self.process_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.wait_answering()

    def process_env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **self.env, "CART_STATE_DIR": str(self.state), **extra}

    def wait_answering(self, timeout: float = 180) -> None:
        wait_answering(self.url, timeout, then=f":\n{self.log_tail()}")

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # --- what a drill does to it ------------------------------------------------------------------------------

    def workers(self, kind: str) -> list[int]:
        """The pids of `cart run`'s workers of one kind (`cart_commands`, or the query side)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                agents = [v for v in (entry / "environ").read_bytes().split(b"\0") if v.startswith(b"CART_AGENTS=")]
            except (OSError, IndexError, ValueError):
                continue
            mine = parent == self.run.pid or int(entry.name) in {p.pid for p in self.extra}
            is_command = agents == [b"CART_AGENTS=cart_commands"]
            if mine and agents and is_command == (kind == "cart_commands"):
                found.append(int(entry.name))
        return sorted(found)

    def add_worker(self, agents: str) -> None:
        """Another worker of a kind, started by hand (as on another machine): the group's partitions move."""
        state = self.state / f"extra-{len(self.extra)}"
        self.extra.append(
            subprocess.Popen(
                [sys.executable, "-m", "app.tools.cli", "worker"],
                env=self.process_env(CART_AGENTS=agents, CART_WORKER_DIR=str(state)),
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
        )

    def verify(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.tools.cli", "verify"],
            env=self.process_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )

    def close(self) -> None:
        for p in self.extra:
            if p.poll() is None:
                p.kill()
        if self.run.poll() is None:
            self.run.send_signal(signal.SIGTERM)
            try:
                self.run.wait(90)
            except subprocess.TimeoutExpired:
                self.run.kill()
        self._log.close()
        if os.environ.get("CART_TEST_KEEP"):
            print(f"kept {self.env}")
            return
        asyncio.run(delete_topics(self.env))
        asyncio.run(drop_stores(self.env))


# --- the shoppers ---------------------------------------------------------------------------------------------


async def shop(system: DrillSystem, members: int, concurrency: int, seconds: float, figures: Figures) -> None:
    rng = random.Random(7)
    shoppers = [Shopper(str(uuid.uuid4())) for _ in range(members)]
    idle: asyncio.Queue[Shopper] = asyncio.Queue()
    for s in shoppers:
        idle.put_nowait(s)
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = operator_headers()
    async with httpx.AsyncClient(base_url=system.url, timeout=20, limits=limits, headers=headers) as client:

        async def one_client() -> None:
            while time.monotonic() < stop_at:
                shopper = await idle.get()
                await command(client, shopper, rng, figures)
                idle.put_nowait(shopper)

        await asyncio.gather(*(one_client() for _ in range(concurrency)))


async def command(client: httpx.AsyncClient, shopper: Shopper, rng: random.Random, figures: Figures) -> None:
    """Send the shopper's next command until it has an answer (the same key every time)."""
    method, path, body = shopper.next_command(rng)
    key = f"{shopper.member}-{shopper.step}"
    while True:
        try:
            response = await client.request(method, path, json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            figures.retries += 1
            await asyncio.sleep(0.2)
            continue
        if response.status_code == 503:
            figures.retries += 1
            await asyncio.sleep(0.2)
            continue
        if response.status_code >= 500:
            figures.server_errors_other_than_503 += 1
            await asyncio.sleep(0.2)
            continue
        break
    figures.answered += 1
    if response.status_code == 200:
        figures.successes.append(time.monotonic())
        figures.acknowledged += [
            {"member": shopper.member, "seqNr": e["seqNr"], "eventId": e["eventId"], "type": e["type"]}
            for e in response.json()["events"]
        ]
    shopper.step += 1


# --- after the drill: the checks --------------------------------------------------------------------------------


def settled(system: DrillSystem, timeout: float = 240) -> float:
    """Wait until every worker group has consumed everything; seconds waited."""
    from app.streams.lag import consumer_lag

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        rows = asyncio.run(consumer_lag(system.settings))
        if rows and sum(r.lag for r in rows) == 0:
            return time.monotonic() - started
        time.sleep(2)
    raise AssertionError(f"the drill's system did not settle within {timeout}s:\n{system.log_tail()}")


def journal_of(system: DrillSystem, members: set[str]) -> dict[str, list[Any]]:
    """Every member's journal, once the owners have indexed what they hold (they write the member-keyed journal
    behind their answers: app/command_side/indexer.py)."""
    from app.command_side.command_bus import everything_indexed
    from app.command_side.journal import CassandraJournal
    from app.stores.cassandra import connect_async

    async def read() -> dict[str, list[Any]]:
        cluster, session = await connect_async(system.settings, system.settings.cassandra_keyspace)
        try:
            settings = system.settings
            journal = CassandraJournal(session, settings.cassandra_keyspace, topic=settings.topic_commands)
            unindexed = await everything_indexed(settings, journal)
            assert not unindexed, f"partitions {unindexed} have answered commands nobody indexed"
            return {m: await journal.read(uuid.UUID(m)) for m in members}
        finally:
            await asyncio.to_thread(cluster.shutdown)

    return asyncio.run(read())


def longest_gap(times: list[float], start: float, end: float) -> float:
    points = sorted([start, *[t for t in times if start <= t <= end], end])
    return max((b - a for a, b in itertools.pairwise(points)), default=0.0)


def report(system: DrillSystem, figures: Figures, started: float, ended: float) -> dict[str, Any]:
    """Every figure of the drill; raises AssertionError naming what was lost, where."""
    members = {a["member"] for a in figures.acknowledged}
    journal = journal_of(system, members)
    gaps_or_forks = {m: [e.seq_nr for e in events] for m, events in journal.items()
                     if [e.seq_nr for e in events] != list(range(1, len(events) + 1))}  # fmt: skip
    stored = {(str(e.member_id), e.seq_nr, str(e.event_id)) for events in journal.values() for e in events}
    lost = [a for a in figures.acknowledged if (a["member"], a["seqNr"], a["eventId"]) not in stored]
    verify = system.verify()
    purchased = {str(e.event_id) for events in journal.values() for e in events if e.type == "ItemPurchased"}
    published = [m["eventId"] for m in read_topic(system.env["CART_TOPIC_ITEM_PURCHASED"])]
    recoveries = []
    for at, what in figures.faults:
        after = [t for t in figures.successes if t > at]
        recoveries.append((what, round(after[0] - at, 1) if after else None))
    result = {
        "commands answered": figures.answered,
        "client retries (503, lost connections)": figures.retries,
        "acknowledged commands lost": len({(a["member"], a["seqNr"]) for a in lost}),
        "members with a gap or a fork": len(gaps_or_forks),
        "read models against the journal": "equal" if verify.returncode == 0 else "DIFFERENT",
        "item-purchased missing": len(purchased - set(published)),
        "item-purchased duplicates": len(published) - len(set(published)),
        "5xx other than 503": figures.server_errors_other_than_503,
        "longest time with no command answered (s)": round(longest_gap(figures.successes, started, ended), 1),
        "time to recover after each fault (s)": recoveries,
    }
    print("\n" + "\n".join(f"  {k:<44} {v}" for k, v in result.items()))
    assert not lost, f"acknowledged but not in the journal, e.g. {lost[:3]}"
    assert not gaps_or_forks, f"gaps or forks, e.g. {list(gaps_or_forks.items())[:2]}"
    assert verify.returncode == 0, verify.stdout[-3000:]
    assert purchased <= set(published), f"never published: {sorted(purchased - set(published))[:3]}"
    assert figures.server_errors_other_than_503 == 0
    return result


def run_drill(
    system: DrillSystem,
    faults: list[tuple[float, str, Callable[[], None]]],
    members: int = 300,
    concurrency: int = 24,
    seconds: float = 60,
) -> dict[str, Any]:
    """Shop for `seconds` while each fault runs at its time (seconds from the start); then settle and check."""
    figures = Figures()
    started = time.monotonic()

    def inject() -> None:
        for at, what, action in sorted(faults, key=lambda f: f[0]):
            time.sleep(max(0.0, started + at - time.monotonic()))
            figures.faults.append((time.monotonic(), what))
            action()

    injector = threading.Thread(target=inject, daemon=True)
    injector.start()
    asyncio.run(shop(system, members, concurrency, seconds, figures))
    ended = time.monotonic()
    injector.join(120)
    settle_s = settled(system)
    result = report(system, figures, started, ended)
    result["seconds to settle after the load"] = round(settle_s, 1)
    (RUN_DIR / f"drill-{system.port}.json").write_text(json.dumps(result, default=str))
    return result
