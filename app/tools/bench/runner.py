"""One bench run: the parts asked for, in an order where each disturbs the next as little as possible, then the
document (`bench/latest.json`) with the headline figures, their ratios to the ceilings and every detail."""

from __future__ import annotations

import asyncio
import os
import platform
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp

from app.settings import Settings, get_settings
from app.streams.lag import consumer_lag
from app.tools.bench import ceilings, host, offline, profiling, projections
from app.tools.bench.cpu import CpuMeter, Watched, find_system
from app.tools.bench.report import HEADLINE_KEYS
from app.tools.bench.stats import ratio
from app.tools.bench.workload import (
    CartClient,
    Member,
    PhaseResult,
    closed_loop,
    http_session,
    member_pool,
    new_members,
    open_loop,
)
from app.tools.progress import Progress

# In the order they run: the ceilings before the load (nothing of the bench's own is running yet), the profile
# right after the saturation it needs, the projections' own system last but one (it leaves 100,000 events'
# worth of compaction behind in Cassandra), the offline part last.
PARTS = (
    "http-ceiling",
    "kafka-ceiling",
    "append-ceiling",
    "saturation",
    "profile",
    "open-loop",
    "read-delay",
    "projections",
    "offline",
)


class BenchError(Exception):
    """The bench cannot run at all (no API, bad options): one line for the operator."""


@dataclass
class Options:
    api: str
    parts: list[str] = field(default_factory=lambda: list(PARTS))
    members: int = 1000
    concurrency: int = 32
    seconds: float = 60
    rates: list[float] = field(default_factory=lambda: [100, 200, 500, 1000])
    level_seconds: float = 30
    late_limit_s: float = 5
    drain_s: float = 10
    request_timeout_s: float = 15
    ceiling_seconds: float = 5
    append_concurrencies: list[int] = field(default_factory=lambda: [1, 16, 64, 256])
    fence_partitions: list[int] = field(default_factory=lambda: [16, 64])
    fence_events: int = 50
    http_concurrency: int = 32
    projection_events: int = 100_000
    projection_timeout_s: float = 1800
    projection_workers: int = 1
    read_delay_rate: float = 20
    read_delay_seconds: float = 30
    read_delay_members: int = 60
    profile_seconds: float = 15
    journal_keyspace: str | None = None
    journal_database: str | None = None
    offline_timeout_s: float = 3600
    out: Path = Path("bench")
    seed: int | None = None

    def json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


@dataclass
class Bench:
    """What the parts share: the options, the settings, the HTTP client, the members, the processes watched."""

    options: Options
    settings: Settings
    progress: Progress
    http: aiohttp.ClientSession
    client: CartClient
    members: list[Member]
    pool: asyncio.Queue[Member]
    watched: list[Watched]
    rng: random.Random
    tag: str
    api_port: int


