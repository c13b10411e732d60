"""The query side: how fast the projections catch up over a backlog, and how soon a checkout is readable.

Catch-up (`catch_up`) runs in a system of the bench's own (topics, consumer group, keyspace, database named after
the run; everything dropped afterwards), so the running system is not touched and its figures are not mixed in:

1. the backlog is made the way the command side makes it: member sessions decided by the cart's own rules
   (`decide_command`: add x3, adjust +1, remove, checkout), each session appended to the journal in one
   conditional batch (so the events are in the journal too, with gap-free seq_nrs), then every event produced to
   its cart-events topic as the command worker emits it (`event_message`, keyed by member id), members
   interleaved, each member's events in seq_nr order;
2. `workers` worker processes with only the query-side agents are started (one by default; more share the
   partitions, as the query side scales out), and events/s are measured from the moment the first is ready (the
   others join meanwhile: their start and the rebalances are in the figure) until the lag is 0 on every topic
   they read, read every half second (the lag moves with the agents' commits, a second apart, so the end
   is seen up to a second late).

Read delay (`read_delay`), against the running system at a steady load: after each checkout's reply, a read of
the vendor's billing with `after=<the purchase's position>&waitMs=10000`: the time until the purchase is in the
read model, as a client sees it (including the read API's 100 ms polling step). After the load, how long until
the running system's lag is back to 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from app.cart.member_cart import Accepted, MemberCart, decide_command
from app.cart.rules import AddItem, AdjustQuantity, Checkout, Command, Item, RemoveItem
from app.cart.stored_event import StoredEvent
from app.command_side.handler import now_utc
from app.command_side.journal import CassandraJournal, MemberAppend
from app.runtime import Runtime
from app.settings import Settings
from app.streams.kafka_clients import kafka_options
from app.streams.lag import LagClients, consumer_lag
from app.tools.bench.cpu import CpuMeter, find_system
from app.tools.bench.stats import latency_summary
from app.tools.bench.workload import (
    CartClient,
    Member,
    Outcome,
    PhaseResult,
    member_pool,
    open_loop,
    price,
    stagger,
)
from app.tools.progress import Progress
from schemas.records import event_message

QUERY_AGENTS = "purchases,popular_items,vendor_billing,vendor_billing_sql"
EVENTS_PER_SESSION = 7  # 3 ItemAdded, ItemQuantityIncreased, ItemRemoved, 2 ItemPurchased
MAX_SEED_MEMBERS = 2000
LAG_EVERY_S = 0.5  # how often the catch-up reads the lag (with clients kept open: `LagClients`)


@dataclass(frozen=True)
class OwnSystem:
    """Names of a system of the bench's own, as CART_ settings (for the worker) and as Settings (for the bench)."""

    env: dict[str, str]

    @property
    def settings(self) -> Settings:
        return Settings(**{k.removeprefix("CART_").lower(): v for k, v in self.env.items()})  # type: ignore[arg-type]


def own_system(base: Settings, tag: str) -> OwnSystem:
    store = f"bench_{tag}".replace("-", "_").lower()[:40]
    topics = ("commands", "events", "replies", "item_purchased", "popular_items_updates", "vendor_billing_updates")
    return OwnSystem(
        {
            "CART_APP_ID": f"cart-bench-{tag}",
            **{f"CART_TOPIC_{t.upper()}": f"bench-{tag}-{t.replace('_', '-')}" for t in topics},
            "CART_CASSANDRA_KEYSPACE": store,
            "CART_POSTGRES_DATABASE": store,
            "CART_PARTITIONS": str(base.partitions),
            "CART_KAFKA_BOOTSTRAP": base.kafka_bootstrap,
            "CART_CASSANDRA_HOSTS": base.cassandra_hosts,
            "CART_CASSANDRA_PORT": str(base.cassandra_port),
            "CART_POSTGRES_HOST": base.postgres_host,
            "CART_POSTGRES_PORT": str(base.postgres_port),
            "CART_AGENTS": QUERY_AGENTS,
        }
    )


# --- The backlog ------------------------------------------------------------------------------------------


