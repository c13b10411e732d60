"""Fault drills under load (tests/drills/harness.py): each starts a system of its own with `cart run`, shops through
it with hundreds of members, injects its faults, and checks that nothing acknowledged was lost, no journal forked,
the read models equal the journal and every purchase was published.

`make drills` runs every drill at full length; `make test` runs the ones marked `drill` (not `long_drill`) with
shorter loads. The figures are printed (`-s`) and kept as JSON in the test run's folder.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from app.streams.agent_names import QUERY_AGENTS
from tests.drills.harness import DrillSystem, run_drill

LONG = bool(os.environ.get("CART_LONG_DRILLS"))
SECONDS = 90 if LONG else 40


@pytest.fixture()
def one_of_each() -> Iterator[DrillSystem]:
    system = DrillSystem("drill-one")
    try:
        yield system
    finally:
        system.close()


@pytest.fixture()
def two_of_each() -> Iterator[DrillSystem]:
    system = DrillSystem("drill-two", workers=2)
    try:
        yield system
    finally:
        system.close()


def kill(system: DrillSystem, kind: str, index: int = 0) -> None:
    os.kill(system.workers(kind)[index], signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.drill
def test_the_command_worker_sigkilled_again_and_again_under_cart_run(one_of_each: DrillSystem) -> None:
    every = SECONDS / 4
    faults = [
        (every * n, f"SIGKILL command worker #{n}", lambda: kill(one_of_each, "cart_commands")) for n in (1, 2, 3)
    ]
    faults.append((every * 1.5, "SIGKILL query worker", lambda: kill(one_of_each, "query")))
    result = run_drill(one_of_each, faults, members=300, concurrency=24, seconds=SECONDS)
    assert result["acknowledged commands lost"] == 0


@pytest.mark.slow
@pytest.mark.drill
def test_a_worker_paused_past_its_session_timeout_wakes_as_a_zombie_and_writes_nothing(
    two_of_each: DrillSystem,
) -> None:
    paused: list[int] = []

    def pause() -> None:
        paused.append(two_of_each.workers("cart_commands")[0])
        os.kill(paused[0], signal.SIGSTOP)

    def wake() -> None:
        os.kill(paused[0], signal.SIGCONT)

    timeout = two_of_each.settings.session_timeout_s
    faults = [(8.0, "SIGSTOP a command worker", pause), (8.0 + timeout + 6, "SIGCONT it (a zombie)", wake)]
    result = run_drill(two_of_each, faults, members=300, concurrency=24, seconds=max(SECONDS, 8 + timeout + 20))
    assert result["members with a gap or a fork"] == 0


@pytest.mark.slow
@pytest.mark.drill
@pytest.mark.long_drill
def test_workers_killed_and_added_while_partitions_move_under_load(two_of_each: DrillSystem) -> None:
    faults = [
        (10.0, "SIGKILL a command worker", lambda: kill(two_of_each, "cart_commands")),
        (25.0, "a third command worker joins", lambda: two_of_each.add_worker("cart_commands")),
        (40.0, "SIGKILL a query worker", lambda: kill(two_of_each, "query")),
        (55.0, "a third query worker joins", lambda: two_of_each.add_worker(",".join(QUERY_AGENTS))),
    ]
    run_drill(two_of_each, faults, members=400, concurrency=32, seconds=90)


def restart(service: str) -> None:
    """Stop one of the local services (SIGTERM to its process) and start it again, as an operator would."""
    from app.settings import get_settings
    from app.tools import services

    settings = get_settings()
    kinds = {"kafka": services.Kafka, "cassandra": services.Cassandra, "postgres": services.Postgres}
    service_class = kinds[service]
    service_class(settings).down()
    time.sleep(3)
    service_class(settings).up()


@pytest.mark.slow
@pytest.mark.drill
@pytest.mark.long_drill
@pytest.mark.parametrize("service", ["postgres", "kafka", "cassandra"])
def test_a_service_stopped_and_started_again_under_load(one_of_each: DrillSystem, service: str) -> None:
    run_drill(one_of_each, [(15.0, f"restart {service}", lambda: restart(service))], seconds=120)