async def check_api(api: str) -> None:
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{api}/ready", timeout=aiohttp.ClientTimeout(total=10)) as response,
        ):
            body = await response.text()
    except (TimeoutError, aiohttp.ClientError) as error:
        raise BenchError(f"no API at {api} ({error or 'timed out'}); is the system running? `make run`") from error
    if response.status != 200:
        raise BenchError(f"the system at {api} is not ready: {body[:200]}")


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        memory_kib = 0
    return {
        "hostname": platform.node(),
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def settle(bench: Bench, timeout_s: float = 60) -> None:
    """Until the running system has no command left to process (commands abandoned by a level that was stopped
    early are still in Kafka), so that the next level starts on an idle system; bounded."""
    deadline = time.monotonic() + timeout_s
    topic = bench.settings.topic_commands
    while time.monotonic() < deadline:
        try:
            left = sum(r.lag for r in await consumer_lag(bench.settings) if r.topic == topic)
        except Exception:  # the lag is only a courtesy here: wait a little and go on
            await asyncio.sleep(2)
            return
        if left == 0:
            return
        bench.progress.update(f"settling: {left} commands still in {topic}")
        await asyncio.sleep(0.5)


async def measured(bench: Bench, load: Awaitable[PhaseResult]) -> tuple[dict[str, Any], PhaseResult]:
    """A phase of load with the CPU it used; CPU per command over every command answered in it."""
    meter = CpuMeter(bench.watched)
    meter.start()
    result = await load
    cpu = meter.stop()
    return {**result.summary(), "cpu": cpu.to_json(len(result.ok()) or None)}, result


# --- The parts --------------------------------------------------------------------------------------------


async def part_http_ceiling(bench: Bench) -> dict[str, Any]:
    o = bench.options
    return await ceilings.http_ceiling(o.api, o.http_concurrency, o.ceiling_seconds, bench.progress, bench.watched)


async def part_kafka_ceiling(bench: Bench) -> dict[str, Any]:
    return await ceilings.kafka_ceiling(bench.settings, bench.options.ceiling_seconds, bench.progress, bench.watched)


async def part_append_ceiling(bench: Bench) -> dict[str, Any]:
    o = bench.options
    return await ceilings.append_ceiling(
        bench.settings,
        o.append_concurrencies,
        o.fence_partitions,
        o.fence_events,
        o.ceiling_seconds,
        bench.progress,
        bench.watched,
    )


async def part_saturation(bench: Bench) -> dict[str, Any]:
    o = bench.options
    load = closed_loop(bench.client, bench.pool, o.concurrency, o.seconds, bench.progress)
    figures, result = await measured(bench, load)
    # Whether the query side keeps up at this rate: how long after the closed loop's `--seconds` ended (no command
    # is sent after that) until no agent of the system has anything left to read.
    lag_s = await projections.lag_back_to_zero(bench.settings, result.started + result.seconds, bench.progress)
    bench.progress.note(
        f"  {figures['commands_per_s']} commands/s, p99 {figures['latency_ms']['p99_ms']} ms, "
        f"{figures['cpu'].get('cpu_ms_per_command')} CPU ms/command, errors {figures['errors']}; "
        f"lag back to 0 {lag_s} s after the load"
    )
    return {"concurrency": o.concurrency, "members": o.members, **figures, "lag_back_to_0_s": lag_s}


async def part_profile(bench: Bench) -> dict[str, Any]:
    o = bench.options
    targets = [(w.name, w.pid) for w in bench.watched if w.name == "api" or "worker" in w.name]
    if not targets:
        return {"error": "no API or worker process of the system found on this machine"}
    load = asyncio.create_task(
        closed_loop(bench.client, bench.pool, o.concurrency, o.profile_seconds + 4, bench.progress, "profile load")
    )
    await asyncio.sleep(2)  # the load is up before sampling starts
    found = await profiling.profile(targets, o.profile_seconds, o.out / "profiles")
    await load
    return {"seconds": o.profile_seconds, "under": f"closed loop, {o.concurrency} clients", "processes": found}


async def part_open_loop(bench: Bench) -> dict[str, Any]:
    o = bench.options
    levels = []
    for rate in o.rates:
        load = open_loop(bench.client, bench.pool, rate, o.level_seconds, bench.progress, o.late_limit_s, o.drain_s)
        before = host.probe_ms()
        figures, _ = await measured(bench, load)
        figures["host_probe_ms"] = host.around(before, host.probe_ms())
        late = figures["latency_from_due_ms"]
        bench.progress.note(
            f"  {rate:g}/s offered: {figures['answered_ok_per_s']}/s answered, p50 {late['p50_ms']} / p99 "
            f"{late['p99_ms']} ms from due, 503s {figures['retries'].get('503', 0)}, "
            f"unanswered {figures['unanswered_at_end']}"
            + (f"; stopped early {figures['stopped_early']}" if figures["stopped_early"] else "")
        )
        levels.append(figures)
        await settle(bench)
    return {"levels": levels}


async def part_read_delay(bench: Bench) -> dict[str, Any]:
    o = bench.options
    members = new_members(o.read_delay_members, bench.rng, f"{bench.tag}r")
    meter = CpuMeter(bench.watched)
    meter.start()
    figures, load = await projections.read_delay(
        bench.client,
        bench.http,
        members,
        o.read_delay_rate,
        o.read_delay_seconds,
        bench.settings,
        bench.progress,
        o.late_limit_s,
        o.drain_s,
    )
    return {**figures, "cpu": meter.stop().to_json(len(load.ok()) or None)}


async def part_projections(bench: Bench) -> dict[str, Any]:
    o = bench.options
    return await projections.catch_up(
        bench.settings,
        bench.api_port,
        o.projection_events,
        o.projection_timeout_s,
        bench.progress,
        o.seed,
        o.projection_workers,
    )


async def part_offline(bench: Bench) -> dict[str, Any]:
    o = bench.options
    if o.journal_keyspace is None:
        reason = "no --journal-keyspace given: name a keyspace that holds a journal of 1,000,000 events"
        bench.progress.note(f"  skipped: {reason}")
        return {"skipped": reason}
    database = o.journal_database or o.journal_keyspace
    return await asyncio.to_thread(
        offline.rebuild_and_verify, o.journal_keyspace, database, o.offline_timeout_s, bench.progress
    )


PART_RUNNERS: dict[str, Callable[[Bench], Awaitable[dict[str, Any]]]] = {
    "http-ceiling": part_http_ceiling,
    "kafka-ceiling": part_kafka_ceiling,
    "append-ceiling": part_append_ceiling,
    "saturation": part_saturation,
    "profile": part_profile,
    "open-loop": part_open_loop,
    "read-delay": part_read_delay,
    "projections": part_projections,
    "offline": part_offline,
}
TITLES = {
    "http-ceiling": "ceiling: HTTP requests/s on /health",
    "kafka-ceiling": "ceiling: Kafka produce+consume",
    "append-ceiling": "ceiling: conditional appends to Cassandra",
    "saturation": "saturation: closed loop",
    "profile": "profile: py-spy on the worker(s) and the API under saturation",
    "open-loop": "open loop: fixed offered loads, latency from the due time",
    "read-delay": "read delay: checkout reply -> purchase readable",
    "projections": "projections: catch-up over a backlog, in a system of the bench's own",
    "offline": "rebuild and verify",
}


async def run(options: Options, progress: Progress) -> dict[str, Any]:
    settings = get_settings()
    await check_api(options.api)
    api_port = urlparse(options.api).port or 80
    watched = find_system(settings, api_port)
    progress.note("processes watched: " + (", ".join(f"{w.name} ({w.pid})" for w in watched) or "none"))
    missing = {"api", "worker"} - {"worker" if "worker" in w.name else w.name for w in watched}
    if missing:
        progress.note(f"  not found on this machine: {', '.join(sorted(missing))} (their CPU is not broken out)")
    started, machine = datetime.now(UTC), {**machine_info(), "host_probe_ms_at_start": host.probe_ms()}
    rng = random.Random(options.seed)
    tag = uuid.uuid4().hex[:8]
    members = new_members(options.members, rng, tag)
    parts: dict[str, dict[str, Any]] = {}
    connections = max(options.members, options.concurrency, options.read_delay_members) + 16
    async with http_session(options.api, connections) as http:
        client = CartClient(http, options.request_timeout_s)
        bench = Bench(options, settings, progress, http, client, members, member_pool(members), watched, rng, tag,
                      api_port)  # fmt: skip
        for part in PARTS:
            if part in options.parts:
                parts[part] = await run_part(bench, part)
    return document(options, started, machine, watched, parts)


async def run_part(bench: Bench, part: str) -> dict[str, Any]:
    bench.progress.phase(TITLES[part])
    before = host.probe_ms()
    started = time.monotonic()
    try:
        figures = await PART_RUNNERS[part](bench)
    except Exception as error:  # one part failing leaves the others' figures; the run ends with exit 1
        bench.progress.note(f"  {part} failed: {type(error).__name__}: {error}")
        figures = {"error": f"{type(error).__name__}: {error}"}
    figures["part_seconds"] = round(time.monotonic() - started, 1)
    figures["host_probe_ms"] = host.around(before, host.probe_ms())
    return figures


# --- The document -----------------------------------------------------------------------------------------


def open_loop_p99(parts: dict[str, dict[str, Any]], rate: float) -> tuple[float | None, str | None, str | None]:
    """(p99 from the due time at that offered load, why it is null, what to know about it)."""
    levels = parts.get("open-loop", {}).get("levels")
    if levels is None:
        return None, parts.get("open-loop", {}).get("error", "the open-loop part did not run"), None
    level = next((x for x in levels if x["offered_per_s"] == rate), None)
    if level is None:
        return None, f"{rate:g}/s is not one of --rates", None
    p99: float | None = level["latency_from_due_ms"]["p99_ms"]
    note = None
    if level["latency_is_lower_bound"]:
        note = f"a lower bound ({level['unanswered_at_end']} of {level['scheduled']} commands never answered"
        note += f"; stopped early {level['stopped_early']})" if level["stopped_early"] else ")"
    return p99, None, note


def headline(parts: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The headline figures, why each null one is null, and what to know about some of the others."""
    values: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    notes: dict[str, str] = {}
    sources: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
        "commands_per_s": ("saturation", lambda p: p["commands_per_s"]),
        "cpu_ms_per_command": ("saturation", lambda p: p["cpu"].get("cpu_ms_per_command")),
        "projection_events_per_s": ("projections", lambda p: p["projection_events_per_s"]),
        "rebuild_1m_events_s": ("offline", lambda p: p.get("rebuild_1m_events_s")),
        "verify_1m_events_s": ("offline", lambda p: p.get("verify_1m_events_s")),
        "append_ceiling_per_s": ("append-ceiling", lambda p: p["append_ceiling_per_s"]),
        "kafka_ceiling_msgs_per_s": ("kafka-ceiling", lambda p: p["kafka_ceiling_msgs_per_s"]),
        "http_ceiling_per_s": ("http-ceiling", lambda p: p["http_ceiling_per_s"]),
    }
    for key, (part, pick) in sources.items():
        found = parts.get(part)
        if found is None:
            values[key], reasons[key] = None, f"the {part} part did not run"
        elif "error" in found or "skipped" in found:
            values[key], reasons[key] = None, found.get("error") or found["skipped"]
        else:
            values[key] = pick(found)
            if values[key] is None:
                reasons[key] = f"the {part} part measured nothing for it (see its section)"
    for rate, key in ((200, "p99_ms_at_200_per_s"), (500, "p99_ms_at_500_per_s")):
        values[key], reason, note = open_loop_p99(parts, rate)
        if reason:
            reasons[key] = reason
        if note:
            notes[key] = note
    fence = parts.get("append-ceiling", {}).get("fence_ceiling_events_per_s")
    values["fence_ceiling_events_per_s"] = fence
    projections = parts.get("projections", {})
    if projections.get("caught_up") is False:
        notes["projection_events_per_s"] = "the rate until the time-out: the backlog was not caught up"
    return {key: values.get(key) for key in HEADLINE_KEYS}, reasons, notes


def ratios(values: dict[str, Any]) -> dict[str, float | None]:
    """Each throughput as a fraction of the ceiling that bounds it (a command is one conditional append, at least
    four Kafka messages and one HTTP request; a projected event is at least one Kafka message)."""
    commands, events = values["commands_per_s"], values["projection_events_per_s"]
    return {
        "commands_per_s / append_ceiling_per_s": ratio(commands, values["append_ceiling_per_s"]),
        "commands_per_s / kafka_ceiling_msgs_per_s": ratio(commands, values["kafka_ceiling_msgs_per_s"]),
        "commands_per_s / http_ceiling_per_s": ratio(commands, values["http_ceiling_per_s"]),
        "projection_events_per_s / kafka_ceiling_msgs_per_s": ratio(events, values["kafka_ceiling_msgs_per_s"]),
        "projection_events_per_s / fence_ceiling_events_per_s": ratio(events, values["fence_ceiling_events_per_s"]),
    }


def document(
    options: Options,
    started: datetime,
    machine: dict[str, Any],
    watched: list[Watched],
    parts: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    values, reasons, notes = headline(parts)
    return {
        **values,
        "machine": {**machine, "processes_watched": [{"name": w.name, "pid": w.pid} for w in watched]},
        "ratios": ratios(values),
        "null_reasons": reasons,
        "headline_notes": notes,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "api": options.api,
        "options": options.json(),
        "parts": parts,
        "failed_parts": sorted(p for p, figures in parts.items() if "error" in figures),
    }