def session_commands(vendors: Sequence[uuid.UUID], rng: random.Random) -> list[Command]:
    items = [
        Item(uuid.uuid4(), rng.choice(vendors), f"bench-{n}", Decimal(price(rng)), rng.randint(1, 5)) for n in range(3)
    ]
    return [
        *(AddItem(item) for item in items),
        AdjustQuantity(items[0].product_id, 1),
        RemoveItem(items[1].product_id),
        Checkout(),
    ]


def decided_session(state: MemberCart, commands: Sequence[Command], tag: str) -> tuple[MemberCart, list[StoredEvent]]:
    """The events of one session, decided by the cart's rules command by command, as the owner decides them."""
    events: list[StoredEvent] = []
    for command in commands:
        command_id = f"{tag}-{state.version}"
        decision = decide_command(
            state, command_id, command, now=now_utc(), new_cart_id=uuid.uuid4(), new_event_id=uuid.uuid4
        )
        if not isinstance(decision, Accepted):
            raise RuntimeError(f"the seed session was refused: {decision}")
        state = state.with_events(decision.events)
        events.extend(decision.events)
    return state, events


@dataclass
class SeedMember:
    state: MemberCart
    sessions: list[list[StoredEvent]] = field(default_factory=list)


def plan_backlog(events: int, rng: random.Random, max_members: int = MAX_SEED_MEMBERS) -> list[SeedMember]:
    """Enough members and sessions for at least `events` events."""
    sessions = math.ceil(events / EVENTS_PER_SESSION)
    per_member = math.ceil(sessions / max_members)
    members = math.ceil(sessions / per_member)  # as few extra sessions as can be
    vendors = [uuid.uuid4() for _ in range(50)]
    planned = []
    for _ in range(members):
        member = SeedMember(MemberCart(uuid.uuid4()))
        state = member.state
        for _ in range(per_member):
            state, session = decided_session(state, session_commands(vendors, rng), "bench-seed")
            member.sessions.append(session)
        planned.append(member)
    return planned


async def append_backlog(journal: CassandraJournal, members: Sequence[SeedMember], progress: Progress) -> None:
    """Every member's sessions, one batch of appends per round of sessions, as the owner of every partition of the
    bench's own system writes them (nothing else writes there: its command worker is not running)."""
    lease = await journal.claim(range(journal.partitions or 1), "bench-seed")
    done = 0
    total = sum(len(m.sessions) for m in members)
    for round_ in range(max(len(m.sessions) for m in members)):
        for chunk in range(0, len(members), 200):
            appends = [
                MemberAppend(m.state.member_id, m.sessions[round_][0].seq_nr - 1, tuple(m.sessions[round_]))
                for m in members[chunk : chunk + 200]
                if round_ < len(m.sessions)
            ]
            await journal.append_batch(lease, appends)
            await journal.index(lease, appends)
            done += len(appends)
            progress.update(f"journal: {done:,}/{total:,} sessions appended")


async def produce_backlog(settings: Settings, members: Sequence[SeedMember], progress: Progress) -> int:
    """Every event on cart-events as the command worker emits it; members interleaved, each in seq_nr order."""
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    produced = 0
    try:
        in_flight: list[asyncio.Future[Any]] = []
        for round_ in range(max(len(m.sessions) for m in members)):
            for member in members:
                for event in member.sessions[round_] if round_ < len(member.sessions) else []:
                    value = event_message(event)
                    key = str(event.member_id).encode()
                    in_flight.append(await producer.send(settings.topic_events, value, key=key))
                    produced += 1
            await asyncio.gather(*in_flight)
            in_flight.clear()
            progress.update(f"cart-events: {produced:,} events produced")
    finally:
        await producer.stop()
    return produced


# --- The worker of the own system -------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    popen: subprocess.Popen[bytes]
    log: Path

    def ready(self) -> bool:
        return "[^Worker]: Ready" in self.log.read_text(errors="replace")

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (a clean stop), SIGKILL to its process group if it does not stop within 30 s."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(30)


def start_worker(system: OwnSystem, state_dir: Path) -> WorkerProcess:
    from app.tools.cli import worker_command

    log = state_dir / "worker.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            worker_command(),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **system.env, "CART_STATE_DIR": str(state_dir)},
            start_new_session=True,
        )
    return WorkerProcess(popen, log)


