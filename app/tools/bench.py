"""`cart bench`: load a running system through its HTTP API, measure it, and plot what was measured.

Each of `--members` members (one client each, `--concurrency` at a time) adds an item and checks out, `--rounds`
times. Measured per command: the HTTP round trip (API -> Kafka -> the owning worker -> journal -> reply). Measured
per checkout: how long until the purchase is in the PostgreSQL vendor billing (the read API's bounded wait for
the checkout's position): the read side's delay under that load. Printed as medians and percentiles; plotted,
with matplotlib (`make venv` installs it), as one PNG: latency over time and commands per second.

Timings on a shared machine vary from run to run: compare medians of runs made the same way, not single numbers.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.tools.progress import ProgressLine


@dataclass
class Sample:
    at: float  # seconds since the start
    kind: str  # add | checkout | visible
    ms: float
    ok: bool


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def of(self, kind: str) -> list[float]:
        return [s.ms for s in self.samples if s.kind == kind and s.ok]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


async def member(client: httpx.AsyncClient, rounds: int, vendors: list[str], start: float, run: Run) -> None:
    member_id = str(uuid.uuid4())
    for n in range(rounds):
        vendor = vendors[n % len(vendors)]
        item = {"productId": str(uuid.uuid4()), "vendorId": vendor, "name": "bench", "price": "1.25", "quantity": 2}
        checkout: dict[str, Any] | None = None
        steps = (("add", f"/cart/{member_id}", item), ("checkout", f"/cart/{member_id}/checkout", None))
        for kind, path, body in steps:
            key = f"{member_id}-{kind}-{n}"
            t0 = time.monotonic()
            try:
                response = await client.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.HTTPError as error:
                run.errors.append(f"{kind}: {error!r}")
                return
            ok = response.status_code == 200
            run.samples.append(Sample(t0 - start, kind, (time.monotonic() - t0) * 1000, ok))
            if not ok:
                run.errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
                return
            checkout = response.json() if kind == "checkout" else None
        assert checkout is not None
        await visible(client, vendor, checkout, start, run)


async def visible(client: httpx.AsyncClient, vendor: str, checkout: dict[str, Any], start: float, run: Run) -> None:
    """How long after the checkout's answer its purchase shows in the PostgreSQL read model."""
    position = checkout["events"][0]["position"]
    params = {"after": f"{position['partition']}:{position['offset']}", "waitMs": "10000"}
    t0 = time.monotonic()
    response = await client.get(f"/vendor-billing/{vendor}/{checkout['purchasedAt'][:4]}", params=params)
    caught_up = response.status_code == 200 and response.json()["projection"]["caughtUp"]
    run.samples.append(Sample(t0 - start, "visible", (time.monotonic() - t0) * 1000, bool(caught_up)))
    if not caught_up:
        run.errors.append(f"purchase not visible within 10 s: {response.status_code}")


async def bench(api: str, members: int, rounds: int, concurrency: int) -> Run:
    run = Run()
    vendors = [str(uuid.uuid4()) for _ in range(10)]
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=api, timeout=30, limits=limits) as client:
        ready = await client.get("/ready")
        if ready.status_code != 200:
            raise RuntimeError(f"the system at {api} is not ready: {ready.text}")
        start = time.monotonic()
        done = 0

        with ProgressLine("  shopping", "members") as progress:

            async def one() -> None:
                nonlocal done
                async with gate:
                    await member(client, rounds, vendors, start, run)
                done += 1
                progress.update(done, members, f"{len(run.errors)} error(s)")

            await asyncio.gather(*(one() for _ in range(members)))
        run.seconds = time.monotonic() - start
    return run


def report(run: Run, label: str) -> str:
    commands = [s for s in run.samples if s.kind in ("add", "checkout") and s.ok]
    lines = [
        f"{label}: {len(commands)} commands in {run.seconds:.1f} s = {len(commands) / run.seconds:.1f} commands/s, "
        f"{len(run.errors)} error(s)"
    ]
    for kind in ("add", "checkout", "visible"):
        values = run.of(kind)
        if values:
            lines.append(
                f"  {kind:9} n={len(values):5}  median {statistics.median(values):7.1f} ms  "
                f"p95 {percentile(values, 95):7.1f} ms  p99 {percentile(values, 99):7.1f} ms"
            )
    return "\n".join(lines)


def plot(run: Run, label: str, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (latency, rate) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for kind, colour in (("add", "tab:blue"), ("checkout", "tab:green"), ("visible", "tab:orange")):
        points = [s for s in run.samples if s.kind == kind and s.ok]
        name = "purchase visible in PostgreSQL" if kind == "visible" else kind
        latency.scatter([s.at for s in points], [s.ms for s in points], s=4, c=colour, label=name, alpha=0.6)
    latency.set_yscale("log")
    latency.set_ylabel("latency (ms, log)")
    latency.legend(loc="upper right", markerscale=3)
    latency.set_title(label)
    seconds = int(run.seconds) + 1
    per_second = [0] * seconds
    for s in run.samples:
        if s.kind in ("add", "checkout") and s.ok:
            per_second[min(seconds - 1, int(s.at + s.ms / 1000))] += 1
    rate.plot(range(seconds), per_second, drawstyle="steps-post")
    rate.set_ylabel("commands answered / s")
    rate.set_xlabel("seconds since start")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return True
