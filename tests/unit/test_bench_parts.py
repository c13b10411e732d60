"""The bench's pure parts: percentiles, /proc parsing, the members' sessions, py-spy stacks, the document. Nothing
here measures or asserts a timing."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from app.settings import Settings
from app.tools.bench import host, report
from app.tools.bench.cpu import classify, parse_machine_ticks, parse_proc_stat, tree_ticks
from app.tools.bench.offline import read_the_whole_journal
from app.tools.bench.profiling import parse_collapsed, top_functions
from app.tools.bench.projections import EVENTS_PER_SESSION, LagReading, caught_up_by_agent, plan_backlog
from app.tools.bench.report import HEADLINE
from app.tools.bench.runner import Options, document, machine_info
from app.tools.bench.stats import per_second, percentile
from app.tools.bench.workload import SESSION, CartClient, Member, Outcome, Tally, member_pool, new_members, open_loop
from app.tools.progress import Progress


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0 and percentile([], 50) is None
    assert per_second([0.1, 0.9, 1.5, 9.0], 2) == [2, 1]


def test_proc_stat_lines_are_read_after_the_command_name() -> None:
    line = "4242 (a (weird) name) S 17 4242 4242 0 -1 4194304 10 0 0 0 120 30 7 3 20 0 4 0 100 0 0"
    stat = parse_proc_stat(line)
    assert (stat.pid, stat.ppid, stat.own_ticks, stat.children_ticks) == (4242, 17, 150, 10)
    busy, total = parse_machine_ticks("cpu  100 5 50 800 20 3 2 10 0 0")
    assert busy == 160 and total == 160 + 800 + 20 + 10  # steal is not our work, guest is inside user


def test_a_process_tree_counts_its_children_and_what_they_left_behind() -> None:
    stats = {
        1: parse_proc_stat("1 (postgres) S 0 0 0 0 -1 0 0 0 0 0 10 10 40 0 20 0 1 0 0 0 0"),
        2: parse_proc_stat("2 (postgres: backend) S 1 0 0 0 -1 0 0 0 0 0 5 5 0 0 20 0 1 0 0 0 0"),
        3: parse_proc_stat("3 (other) S 0 0 0 0 -1 0 0 0 0 0 99 99 0 0 20 0 1 0 0 0 0"),
    }
    assert tree_ticks(1, stats) == 20 + 40 + 10 and tree_ticks(9, stats) is None


def test_only_the_system_under_test_is_watched() -> None:
    settings = Settings(app_id="shopping-cart", postgres_port=5432)
    api = ["/venv/bin/python", "-m", "uvicorn", "app.api.main:create_app", "--factory", "--port", "9001"]
    assert classify(1, api, settings, 9001) == "api" and classify(1, api, settings, 19001) is None
    worker = ["/venv/bin/python3.11", "/venv/bin/faust", "-L", "uvloop", "-A", "app.worker", "worker"]
    assert classify(999_999_999, worker, settings, 9001) == "worker"  # no environment to read: the default app id
    assert classify(999_999_999, worker, Settings(app_id="cart-test"), 9001) is None
    postgres = ["/usr/lib/postgresql/15/bin/postgres", "-D", "/data", "-p", "5433"]
    assert classify(1, postgres, settings, 9001) is None
    assert classify(1, postgres[:3], settings, 9001) == "postgres"  # no -p: PostgreSQL's default port
    assert classify(1, ["java", "-cp", "x", "kafka.Kafka", "server.properties"], settings, 9001) == "kafka"


def test_a_member_runs_the_session_and_repeats_a_command_until_it_is_answered() -> None:
    member = Member([f"vendor-{n}" for n in range(50)], random.Random(1), "tag")
    seen = []
    for _ in range(len(SESSION) * 2):
        request = member.request()
        assert member.request() is request  # a retry sends the same body under the same key
        seen.append(request)
        member.advance()
    assert [r.kind for r in seen] == list(SESSION) * 2
    assert [r.method for r in seen[:6]] == ["POST", "POST", "POST", "PATCH", "DELETE", "POST"]
    adds = [r.body for r in seen[:3] if r.body is not None]
    assert len({a["productId"] for a in adds}) == 3
    assert all(1 <= a["quantity"] <= 5 and Decimal(a["price"]).as_tuple().exponent == -2 for a in adds)
    assert seen[3].path.endswith(adds[0]["productId"]) and seen[3].body == {"delta": 1}
    assert seen[4].path.endswith(adds[1]["productId"]) and seen[5].path.endswith("/checkout")
    assert len({r.key for r in seen}) == len(seen)


def test_py_spy_stacks_become_top_functions_without_waits() -> None:
    raw = "\n".join(
        [
            "main (app.py);loop (app.py);decide (rules.py) 30",
            "main (app.py);loop (app.py);encode (json.py) 10",
            "main (app.py);loop (app.py);EpollSelector.select (selectors.py) 50",
            "main (app.py);Runner.run (asyncio/runners.py) 10",
        ]
    )
    top = top_functions(parse_collapsed(raw))
    assert top["samples"] == 100 and top["working_samples"] == 40 and top["in_c_event_loop_pct"] == 20.0
    assert top["self"][0] == {"function": "decide (rules.py)", "pct": 75.0}
    assert {"function": "loop (app.py)", "pct": 100.0} in top["inclusive"]


class NeverAnswers(CartClient):
    def __init__(self) -> None:
        self.timeout_s = 1.0

    async def send(self, member: Member, due: float, give_up_at: float, tally: Tally) -> Outcome:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


def test_an_open_loop_level_beyond_the_system_stops_early_and_counts_what_was_never_answered() -> None:
    async def level() -> dict[str, object]:
        pool = member_pool(new_members(5, random.Random(1), "t"))
        progress = Progress(every_s=3600)
        result = await open_loop(NeverAnswers(), pool, 50, 10, progress, late_limit_s=0.2, drain_s=0.1)
        assert pool.qsize() == 5  # every member is back, with its command still to be answered
        return result.summary()

    summary = asyncio.run(level())
    assert summary["stopped_early"] and summary["latency_is_lower_bound"] is True
    assert summary["unanswered_at_end"] == summary["scheduled"] and summary["answered_ok"] == 0
    assert summary["cancelled_in_flight"] == 5


def test_a_run_with_nothing_measured_still_has_every_key_and_says_why(tmp_path: Path) -> None:
    parts = {"saturation": {"error": "RuntimeError: boom"}, "offline": {"skipped": "no --journal-keyspace given"}}
    doc = document(Options(api="http://x"), datetime.now(UTC), machine_info(), [], parts)
    assert all(key in doc for key in (*HEADLINE, "machine")) and all(doc[key] is None for key in HEADLINE)
    assert set(doc["null_reasons"]) == set(HEADLINE)
    assert doc["null_reasons"]["commands_per_s"] == "RuntimeError: boom" and doc["failed_parts"] == ["saturation"]
    written = report.write(doc, tmp_path)
    assert (tmp_path / "latest.json") in written and "Not measured" in (tmp_path / "latest.md").read_text()
    assert Counter(p.suffix for p in written)[".png"] == 1  # no open-loop levels: no latency plot


def test_the_host_probe_times_the_same_fixed_loop_and_keeps_the_best_try() -> None:
    assert host.spin(10) == sum(i * i % 7 for i in range(10))  # the work is fixed: only the host's speed varies
    assert host.probe_ms(iterations=10_000, tries=2) > 0
    assert host.around(80.0, 95.5) == {"before": 80.0, "after": 95.5, "loop": "1,000,000 iterations, best of 3"}
    assert report.probe_cell({"host_probe_ms": host.around(80.0, 95.5)}) == "80 / 96" and report.probe_cell({}) == "n/a"


def test_a_verify_counts_only_when_it_read_the_whole_journal() -> None:
    assert read_the_whole_journal({"exit": 0, "said": "0 difference(s) in popular_items, vendor_billing"})
    assert read_the_whole_journal({"exit": 1, "said": "3 difference(s) in popular_items"})  # found some: read it all
    missing = 'error: StoreUnavailable: PostgreSQL is not reachable: database "bench_1m" does not exist'
    assert not read_the_whole_journal({"exit": 1, "said": missing})
    assert not read_the_whole_journal({"exit": None, "said": "did not finish within 600 s"})


def test_the_projection_backlog_is_decided_by_the_cart_rules_gap_free_per_member() -> None:
    members = plan_backlog(1000, random.Random(1), max_members=40)
    events = [e for m in members for session in m.sessions for e in session]
    assert len(members) <= 40 and all(len(m.sessions) == 4 for m in members)
    assert 1000 <= len(events) < 1000 + 4 * EVENTS_PER_SESSION  # at least the backlog asked for, barely more
    for member in members:
        seq_nrs = [e.seq_nr for session in member.sessions for e in session]
        assert seq_nrs == list(range(1, len(seq_nrs) + 1))
    first = [e.type for e in members[0].sessions[0]]
    assert first == ["ItemAdded"] * 3 + ["ItemQuantityIncreased", "ItemRemoved"] + ["ItemPurchased"] * 2


def test_each_projection_is_caught_up_once_the_backlog_has_gone_through_and_its_own_lag_is_0() -> None:
    ready = 100.0
    readings = [
        # purchases has read everything, but not all of it is committed yet: nobody counts as caught up
        LagReading(102.0, 900, 100, {"purchases": 100, "popular_items": 0, "vendor_billing": 0}),
        LagReading(104.0, 1000, 7, {"purchases": 0, "popular_items": 0, "vendor_billing": 7}),
        LagReading(105.0, 1000, 3, {"purchases": 0, "popular_items": 3, "vendor_billing": 0}),
        LagReading(108.0, 1000, 0, {"purchases": 0, "popular_items": 0, "vendor_billing": 0}),
    ]
    assert caught_up_by_agent(readings, 1000, ready) == {
        "popular_items": {"seconds_from_ready_to_lag_0": 4.0, "events_per_s": 250.0},  # its first 0 after 1000
        "purchases": {"seconds_from_ready_to_lag_0": 4.0, "events_per_s": 250.0},
        "vendor_billing": {"seconds_from_ready_to_lag_0": 5.0, "events_per_s": 200.0},
    }