def check_alive(workers: Sequence[WorkerProcess]) -> None:
    for worker in workers:
        if worker.popen.poll() is not None:
            raise RuntimeError(f"the projection worker exited with {worker.popen.returncode}:\n{worker.tail()}")


async def wait_ready(workers: Sequence[WorkerProcess], timeout_s: float = 180) -> None:
    """Until one of the workers is ready (the first consumes from then on, whether the others are ready or not)."""
    deadline = time.monotonic() + timeout_s
    while not any(worker.ready() for worker in workers):
        check_alive(workers)
        if time.monotonic() > deadline:
            raise RuntimeError(f"no projection worker was ready within {timeout_s:g} s:\n{workers[0].tail()}")
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class LagReading:
    at: float
    events_applied: int  # committed on cart-events, all partitions
    total_lag: int  # on every topic the group reads
    lag_by_agent: dict[str, int] = field(default_factory=dict)  # each agent's, on the topic it reads


async def read_lag(settings: Settings, clients: LagClients | None = None) -> LagReading:
    rows = await consumer_lag(settings, clients)
    applied = sum(r.committed or 0 for r in rows if r.topic == settings.topic_events)
    by_agent: Counter[str] = Counter()
    for r in rows:
        by_agent[r.agents] += r.lag
    return LagReading(time.monotonic(), applied, sum(r.lag for r in rows), dict(by_agent))


def caught_up_by_agent(readings: Sequence[LagReading], events: int, ready_at: float) -> dict[str, dict[str, Any]]:
    """Per agent, the first reading at which the whole backlog had gone through `purchases` and the agent had
    nothing left to read: the seconds from ready, and the backlog's events per second up to then (each projection's
    own catch-up rate; the row owners can only finish after `purchases` has sent their updates)."""
    found: dict[str, dict[str, Any]] = {}
    for reading in readings:
        if reading.events_applied < events:
            continue
        for agent, lag in reading.lag_by_agent.items():
            if lag == 0 and agent not in found:
                seconds = reading.at - ready_at
                found[agent] = {
                    "seconds_from_ready_to_lag_0": round(seconds, 1),
                    "events_per_s": round(events / seconds, 1) if seconds > 0 else None,
                }
    return dict(sorted(found.items()))


async def until_drained(
    settings: Settings, events: int, workers: Sequence[WorkerProcess], timeout_s: float, progress: Progress
) -> list[LagReading]:
    """Lag readings every half second (over clients kept open) until every event is applied and nothing is left on
    any topic, or the time-out."""
    readings: list[LagReading] = []
    deadline = time.monotonic() + timeout_s
    async with LagClients(settings) as clients:
        while time.monotonic() < deadline:
            check_alive(workers)
            reading = await read_lag(settings, clients)
            readings.append(reading)
            progress.update(
                f"projections: {reading.events_applied:,}/{events:,} events applied, lag {reading.total_lag:,}"
            )
            if reading.events_applied >= events and reading.total_lag == 0:
                break
            await asyncio.sleep(LAG_EVERY_S)
    return readings


# --- Catch-up, start to end -------------------------------------------------------------------------------


