"""The workload, through the HTTP API, as shoppers produce it.

Each of M members runs sessions: add three distinct products (a vendor drawn from 50, a price with 2 decimals, a
quantity of 1-5), adjust the first by +1, remove the second, check out. A member has one command in flight at a
time; idle members wait in a FIFO queue and the longest idle is served first. Every command carries an
Idempotency-Key; one that is not answered (time-out, lost connection, 503) is sent again with the same key and
the same body, and the retry is counted. A member moves on only once a command has been answered, so a command
abandoned at the end of a phase is the member's first command in the next one.

Two ways to load the system:
- `closed_loop`: C clients, each sends its next command when the previous one is answered (saturation);
- `open_loop`: commands are due on a timetable at a fixed rate, whatever the system does, and latency counts
  from the time a command was due, so a slow system cannot slow the load down and hide its own delay
  (no coordinated omission). A level that is clearly beyond the system stops early and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from app.tools.bench.stats import latency_summary, per_second, percentile, rounded
from app.tools.progress import Progress

VENDOR_COUNT = 50
SESSION = ("add", "add", "add", "adjust", "remove", "checkout")


@dataclass(frozen=True)
class Request:
    kind: str  # add | adjust | remove | checkout
    method: str
    path: str
    body: dict[str, Any] | None
    key: str


def price(rng: random.Random) -> str:
    """A price with exactly 2 decimals, from 0.01 to 999.99."""
    cents = rng.randint(1, 99_999)
    return f"{cents // 100}.{cents % 100:02d}"


class Member:
    """One shopper: where it is in its session, and the command it has to get answered next."""

    def __init__(self, vendors: Sequence[str], rng: random.Random, tag: str) -> None:
        self.member_id = str(uuid.uuid4())
        self.vendors = vendors
        self.rng = rng
        self.tag = tag  # the run's, so that keys never repeat across runs
        self.session = 0
        self.step = 0
        self._products: list[tuple[str, str]] = []
        self._request: Request | None = None

    def request(self) -> Request:
        """The next command; the same (body and key) until `advance`, so that a retry is the same command."""
        if self._request is None:
            self._request = self._build()
        return self._request

    def advance(self) -> None:
        self._request = None
        self.step += 1
        if self.step == len(SESSION):
            self.step, self.session = 0, self.session + 1

    def _build(self) -> Request:
        kind = SESSION[self.step]
        key = f"{self.tag}-{self.session}-{self.step}"
        cart = f"/cart/{self.member_id}"
        if self.step == 0:
            self._products = [(str(uuid.uuid4()), self.rng.choice(self.vendors)) for _ in range(3)]
        if kind == "add":
            product, vendor = self._products[self.step]
            quantity = self.rng.randint(1, 5)
            item = {"productId": product, "vendorId": vendor, "name": f"bench-{product[:8]}", "price": price(self.rng)}
            return Request(kind, "POST", cart, {**item, "quantity": quantity}, key)
        if kind == "adjust":
            return Request(kind, "PATCH", f"{cart}/productId/{self._products[0][0]}", {"delta": 1}, key)
        if kind == "remove":
            return Request(kind, "DELETE", f"{cart}/productId/{self._products[1][0]}", None, key)
        return Request(kind, "POST", f"{cart}/checkout", None, key)


def new_members(count: int, rng: random.Random, tag: str) -> list[Member]:
    vendors = [str(uuid.uuid4()) for _ in range(VENDOR_COUNT)]
    return [Member(vendors, rng, tag) for _ in range(count)]


def member_pool(members: Sequence[Member]) -> asyncio.Queue[Member]:
    """Idle members, longest idle first (asyncio.Queue is FIFO, and so are its waiters)."""
    pool: asyncio.Queue[Member] = asyncio.Queue()
    for member in members:
        pool.put_nowait(member)
    return pool


@dataclass
class Outcome:
    kind: str
    due: float  # monotonic: when the command was due (open loop) or first sent (closed loop)
    sent: float  # the first attempt
    answered: float | None  # None: never answered
    status: int | None
    attempts: int
    checkout: dict[str, Any] | None = None  # the checkout's reply body, for the read-delay measurement

    @property
    def latency_ms(self) -> float:
        assert self.answered is not None
        return (self.answered - self.due) * 1000


@dataclass
class Tally:
    retries: Counter[str] = field(default_factory=Counter)  # by cause: timeout, connection, 503


class CartClient:
    """Sends a member's commands and retries them as a careful client does."""

    def __init__(self, http: aiohttp.ClientSession, timeout_s: float, retry_pause_s: float = 0.2) -> None:
        self.http = http
        self.timeout_s = timeout_s
        self.retry_pause_s = retry_pause_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, member: Member, due: float, give_up_at: float, tally: Tally) -> Outcome:
        """The member's next command until it is answered (not a 503) or `give_up_at` (monotonic) has passed.
        Any answer but a 503 is final and moves the member on; a cancelled send leaves the member where it was."""
        request = member.request()
        sent = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            cause, answer = await self._attempt(request)
            if answer is not None:
                status, body = answer
                member.advance()
                return Outcome(request.kind, due, sent, time.monotonic(), status, attempts, body)
            tally.retries[cause] += 1
            if time.monotonic() + self.retry_pause_s >= give_up_at:
                return Outcome(request.kind, due, sent, None, None, attempts)
            await asyncio.sleep(self.retry_pause_s)

    async def _attempt(self, request: Request) -> tuple[str, tuple[int, dict[str, Any] | None] | None]:
        """(why it must be retried, None) or ("", (status, the checkout's body or None))."""
        headers = {"Idempotency-Key": request.key}
        try:
            async with self.http.request(
                request.method, request.path, json=request.body, headers=headers, timeout=self._timeout
            ) as response:
                if response.status == 503:
                    await response.read()
                    return "503", None
                if request.kind == "checkout" and response.status == 200:
                    return "", (200, await response.json())
                await response.read()
                return "", (response.status, None)
        except TimeoutError:
            return "timeout", None
        except aiohttp.ClientError:
            return "connection", None


