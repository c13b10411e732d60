"""`cart bench [PART ...] [options]`: its options, checked before anything runs (bad input is one `error: ...`
line and exit 1), and what it prints and writes at the end."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

from app.settings import get_settings
from app.tools.bench import report
from app.tools.bench.runner import PARTS, BenchError, Options, run
from app.tools.progress import Progress

N = TypeVar("N", int, float)
KEYSPACE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(1)


def positive(kind: Callable[[str], N]) -> Callable[[str], N]:
    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
        return value

    return parse


def listed(kind: Callable[[str], N]) -> Callable[[str], list[N]]:
    """A comma-separated list of positive numbers: `100,200,500`."""
    one = positive(kind)

    def parse(text: str) -> list[N]:
        values = [one(part.strip()) for part in text.split(",") if part.strip()]
        if not values:
            raise argparse.ArgumentTypeError("give at least one value")
        return values

    return parse


def keyspace(text: str) -> str:
    if not KEYSPACE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a keyspace name (lowercase letters, digits, _)")
    return text


def build_parser() -> OneLineParser:
    defaults = Options(api="")
    parser = OneLineParser(
        prog="cart bench",
        description="Measure the running system through its HTTP API, and this machine's ceilings, in one run; "
        "write OUT/latest.json, OUT/latest.md and plots. Parts: " + ", ".join(PARTS) + " (default: all).",
    )
    parser.add_argument("parts", nargs="*", metavar="PART", help="run only these parts")
    parser.add_argument("--api", metavar="URL", help="the HTTP API (default: http://CART_API_HOST:CART_API_PORT)")
    parser.add_argument("--out", type=Path, default=defaults.out, help="where to write (default: bench)")
    parser.add_argument("--seed", type=int, help="seed of the random prices, quantities and vendors")
    load = parser.add_argument_group("workload")
    load.add_argument("--members", type=positive(int), default=defaults.members, help="members (default 1000)")
    load.add_argument(
        "--concurrency", type=positive(int), default=defaults.concurrency, help="closed-loop clients (default 32)"
    )
    load.add_argument(
        "--seconds", type=positive(float), default=defaults.seconds, help="saturation run time (default 60)"
    )
    load.add_argument(
        "--rates",
        type=listed(float),
        default=defaults.rates,
        help="open-loop offered loads, commands/s (default 100,200,500,1000)",
    )
    load.add_argument(
        "--level-seconds",
        type=positive(float),
        default=defaults.level_seconds,
        help="run time of each open-loop level (default 30)",
    )
    load.add_argument(
        "--late-limit-s",
        type=positive(float),
        default=defaults.late_limit_s,
        help="stop a level once a command due this long ago is not answered (default 5)",
    )
    load.add_argument(
        "--drain-s",
        type=positive(float),
        default=defaults.drain_s,
        help="how long a level waits for its last answers (default 10)",
    )
    load.add_argument(
        "--request-timeout-s",
        type=positive(float),
        default=defaults.request_timeout_s,
        help="client time-out of one attempt, then it is retried (default 15)",
    )
    ceilings = parser.add_argument_group("ceilings")
    ceilings.add_argument(
        "--ceiling-seconds",
        type=positive(float),
        default=defaults.ceiling_seconds,
        help="run time of each ceiling measurement (default 5)",
    )
    ceilings.add_argument(
        "--append-concurrencies",
        type=listed(int),
        default=defaults.append_concurrencies,
        help="concurrencies of the conditional appends (default 1,16,64,256)",
    )
    ceilings.add_argument(
        "--fence-partitions",
        type=listed(int),
        default=defaults.fence_partitions,
        help="partitions written at once by the fenced batches (default 16,64)",
    )
    ceilings.add_argument(
        "--fence-events", type=positive(int), default=defaults.fence_events, help="events per fenced batch (default 50)"
    )
    ceilings.add_argument(
        "--http-concurrency",
        type=positive(int),
        default=defaults.http_concurrency,
        help="clients of the HTTP ceiling (default 32)",
    )
    query = parser.add_argument_group("projections, read delay, profile, rebuild and verify")
    query.add_argument(
        "--projection-events",
        type=positive(int),
        default=defaults.projection_events,
        help="backlog of the catch-up (default 100000)",
    )
    query.add_argument(
        "--projection-timeout-s",
        type=positive(float),
        default=defaults.projection_timeout_s,
        help="give the catch-up at most this long (default 1800)",
    )
    query.add_argument(
        "--projection-workers",
        type=positive(int),
        default=defaults.projection_workers,
        help="query-side worker processes of the catch-up, sharing its partitions (default 1)",
    )
    query.add_argument(
        "--read-delay-rate",
        type=positive(float),
        default=defaults.read_delay_rate,
        help="steady load of the read-delay part, commands/s (default 20)",
    )
    query.add_argument(
        "--read-delay-seconds",
        type=positive(float),
        default=defaults.read_delay_seconds,
        help="its run time (default 30)",
    )
    query.add_argument(
        "--read-delay-members",
        type=positive(int),
        default=defaults.read_delay_members,
        help="its members, spread over the session's steps (default 60)",
    )
    query.add_argument(
        "--profile-seconds",
        type=positive(float),
        default=defaults.profile_seconds,
        help="py-spy sampling time (default 15)",
    )
    query.add_argument(
        "--journal-keyspace",
        type=keyspace,
        help="time `cart rebuild` and `cart verify` against this keyspace (meant to hold 1M events)",
    )
    query.add_argument(
        "--journal-database", type=keyspace, help="its PostgreSQL database (default: the keyspace's name)"
    )
    query.add_argument("--offline-timeout-s", type=positive(float), default=defaults.offline_timeout_s,
                       help="give each rebuild and the verify at most this long (default 3600)")  # fmt: skip
    return parser


def options_from(args: argparse.Namespace) -> Options:
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        raise BenchError(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(PARTS)}")
    if args.members < args.concurrency:
        raise BenchError(f"--members ({args.members}) must be at least --concurrency ({args.concurrency})")
    s = get_settings()
    api = (args.api or f"http://{s.api_host}:{s.api_port}").rstrip("/")
    if not re.match(r"^https?://[^/]+$", api):
        raise BenchError(f"--api {api!r} must be a base URL like http://127.0.0.1:9001")
    names = {k for k in vars(Options(api="")) if k not in ("api", "parts")}
    return Options(api=api, parts=list(args.parts) or list(PARTS), **{k: getattr(args, k) for k in names})


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        options = options_from(args)
        doc = asyncio.run(run(options, Progress()))
    except BenchError as error:
        return fail(str(error))
    except KeyboardInterrupt:
        return fail("interrupted; nothing written")
    except Exception as error:  # a store or Kafka refusing before any part ran: one line, not a traceback
        return fail(f"{type(error).__name__}: {error} (are the services up? `make services-up`)")
    written = report.write(doc, options.out)
    print(report.summary(doc))
    print("\nwrote " + ", ".join(str(p) for p in written))
    if doc["failed_parts"]:
        return fail(f"part(s) failed: {', '.join(doc['failed_parts'])} (their errors are in latest.json)")
    return 0