async def catch_up(
    base: Settings,
    api_port: int,
    events: int,
    timeout_s: float,
    progress: Progress,
    seed: int | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    system = own_system(base, f"{os.getpid()}-{int(time.time())}")
    settings = system.settings
    state_dir = Path(tempfile.mkdtemp(prefix="cart-bench-"))
    started_workers: list[WorkerProcess] = []
    try:
        await create_stores(settings)
        progress.update("backlog: deciding sessions", force=True)
        members = plan_backlog(events, random.Random(seed))
        runtime = Runtime(settings, migrate_first=False)
        try:
            started = time.monotonic()
            await append_backlog(await runtime.journal(), members, progress)
            appended_s = time.monotonic() - started
        finally:
            await runtime.aclose()
        produced = await produce_backlog(settings, members, progress)
        progress.note(
            f"  backlog: {produced:,} events in the journal ({appended_s:.0f} s) and on {settings.topic_events}"
        )
        for n in range(workers):
            (state_dir / str(n)).mkdir()
            started_workers.append(start_worker(system, state_dir / str(n)))
        await wait_ready(started_workers)  # the clock starts when the first is ready: the others join meanwhile
        return await measure_catch_up(
            base, api_port, settings, started_workers, produced, len(members), timeout_s, progress
        )
    finally:
        for worker in started_workers:
            worker.stop()
        await drop_own_system(system)
        shutil.rmtree(state_dir, ignore_errors=True)


async def measure_catch_up(
    base: Settings,
    api_port: int,
    settings: Settings,
    workers: Sequence[WorkerProcess],
    events: int,
    members: int,
    timeout_s: float,
    progress: Progress,
) -> dict[str, Any]:
    names = ["projection worker"] if len(workers) == 1 else [f"projection worker {n}" for n in range(len(workers))]
    watched = find_system(base, api_port, extra={w.popen.pid: name for w, name in zip(workers, names, strict=True)})
    meter = CpuMeter(watched)
    meter.start()
    ready_at = time.monotonic()
    readings = await until_drained(settings, events, workers, timeout_s, progress)
    cpu = meter.stop()
    last = readings[-1]
    caught_up = last.events_applied >= events and last.total_lag == 0
    seconds = last.at - ready_at
    rate = round(last.events_applied / seconds, 1) if seconds > 0 else None
    progress.note(
        f"  projections: {last.events_applied:,} events in {seconds:.1f} s = {rate or 0:,.0f} events/s"
        + ("" if caught_up else f" (not caught up within {timeout_s:g} s)")
    )
    return {
        "projection_events_per_s": rate,
        "events": events,
        "members": members,
        "events_applied": last.events_applied,
        "caught_up": caught_up,
        "seconds_from_ready_to_lag_0": round(seconds, 1) if caught_up else None,
        "agents": QUERY_AGENTS,
        "workers": len(workers),
        "by_agent": caught_up_by_agent(readings, events, ready_at),
        "timeline": [[round(r.at - ready_at, 1), r.events_applied] for r in readings],
        "cpu": cpu.to_json(last.events_applied or None, per="event"),
    }


async def create_stores(settings: Settings) -> None:
    import asyncpg

    from app.stores.migrations import migrate

    admin = await asyncpg.connect(settings.postgres_dsn.rsplit("/", 1)[0] + "/postgres", timeout=15)
    try:
        await admin.execute(f'CREATE DATABASE "{settings.postgres_database}"')
    finally:
        await admin.close()
    await migrate(settings)


async def drop_own_system(system: OwnSystem) -> None:
    """Its topics (the changelogs too), keyspace and database; whatever is not there is skipped."""
    import asyncpg
    from aiokafka.admin import AIOKafkaAdminClient

    from app.stores.cassandra import connect_async, execute
    from app.stores.migrations import own_topics

    settings = system.settings
    with contextlib.suppress(Exception):
        admin = AIOKafkaAdminClient(**kafka_options(settings), request_timeout_ms=15000)
        await admin.start()
        try:
            ours = own_topics(settings, await admin.list_topics())
            if ours:
                await admin.delete_topics(ours)
        finally:
            await admin.close()
    with contextlib.suppress(Exception):
        cluster, session = await connect_async(settings)
        try:
            await execute(session, f"DROP KEYSPACE IF EXISTS {settings.cassandra_keyspace}", timeout_s=60)
        finally:
            await asyncio.to_thread(cluster.shutdown)
    with contextlib.suppress(Exception):
        conn = await asyncpg.connect(settings.postgres_dsn.rsplit("/", 1)[0] + "/postgres", timeout=15)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{settings.postgres_database}" WITH (FORCE)')
        finally:
            await conn.close()


# --- Read delay against the running system ----------------------------------------------------------------


@dataclass
class ReadBacks:
    """Checkout reply -> purchase readable, per read model source."""

    http: aiohttp.ClientSession
    delays_ms: dict[str, list[float]] = field(default_factory=lambda: {"postgres": [], "cassandra": []})
    not_visible: dict[str, int] = field(default_factory=lambda: {"postgres": 0, "cassandra": 0})
    why_not: dict[str, Counter[str]] = field(default_factory=lambda: {"postgres": Counter(), "cassandra": Counter()})
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def on_answer(self, outcome: Outcome) -> None:
        if outcome.kind == "checkout" and outcome.status == 200 and outcome.checkout is not None:
            for source in self.delays_ms:
                task = asyncio.create_task(self.read_back(outcome, source))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def read_back(self, outcome: Outcome, source: str) -> None:
        assert outcome.checkout is not None and outcome.answered is not None
        purchase = next(e for e in outcome.checkout["events"] if e["type"] == "ItemPurchased")
        vendor = purchase["payload"]["item"]["vendorId"]
        position = purchase["position"]
        params = {"after": f"{position['partition']}:{position['offset']}", "waitMs": "10000", "source": source}
        path = f"/vendor-billing/{vendor}/{outcome.checkout['purchasedAt'][:4]}"
        body, why = None, "not caught up within 10 s"
        for attempt in range(2):
            try:
                async with self.http.get(path, params=params, timeout=aiohttp.ClientTimeout(total=20)) as response:
                    if response.status == 200:
                        body = await response.json()
                    else:
                        why = f"HTTP {response.status}: {(await response.text())[:200]}"
                break
            except aiohttp.ServerDisconnectedError as error:
                # A pooled keep-alive connection the server closed as the read went out (2026-12-03: the one
                # "not readable" of a bench run): the read is idempotent, so it is sent once more.
                why = f"no answer: {type(error).__name__}" + (" (twice)" if attempt else "")
            except (TimeoutError, aiohttp.ClientError) as error:
                why = f"no answer: {type(error).__name__}"
                break
        if body is not None and body["projection"]["caughtUp"]:
            self.delays_ms[source].append((time.monotonic() - outcome.answered) * 1000)
        else:
            self.not_visible[source] += 1
            self.why_not[source][why] += 1


async def read_delay(
    client: CartClient,
    http: aiohttp.ClientSession,
    members: Sequence[Member],
    rate: float,
    seconds: float,
    settings: Settings,
    progress: Progress,
    late_limit_s: float,
    drain_s: float,
) -> tuple[dict[str, Any], PhaseResult]:
    progress.update(f"spreading {len(members)} members over the session's steps", force=True)
    await stagger(client, members)
    reads = ReadBacks(http)
    pool = member_pool(members)
    load = await open_loop(
        client, pool, rate, seconds, progress, late_limit_s, drain_s, reads.on_answer, f"read delay at {rate:g}/s"
    )
    load_ended = time.monotonic()
    if reads.tasks:
        await asyncio.wait(set(reads.tasks), timeout=30)
    drained_s = await lag_back_to_zero(settings, load_ended, progress)
    figures: dict[str, Any] = {
        "offered_per_s": rate,
        "members": len(members),
        "checkouts": len(reads.delays_ms["postgres"]) + reads.not_visible["postgres"],
        "reply_to_readable_ms": {source: latency_summary(ms) for source, ms in reads.delays_ms.items()},
        "not_readable_within_10_s": reads.not_visible,
        "not_readable_why": reads.why_not,  # what the read answered instead, how often
        "lag_back_to_0_s": drained_s,
        "consumer_group": settings.consumer_group,
        "load": load.summary(),
    }
    postgres = figures["reply_to_readable_ms"]["postgres"]
    progress.note(
        f"  checkout -> readable in PostgreSQL: p50 {postgres['p50_ms']} ms, p95 {postgres['p95_ms']} ms "
        f"({postgres['n']} checkouts); lag back to 0 {drained_s} s after the load"
    )
    return figures, load


async def lag_back_to_zero(
    settings: Settings, since: float, progress: Progress, timeout_s: float = 120
) -> float | None:
    """Seconds from `since` until the consumer group's lag is 0 on every topic it reads; None if not within the
    time-out (or the lag cannot be read)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            lag = sum(r.lag for r in await consumer_lag(settings))
        except Exception as error:  # a figure that cannot be had is null, the rest of the bench goes on
            progress.note(f"  lag unavailable: {error}")
            return None
        if lag == 0:
            return round(time.monotonic() - since, 2)
        progress.update(f"waiting for lag 0: {lag} left")
        await asyncio.sleep(0.25)
    return None