def http_session(api: str, connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections, ttl_dns_cache=None)
    return aiohttp.ClientSession(base_url=api, connector=connector, headers=bench_headers())


def bench_headers() -> dict[str, str]:
    """The bench acts as an operator (any member's cart, the read models): `CART_BENCH_TOKEN` if given (tokens
    issued elsewhere), else a token it signs with the local key; none when auth is off."""
    import os

    from app.api.auth import ADMIN, ANALYTICS, ensure_signing_key, mint
    from app.settings import get_settings

    token = os.environ.get("CART_BENCH_TOKEN")
    settings = get_settings()
    if token is None and settings.auth == "on":
        if settings.auth_secret is None:
            ensure_signing_key(settings)
        token = mint(settings, "cart-bench", [ADMIN, ANALYTICS], ttl_s=24 * 3600)
    return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass
class PhaseResult:
    """What one phase of load (a saturation run, an open-loop level) measured."""

    name: str
    started: float  # monotonic
    seconds: float  # the phase's window: the run time (closed loop) or the timetable (open loop)
    outcomes: list[Outcome] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    offered_per_s: float | None = None
    scheduled: int = 0
    never_sent: int = 0
    cancelled_in_flight: int = 0
    stopped_early: str | None = None
    ended: float = 0.0  # monotonic: when the phase stopped waiting for answers
    scheduler_late_ms: list[float] = field(default_factory=list)  # the generator's own lateness (open loop)
    abandoned_ms: list[float] = field(default_factory=list)  # never sent or cancelled: how long each had waited

    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200 and o.answered is not None]

    def answered_in_window(self) -> int:
        end = self.started + self.seconds
        return sum(1 for o in self.ok() if o.answered is not None and o.answered <= end)

    def unanswered(self) -> int:
        gave_up = sum(1 for o in self.outcomes if o.answered is None)
        return gave_up + self.never_sent + self.cancelled_in_flight

    def statuses(self) -> dict[str, int]:
        counted = Counter(str(o.status) for o in self.outcomes if o.answered is not None)
        return dict(sorted(counted.items()))

    def latencies_ms(self) -> list[float]:
        return [o.latency_ms for o in self.ok()]

    def open_loop_latencies_ms(self) -> list[float]:
        """Every scheduled command: the answered ones as measured (whatever their status), the unanswered ones as
        the time they had waited when the level ended (a lower bound of their latency)."""
        answered = [o.latency_ms for o in self.outcomes if o.answered is not None]
        waiting = [(self.ended - o.due) * 1000 for o in self.outcomes if o.answered is None]
        return answered + waiting + self.abandoned_ms

    def summary(self) -> dict[str, Any]:
        ok = self.ok()
        body: dict[str, Any] = {
            "seconds": round(self.seconds, 2),
            "answered_ok": len(ok),
            "commands_per_s": round(self.answered_in_window() / self.seconds, 1) if self.seconds else None,
            "latency_ms": latency_summary(self.latencies_ms()),
            "latency_ms_by_kind": {
                kind: latency_summary([o.latency_ms for o in ok if o.kind == kind]) for kind in sorted(set(SESSION))
            },
            "statuses": self.statuses(),
            "errors": sum(n for status, n in self.statuses().items() if status != "200"),
            "retries": dict(sorted(self.tally.retries.items())),
            "unanswered_at_end": self.unanswered(),
            "answered_per_s_timeline": per_second(
                (o.answered - self.started for o in ok if o.answered is not None), self.seconds
            ),
        }
        if self.offered_per_s is not None:
            body |= self._open_loop_summary()
        return body

    def _open_loop_summary(self) -> dict[str, Any]:
        including = self.open_loop_latencies_ms()
        late = self.scheduler_late_ms
        return {
            "offered_per_s": self.offered_per_s,
            "scheduled": self.scheduled,
            "answered_ok_per_s": round(len(self.ok()) / max(self.ended - self.started, 1e-9), 1),
            # p50/p95/p99 over every scheduled command, from its due time; unanswered ones count as the time they
            # had waited, so with any unanswered these are lower bounds.
            "latency_from_due_ms": latency_summary(including),
            "latency_is_lower_bound": self.unanswered() > 0,
            "never_sent": self.never_sent,
            "cancelled_in_flight": self.cancelled_in_flight,
            "stopped_early": self.stopped_early,
            "generator_late_ms": {"p99": rounded(percentile(late, 99)), "max": rounded(max(late) if late else None)},
        }


