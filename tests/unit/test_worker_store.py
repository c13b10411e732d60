"""How a worker is configured from its agents: its table stores belong to its consumer group, its linger and its
agents' fetching to its side."""

from __future__ import annotations

from pathlib import Path

from app.settings import Settings
from app.streams.faust_app import create_app


def test_each_consumer_group_keeps_its_tables_in_a_folder_of_its_own(tmp_path: Path) -> None:
    # The same worker folder, run first with one set of agents and then with another (as after an upgrade that
    # merged two agents): the second must not find the first group's stores, which hold offsets of changelogs it
    # does not read (Faust stops with a ConsistencyError).
    before = create_app(Settings(worker_dir=tmp_path, agents="purchases,popular_items"))
    after = create_app(Settings(worker_dir=tmp_path, agents="purchases"))
    assert Path(before.conf.datadir).parent == Path(after.conf.datadir).parent == tmp_path
    assert before.conf.datadir != after.conf.datadir
    assert Path(before.conf.datadir).name == Settings(agents="purchases,popular_items").consumer_group


def test_only_a_worker_without_the_command_agent_lingers_longer(tmp_path: Path) -> None:
    # Every producer hop of a command adds the linger to its latency; the query side's only to freshness.
    command_path = Settings(producer_linger_s=0.002, projection_linger_s=0.01)
    for agents in ("all", "cart_commands", "cart_commands,purchases"):
        app = create_app(command_path.model_copy(update={"agents": agents, "worker_dir": tmp_path}))
        assert app.conf.producer_linger == 0.002, agents
    query_side = create_app(command_path.model_copy(update={"agents": "purchases,popular_items"}))
    assert query_side.conf.producer_linger == 0.01
    # By default the command path does not linger at all (docs/benchmarks.md, 2026-12-05 night).
    default = create_app(Settings(agents="cart_commands", worker_dir=tmp_path))
    assert default.conf.producer_linger == 0 and default.producer.linger_ms == 0


async def test_a_query_side_agent_lets_kafka_hold_its_fetches_and_the_command_agent_does_not(tmp_path: Path) -> None:
    # A fetch_min_bytes of 1 returns every fetch with the first message there: right on a command's path, a waste of
    # the query worker's CPU on the query side (docs/benchmarks.md, 2026-12-02 evening).
    from app.streams.batches import TablePositions
    from app.streams.driven import DrivenAgent
    from app.streams.following import FollowingAgent

    async def nothing(*_: object) -> None:
        return None

    settings = Settings(projection_fetch_min_bytes=123_456, projection_fetch_wait_s=0.07, worker_dir=tmp_path)
    query = FollowingAgent(None, "purchases", settings, "t", "o", TablePositions({}), bytes, nothing)
    command = DrivenAgent("cart_commands", settings, "t", "g", bytes, nothing, nothing, 10, 0.0)
    # Built, not started: no I/O.
    assert (query._new_consumer()._fetch_min_bytes, query._new_consumer()._fetch_max_wait_ms) == (123_456, 70)
    assert command._new_consumer()._fetch_min_bytes == 1


def test_the_command_agent_has_one_group_in_every_deployment_and_no_faust_app_takes_its_name() -> None:
    # The command agent drives its own consumer (app/streams/driven.py) in `command_group`; a Faust app that shared
    # that name would join the same group with another protocol, and one that shared a name across restarts would
    # make a restarted worker wait out its dead predecessor before its command agent could start.
    from app.streams.faust_app import faust_app_id
    from app.streams.lag import group_agents

    for agents in ("all", "cart_commands", "cart_commands,purchases"):
        settings = Settings(app_id="shopping-cart", agents=agents)
        assert settings.command_group == "shopping-cart-cart_commands"
        assert faust_app_id(settings) != settings.command_group
    alone = Settings(app_id="shopping-cart", agents="cart_commands")
    assert faust_app_id(alone) != faust_app_id(alone)  # one of its own per process: it consumes nothing
    # The query agents' group (and their changelogs) keep their names.
    assert faust_app_id(Settings(app_id="shopping-cart", agents="all")) == "shopping-cart"
    everything = Settings(app_id="shopping-cart")
    assert group_agents(everything, everything.command_group) == ["cart_commands"]
    assert "cart_commands" not in (group_agents(everything, "shopping-cart") or [])
    assert group_agents(everything, "shopping-cart-cart_commands-purchases") == ["purchases"]
    assert group_agents(everything, faust_app_id(alone)) is None  # not a worker group: no lag to show
