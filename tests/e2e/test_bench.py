"""`cart bench` against the running test system, at tiny sizes: it runs every part, writes a JSON with every key,
the markdown and PNG plots; bad input and an absent API are one line and exit 1; the offline part (rebuild all
and verify, timed) over a small loaded journal. Never asserts a timing: the
figures of a run this small on a shared machine mean nothing, only their presence does."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from pathlib import Path

from app.settings import Settings
from app.stores.migrations import migrate
from app.tools.bench import offline
from app.tools.bench.report import HEADLINE
from app.tools.progress import Progress
from app.tools.services import Postgres
from tests.e2e.system import Process, cart_cli, drop_stores, existing_topics

PNG = b"\x89PNG\r\n\x1a\n"
REQUIRED = [*HEADLINE, "machine"]
TINY = [
    "--members", "6", "--concurrency", "2", "--seconds", "2",
    "--rates", "5,10", "--level-seconds", "2", "--late-limit-s", "3", "--drain-s", "3",
    "--ceiling-seconds", "1", "--append-concurrencies", "1,2", "--fence-partitions", "2", "--fence-events", "5",
    "--http-concurrency", "2", "--projection-events", "70", "--projection-timeout-s", "120",
    "--projection-workers", "2",
    "--read-delay-rate", "5", "--read-delay-seconds", "3", "--read-delay-members", "6", "--profile-seconds", "1",
]  # fmt: skip


def test_a_tiny_bench_writes_every_key_the_markdown_and_the_plots(system: dict[str, Process], tmp_path: Path) -> None:
    before = set(asyncio.run(existing_topics()))
    result = cart_cli({}, "bench", *TINY, "--out", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The catch-up's own system is dropped whole: its topics, the owner topic and the changelogs included.
    left = {t for t in set(asyncio.run(existing_topics())) - before if t.startswith(("bench-", "cart-bench-"))}
    assert left == set()
    doc = json.loads((tmp_path / "latest.json").read_text())
    assert [key for key in REQUIRED if key not in doc] == []
    assert doc["failed_parts"] == [], doc["failed_parts"]
    for key in REQUIRED[:-1]:  # every figure is measured, or says why not
        assert doc[key] is not None or key in doc["null_reasons"], key
    assert "--journal-keyspace" in doc["null_reasons"]["rebuild_1m_events_s"]
    assert doc["machine"]["cores"] >= 1 and any(p["name"] == "api" for p in doc["machine"]["processes_watched"])
    assert set(doc["ratios"]) >= {"commands_per_s / append_ceiling_per_s", "commands_per_s / http_ceiling_per_s"}
    lone = doc["parts"]["kafka-ceiling"]["one_at_a_time"]  # what a lone message costs each side, per round trip
    assert lone["round_trips"] > 0 and lone["p50_us"] > 0 and lone["client_cpu_us_per_round_trip"] > 0
    assert doc["parts"]["saturation"]["lag_back_to_0_s"] >= 0  # the query side caught up after the closed loop
    levels = doc["parts"]["open-loop"]["levels"]
    assert [level["offered_per_s"] for level in levels] == [5, 10]
    # the host's speed beside every level and part, so that a latency is read against how fast the host was
    probes = [x["host_probe_ms"] for x in levels] + [p["host_probe_ms"] for p in doc["parts"].values()]
    assert all(p["before"] > 0 and p["after"] > 0 for p in probes) and doc["machine"]["host_probe_ms_at_start"] > 0
    assert {"api", "worker"} <= set(doc["parts"]["profile"]["processes"])
    projections = doc["parts"]["projections"]
    assert projections["caught_up"] and projections["workers"] == 2
    by_agent = projections["by_agent"]  # each projection's own catch-up
    assert set(by_agent) == set(projections["agents"].split(","))
    assert all(
        0 < a["seconds_from_ready_to_lag_0"] <= projections["seconds_from_ready_to_lag_0"] for a in by_agent.values()
    )
    assert {"projection worker 0", "projection worker 1"} <= set(projections["cpu"]["processes"])
    markdown = (tmp_path / "latest.md").read_text()
    for heading in ("### Ceilings", "### Saturation", "### Open loop", "### Read delay", "### Projections", "### Host"):
        assert heading in markdown, heading
    plots = [Path(p) for p in doc["plots"]]
    assert len(plots) == 2 and all(p.read_bytes()[:8] == PNG for p in plots)
    assert "headline" in result.stdout and "wrote " in result.stdout


def test_bad_bench_parameters_and_an_absent_api_are_one_line_and_exit_1() -> None:
    for bad in (
        ["--members", "0"],
        ["--rates", "100,fast"],
        ["no-such-part"],
        ["--members", "2", "--concurrency", "3"],
    ):
        result = cart_cli({}, "bench", *bad)
        assert result.returncode == 1, bad
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    absent = cart_cli({}, "bench", "--api", "http://127.0.0.1:9", "saturation")
    assert absent.returncode == 1 and "is the system running?" in absent.stderr and "Traceback" not in absent.stderr


async def test_the_offline_part_times_rebuild_all_and_verify_of_a_loaded_journal(tmp_path: Path) -> None:
    # What the bench times against the 1M-event keyspace, here on a journal of 400 events in a keyspace and a
    # database of its own (rebuild rewrites the read models of the keyspace it is given), dropped afterwards.
    name = f"bench_offline_{uuid.uuid4().hex[:8]}"
    settings = Settings(cassandra_keyspace=name, postgres_database=name)
    await Postgres(settings)._create_database()
    env = {"CART_CASSANDRA_KEYSPACE": name, "CART_POSTGRES_DATABASE": name}
    try:
        await migrate(settings)
        loaded = cart_cli(env, "load-journal", "--events", "400", "--members", "20", "--days", "3")
        assert loaded.returncode == 0, loaded.stderr[-2000:]

        timed = await asyncio.to_thread(offline.rebuild_and_verify, name, name, 300, Progress(io.StringIO()))

        assert timed["rebuild"]["all"]["exit"] == 0, timed
        assert timed["verify"]["exit"] == 0, timed  # verify exits 1 when a read model differs from the journal
        assert timed["rebuild_1m_events_s"] is not None and timed["verify_1m_events_s"] is not None
    finally:
        await drop_stores(env)
