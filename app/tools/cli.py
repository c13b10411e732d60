"""`cart`: one command-line entry point for people and operators.

`cart run` (worker and API together), `cart worker`, `cart api`, `cart migrate`,
`cart services up|down|status`, `cart shell [--api URL]` (the interactive cart shell), `cart bench` (measure a
running system and the machine's ceilings), `cart status`, `cart verify`, `cart rebuild MODEL...|all`,
`cart load-journal` (a large generated journal, straight into Cassandra).
Every sub-command has `--help` and exits non-zero on failure, with one clear line instead of a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from app.settings import get_settings

READ_MODEL_NAMES = ["popular_items", "vendor_billing", "vendor_billing_sql"]


def fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_services(args: argparse.Namespace) -> int:
    from app.tools import services

    return services.main([args.action])


def cmd_migrate(_args: argparse.Namespace) -> int:
    from app.stores.migrations import migrate

    try:
        asyncio.run(migrate(get_settings()))
    except Exception as error:  # any store refusing is reported as one line, not a traceback
        return fail(f"migration failed: {error} (are the services up? `make services-up`)")
    print("migrated: topics, Cassandra keyspace and tables, PostgreSQL tables")
    return 0


def cmd_shell(args: argparse.Namespace) -> int:
    from app.tools.shell import run_shell

    return run_shell(args.api)


def worker_command() -> list[str]:
    """The worker process (uvloop: a cheaper event loop than asyncio's own)."""
    faust = shutil.which("faust", path=os.path.dirname(sys.executable)) or "faust"
    return [faust, "-L", "uvloop", "-A", "app.worker", "worker", "--loglevel", "info", "--without-web"]


def api_command(port: int | None = None) -> list[str]:
    """The API process: uvicorn with uvloop and httptools (the pure-Python h11 parser costs far more per request),
    with a deadline on reading each request (app/api/http_protocol.py)."""
    s = get_settings()
    return [
        sys.executable, "-m", "uvicorn", "app.api.main:create_app", "--factory",
        "--loop", "uvloop", "--http", "app.api.http_protocol:TimedHttpToolsProtocol", "--no-access-log",
        "--host", s.api_host, "--port", str(port or s.api_port), "--log-level", "warning",
    ]  # fmt: skip


def cmd_worker(args: argparse.Namespace) -> int:
    # Topics and changelogs first: a Faust worker that creates a changelog itself can miss it in the metadata.
    if code := cmd_migrate(args):
        return code
    command = worker_command()
    os.execv(command[0], command)


def cmd_api(_args: argparse.Namespace) -> int:
    ensure_key()
    command = api_command()
    os.execv(command[0], command)


def ensure_key() -> None:
    """The local signing key the API checks tokens with (unless a key is configured, or auth is off)."""
    from app.api.auth import ensure_signing_key

    s = get_settings()
    if s.auth == "on" and s.auth_secret is None and s.auth_public_key_file is None and s.auth_jwks_file is None:
        ensure_signing_key(s)


def cmd_token(args: argparse.Namespace) -> int:
    """Print a bearer token for local use: the subject is a member id, or a name mapped as the shell maps it."""
    import uuid as uuid_module

    from app.api.auth import SCOPES, mint
    from app.tools.names import member_id

    s = get_settings()
    if s.auth_public_key_file is not None or s.auth_jwks_file is not None:
        return fail("the API checks tokens issued elsewhere (CART_AUTH_PUBLIC_KEY_FILE/JWKS_FILE): get one there")
    unknown = sorted(set(args.scope) - set(SCOPES))
    if unknown:
        return fail(f"unknown scope(s) {unknown}; known: {', '.join(SCOPES)}")
    if args.ttl < 1:
        return fail("--ttl must be at least 1 second")
    try:
        subject = str(uuid_module.UUID(args.member))
    except ValueError:
        subject = str(member_id(args.member))
    ensure_key()
    try:
        print(mint(s, subject, args.scope, args.ttl))
    except ValueError as error:
        return fail(str(error))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The API, command workers and query-side workers, supervised (app/tools/supervisor.py): a process that dies
    is started again; Ctrl-C, SIGTERM or SIGINT stops them all (the services keep running)."""
    from app.streams.agent_names import COMMAND_AGENTS, QUERY_AGENTS
    from app.tools.supervisor import Child, Supervisor

    s = get_settings()
    if args.workers < 1:
        return fail("--workers must be at least 1")
    if code := cmd_migrate(args):
        return code
    ensure_key()
    workers = s.state_dir / "workers"
    children = [Child("api", api_command())]
    # The command side and the query side in processes of their own: each gets a core's worth of Python, and
    # each scales apart (a second of each shares its group's partitions).
    for n in range(1, args.workers + 1):
        for kind, agents in (("command", COMMAND_AGENTS), ("query", QUERY_AGENTS)):
            env = {"CART_AGENTS": ",".join(agents), "CART_WORKER_DIR": str(workers / f"{kind}-{n}")}
            nice = s.query_worker_nice if kind == "query" else 0  # the read models yield the CPU to the commands
            children.append(Child(f"{kind}-worker-{n}", worker_command(), env, nice))
    print(f"the API is at http://{s.api_host}:{s.api_port} (docs at /docs); {args.workers} command and query worker(s)")
    print("Ctrl-C stops them; `make services-down` stops Kafka, Cassandra and PostgreSQL.", flush=True)
    return Supervisor(children).run()


def cmd_status(_args: argparse.Namespace) -> int:
    """Services, the worker group, and per topic and partition how far the consumers have got."""
    from app.streams.lag import consumer_lag, group_members, read_model_freshness
    from app.tools import services

    settings = get_settings()
    up = services.status(settings)
    if not up:
        return fail("some services are down (`make services-up`)")
    try:
        rows = asyncio.run(consumer_lag(settings))
    except Exception as error:
        return fail(f"cannot read the consumer group: {error}")
    try:
        groups = asyncio.run(group_members(settings))
    except Exception as error:
        return fail(f"cannot describe the worker groups: {error}")
    for name, (state, members) in groups.items():
        print(f"\nworker group {name}: {state}, {len(members)} worker(s)")
        for member in members:
            owned = "; ".join(f"{topic} {parts}" for topic, parts in sorted(member.partitions.items()))
            print(f"  {member.member_id[-12:]} on {member.host.lstrip('/')}: {owned or 'no partitions'}")
    print("\nposition applied and lag per partition")
    print(f"{'topic':<28} {'agents':<36} {'part':>4} {'applied':>9} {'end':>9} {'lag':>7}")
    for r in rows:
        applied = "-" if r.committed is None else str(r.committed)
        print(f"{r.topic:<28} {r.agents:<36} {r.partition:>4} {applied:>9} {r.end:>9} {r.lag:>7}")
    print(f"total lag: {sum(r.lag for r in rows)}")
    print("\nread-model freshness (newest event applied)")
    for name, newest in asyncio.run(read_model_freshness(settings)).items():
        print(f"{name:<20} {newest}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Recompute every total from the journal and report each difference; exit 0 when there is none."""
    from app.command_side.command_bus import everything_indexed
    from app.query_side.rebuild import READ_MODELS, verify
    from app.runtime import Runtime
    from app.tools.progress import ProgressLine

    async def run() -> int:
        settings = get_settings()
        runtime = Runtime(settings)
        try:
            unindexed = await everything_indexed(settings, await runtime.journal())
            if unindexed:
                print(
                    f"warning: partitions {unindexed} of {settings.topic_commands} have no live owner, and their last "
                    "one did not stop cleanly: commands it answered are in its log, and read here once a worker "
                    "claims them",
                    file=sys.stderr,
                )
            models = args.read_model or list(READ_MODELS)
            with ProgressLine("reading the journal", "members") as line:
                differences = await verify(runtime, models, line.update)
        finally:
            await runtime.aclose()
        for difference in differences:
            print(difference)
        print(f"{len(differences)} difference(s) in {', '.join(models)}")
        return 0 if not differences else 1

    return run_store_command(run)


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Drop read models' rows and rebuild them from the journal: one scan of the journal for all of them."""
    from app.command_side.command_bus import everything_indexed
    from app.query_side.rebuild import READ_MODELS, expected_rows, replace_rows, rows_for
    from app.runtime import Runtime
    from app.streams.lag import drained
    from app.tools.progress import ProgressLine

    settings = get_settings()
    models = READ_MODEL_NAMES if "all" in args.read_models else list(dict.fromkeys(args.read_models))

    async def run() -> int:
        topics = [settings.topic_events, settings.topic_popular_items_updates, settings.topic_vendor_billing_updates]
        if not args.force and not await drained(settings, topics):
            return fail(
                "the projections have not caught up (see `cart status`); stop the workers that write "
                f"{', '.join(models)} once they have, then rebuild (or pass --force)"
            )
        runtime = Runtime(settings)
        try:
            unindexed = await everything_indexed(settings, await runtime.journal())
            if unindexed and not args.force:
                return fail(
                    f"partitions {unindexed} of {settings.topic_commands} have no live owner, and their last one did "
                    "not stop cleanly: commands it answered may not be in the member journal yet; start a command "
                    "worker (its claim indexes them), then rebuild (or pass --force)"
                )
            with ProgressLine("reading the journal", "members") as line:
                expected = await expected_rows(runtime, line.update)
            for model in models:  # each is replaced whole; one that fails leaves the ones before it rebuilt
                rows = rows_for(expected, model)
                with ProgressLine(f"writing {model}", "rows") as line:
                    await replace_rows(runtime, model, rows, line.update)
                print(f"rebuilt {READ_MODELS[model]}: {len(rows)} rows", flush=True)
        finally:
            await runtime.aclose()
        return 0

    return run_store_command(run)


def cmd_load_journal(args: argparse.Namespace) -> int:
    """Generate a valid journal and write it straight into the keyspace of the settings (nothing goes via Kafka)."""
    import random

    from app.runtime import Runtime
    from app.stores.migrations import migrate_cassandra
    from app.tools.bulk_load import Catalogue, KeyspaceHasJournal, load_journal
    from app.tools.progress import ProgressLine

    members = args.members if args.members is not None else max(1, args.events // 40)
    if min(args.events, members, args.vendors, args.products, args.days, args.concurrency) < 1:
        return fail("--events, --members, --vendors, --products, --days and --concurrency must be at least 1")
    if members > args.events:
        return fail(f"--members {members} is more than --events {args.events}: every member has at least one event")
    settings = get_settings()

    async def run() -> int:
        await migrate_cassandra(settings)
        runtime = Runtime(settings, migrate_first=False)
        rng = random.Random()
        catalogue = Catalogue.random(args.vendors, args.products, rng)
        try:
            journal = await runtime.journal()
            with ProgressLine("loading the journal", "events") as line:
                loaded = await load_journal(
                    journal, args.events, members, catalogue, rng, args.days, args.concurrency, args.into_existing,
                    line.update,
                )  # fmt: skip
        except KeyspaceHasJournal as error:
            return fail(
                f"{error}; pass --into-existing to add fresh members to it (new random ids, so no existing history "
                "is touched, but the read models will not have their purchases until rebuilt)"
            )
        finally:
            await runtime.aclose()
        print(
            f"loaded {loaded.events:,} events of {loaded.members:,} members ({loaded.purchases:,} purchases) into "
            f"keyspace {settings.cassandra_keyspace} in {loaded.seconds:.1f} s "
            f"({loaded.events / max(loaded.seconds, 1e-9):,.0f} events/s)"
        )
        print("the read models do not have them: `cart rebuild all` (`cart verify` lists what differs)")
        return 0

    return run_store_command(run)


def run_store_command(run: Callable[[], Coroutine[Any, Any, int]]) -> int:
    try:
        return asyncio.run(run())
    except Exception as error:  # a store that refuses is one line, not a traceback
        return fail(f"{type(error).__name__}: {error} (are the services up? `make services-up`)")


OPENAPI_FILE = Path("docs/openapi.json")


def cmd_openapi(args: argparse.Namespace) -> int:
    """Print the API's OpenAPI document, or write it to docs/openapi.json (the copy the drift test checks)."""
    import json

    from app.api.main import openapi_document

    text = json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
    if not args.write:
        print(text, end="")
        return 0
    OPENAPI_FILE.parent.mkdir(parents=True, exist_ok=True)
    OPENAPI_FILE.write_text(text)
    print(f"wrote {OPENAPI_FILE}")
    return 0


def cmd_bench(_args: argparse.Namespace) -> int:
    # Reached only as `cart bench` with no options: `main` hands every `cart bench ...` to the bench's own parser.
    from app.tools.bench.command import main as bench_main

    return bench_main([])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cart", description="The event-sourced shopping cart.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    run = add("run", cmd_run, "run the API and the workers, restarted if they die (Ctrl-C stops them all)")
    run.add_argument("--workers", type=int, default=1, help="command workers and query-side workers, each (default 1)")
    add(
        "worker",
        cmd_worker,
        "run one Faust worker (`faust -A app.worker worker`); CART_AGENTS picks its agents",
    )
    add("api", cmd_api, "run the HTTP API")
    token = add("token", cmd_token, "print a bearer token for the API, for local use")
    token.add_argument(
        "member", metavar="NAME_OR_ID", help="a member id, or a name (mapped to an id as the shell does)"
    )
    token.add_argument("--scope", action="append", default=[], help="carts:admin, analytics or metrics (repeatable)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds the token is valid (default 3600)")
    openapi = add("openapi", cmd_openapi, "print the HTTP API's OpenAPI document (as served at /openapi.json)")
    openapi.add_argument("--write", action="store_true", help=f"write it to {OPENAPI_FILE} instead")
    add("migrate", cmd_migrate, "create topics, keyspace and tables (idempotent)")
    add("status", cmd_status, "services, consumer group, position applied and lag per topic and partition")
    verify = add("verify", cmd_verify, "recompute every read model's totals from the journal; list each difference")
    verify.add_argument("read_model", nargs="*", choices=[*READ_MODEL_NAMES, []], metavar="READ_MODEL")
    rebuild = add("rebuild", cmd_rebuild, "drop read models' rows and rebuild them from one read of the journal")
    rebuild.add_argument(
        "read_models", nargs="+", metavar="MODEL", choices=[*READ_MODEL_NAMES, "all"],
        help=f"{', '.join(READ_MODEL_NAMES)}, or all",
    )  # fmt: skip
    rebuild.add_argument("--force", action="store_true", help="rebuild even if the projections are behind")
    load = add(
        "load-journal",
        cmd_load_journal,
        "write a generated, valid journal straight into Cassandra (for measuring verify and rebuild)",
    )
    load.add_argument("--events", type=int, required=True, help="events in all (exactly)")
    load.add_argument("--members", type=int, help="members, fresh random ids (default: events / 40)")
    load.add_argument("--vendors", type=int, default=50, help="vendors in the catalogue (default 50)")
    load.add_argument("--products", type=int, default=1000, help="products in the catalogue (default 1000)")
    load.add_argument("--days", type=int, default=60, help="purchases spread over the last N UTC days (default 60)")
    load.add_argument("--concurrency", type=int, default=32, help="members written at once (default 32)")
    load.add_argument(
        "--into-existing",
        action="store_true",
        help="load even if the keyspace already has a journal (the members loaded have fresh random ids, so they "
        "cannot collide with existing ones; the read models will not have their purchases until rebuilt)",
    )
    services = add("services", cmd_services, "install, start, stop or show Kafka, Cassandra and PostgreSQL")
    services.add_argument("action", choices=["up", "down", "status"])
    shell = add("shell", cmd_shell, "the interactive cart shell (the original's REPL), against the running HTTP API")
    shell.add_argument(
        "--api", metavar="URL", help="the HTTP API's base URL (default: http://CART_API_HOST:CART_API_PORT)"
    )
    add(
        "bench",
        cmd_bench,
        "measure the running system and this machine's ceilings; bench/latest.json, latest.md, plots "
        "(`cart bench --help`)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        # The bench parses its own options (many of them, with one-line errors), so `cart bench --help` lists them.
        from app.tools.bench.command import main as bench_main

        return bench_main(arguments[1:])
    args = build_parser().parse_args(arguments)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