async def closed_loop(
    client: CartClient,
    pool: asyncio.Queue[Member],
    concurrency: int,
    seconds: float,
    progress: Progress,
    name: str = "saturation",
) -> PhaseResult:
    """C clients for `seconds`; commands in flight at the end finish (bounded by the client's time-out) but count
    only in the latencies, not in the rate."""
    result = PhaseResult(name, time.monotonic(), seconds)
    deadline = result.started + seconds

    async def shopper() -> None:
        while time.monotonic() < deadline:
            member = pool.get_nowait()  # never empty: there are at least as many members as clients
            try:
                now = time.monotonic()
                result.outcomes.append(await client.send(member, now, deadline + client.timeout_s, result.tally))
            finally:
                pool.put_nowait(member)

    def describe() -> str:
        elapsed = max(time.monotonic() - result.started, 1e-9)
        ok = len(result.ok())
        p99 = percentile(result.latencies_ms()[-2000:], 99)
        return (
            f"{name}: {elapsed:5.1f}/{seconds:g} s, {ok} answered, {ok / elapsed:.1f}/s, recent p99 {p99 or 0:.0f} ms"
        )

    async with progress.ticking(describe):
        await asyncio.gather(*(shopper() for _ in range(concurrency)))
    result.ended = time.monotonic()
    return result


@dataclass
class Slot:
    """One command of the timetable."""

    due: float
    task: asyncio.Task[None] | None = None
    sent: bool = False


async def open_loop(
    client: CartClient,
    pool: asyncio.Queue[Member],
    rate: float,
    seconds: float,
    progress: Progress,
    late_limit_s: float,
    drain_s: float,
    on_answer: Callable[[Outcome], None] | None = None,
    name: str | None = None,
) -> PhaseResult:
    """Commands due every 1/rate s for `seconds`, each sent by the longest-idle member as soon as one is free.

    The level stops early once the oldest command not yet answered was due more than `late_limit_s` ago: the
    system is then clearly not keeping up, and going on would only pile up work it will never do in time. At the
    end, commands in flight get `drain_s` to be answered; what is left is counted as unanswered."""
    result = PhaseResult(name or f"open loop {rate:g}/s", time.monotonic() + 0.05, seconds, offered_per_s=rate)
    count = max(1, round(rate * seconds))
    slots: deque[Slot] = deque()
    give_up_at = result.started + seconds + drain_s

    async def one(slot: Slot) -> None:
        member = await pool.get()
        slot.sent = True
        try:
            outcome = await client.send(member, slot.due, give_up_at, result.tally)
            result.outcomes.append(outcome)
            if on_answer is not None:
                on_answer(outcome)
        finally:
            pool.put_nowait(member)

    def describe() -> str:
        elapsed = max(time.monotonic() - result.started, 0.0)
        p99 = percentile(result.latencies_ms()[-2000:], 99)
        return (
            f"{result.name}: {min(elapsed, seconds):5.1f}/{seconds:g} s, {result.scheduled} due, "
            f"{len(result.ok())} answered, recent p99 {p99 or 0:.0f} ms, {len(pending(slots))} waiting"
        )

    async with progress.ticking(describe):
        for i in range(count):
            due = result.started + i / rate
            if (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            while slots and slots[0].task is not None and slots[0].task.done():
                slots.popleft()
            if slots and time.monotonic() - slots[0].due > late_limit_s:
                # Said short: the criterion (a command due more than late_limit_s ago unanswered) is documented.
                result.stopped_early = f"after {time.monotonic() - result.started:.1f} s, {i} of {count} due"
                break
            result.scheduler_late_ms.append((time.monotonic() - due) * 1000)
            slot = Slot(due)
            slot.task = asyncio.create_task(one(slot))
            slots.append(slot)
            result.scheduled += 1
        await finish(result, slots, drain_s)
    result.ended = time.monotonic()
    return result


def pending(slots: Sequence[Slot]) -> list[Slot]:
    return [s for s in slots if s.task is not None and not s.task.done()]


async def finish(result: PhaseResult, slots: Sequence[Slot], drain_s: float) -> None:
    """Let the level's commands finish within `drain_s`; a level stopped early sends nothing more."""
    if result.stopped_early:
        await abandon(result, [s for s in pending(slots) if not s.sent])
    tasks = [s.task for s in pending(slots) if s.task is not None]
    if tasks:
        await asyncio.wait(tasks, timeout=drain_s)
    await abandon(result, pending(slots))
    for slot in slots:
        if slot.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await slot.task  # an error of the bench itself surfaces here


async def abandon(result: PhaseResult, slots: Sequence[Slot]) -> None:
    """Cancel these commands (their members go back to the pool, each still owing its command) and count them."""
    now = time.monotonic()
    for slot in slots:
        assert slot.task is not None
        slot.task.cancel()
        if slot.sent:
            result.cancelled_in_flight += 1
        else:
            result.never_sent += 1
        result.abandoned_ms.append((now - slot.due) * 1000)
    await asyncio.gather(*(s.task for s in slots if s.task is not None), return_exceptions=True)


async def stagger(client: CartClient, members: Sequence[Member], concurrency: int = 16) -> None:
    """Move member i on by i mod 6 commands (unmeasured), so that the members are spread over the session's steps
    and checkouts come steadily instead of in waves of every member at once."""
    gate = asyncio.Semaphore(concurrency)
    tally = Tally()

    async def warm(member: Member, steps: int) -> None:
        async with gate:
            for _ in range(steps):
                now = time.monotonic()
                await client.send(member, now, now + 60, tally)

    await asyncio.gather(*(warm(m, i % len(SESSION)) for i, m in enumerate(members)))
