"""What an operator asks of a running system: how far each consumer has got (lag per topic and partition)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.settings import Settings
from app.streams.agent_names import COMMAND_AGENTS
from app.streams.kafka_clients import kafka_options


@dataclass(frozen=True)
class Lag:
    topic: str
    agents: str
    partition: int
    committed: int | None
    end: int
    group: str = ""

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


AGENT_TOPICS = {
    "cart_commands": "topic_commands",
    "purchases": "topic_events",
    "popular_items": "topic_popular_items_updates",
    "vendor_billing": "topic_vendor_billing_updates",
    "vendor_billing_sql": "topic_vendor_billing_updates",
}


def consumed_topics(settings: Settings, agents: list[str] | None = None) -> dict[str, str]:
    """Topic -> the agents (of `agents`, default all) that read it."""
    found: dict[str, list[str]] = {}
    for agent, topic_setting in AGENT_TOPICS.items():
        if agents is None or agent in agents:
            found.setdefault(getattr(settings, topic_setting), []).append(agent)
    return {topic: ", ".join(names) for topic, names in found.items()}


def group_agents(settings: Settings, group: str) -> list[str] | None:
    """The agents whose input a consumer group of this deployment consumes (its name says: `<app_id>` for every
    Faust agent, `<app_id>-<agent>-<agent>...` for a subset, `command_group` for the command agent, which drives a
    consumer of its own in every deployment), or None if it is not one of this deployment's worker groups."""
    if group == settings.command_group:
        return list(COMMAND_AGENTS)
    if group == settings.app_id:
        return [a for a in AGENT_TOPICS if a not in COMMAND_AGENTS]
    prefix = settings.app_id + "-"
    if not group.startswith(prefix):
        return None
    names = group[len(prefix) :].split("-")
    if not names or not all(n in AGENT_TOPICS for n in names):
        return None
    faust_agents = [n for n in names if n not in COMMAND_AGENTS]
    return faust_agents or None


async def worker_groups(settings: Settings, admin: AIOKafkaAdminClient) -> dict[str, list[str]]:
    """This deployment's worker groups that have workers (all-in-one, or one per side when the sides run apart),
    with their agents. A group nobody consumes in any more (the all-in-one group after a move to one group per
    side) would show a lag that never goes down, so it counts only when no group has workers at all."""
    listed = [g[0] for g in await admin.list_consumer_groups()]
    known = {g: agents for g in listed if (agents := group_agents(settings, g)) is not None}
    active = {}
    for group, agents in known.items():
        described = await admin.describe_consumer_groups([group])  # one at a time: see CommandBus.readiness
        if described[0].groups[0][5]:  # its members
            active[group] = agents
    fallback = {settings.consumer_group: group_agents(settings, settings.consumer_group) or list(AGENT_TOPICS)}
    return active or known or fallback


async def consumer_lag(settings: Settings, clients: LagClients | None = None) -> list[Lag]:
    """Per worker group and agent, the committed offset and end offset of every partition of the topic it reads;
    with `clients` (open), read with them, else with clients of its own for this one reading."""
    if clients is not None:
        return await _lag(settings, clients)
    async with LagClients(settings) as own:
        return await _lag(settings, own)


class LagClients:
    """The Kafka clients a lag reading needs, open for as long as the block: a bench that reads the lag every half
    second should not start and stop two clients each time (both sides of that cost were CPU taken from what it
    measured)."""

    def __init__(self, settings: Settings) -> None:
        self.admin = AIOKafkaAdminClient(**kafka_options(settings), request_timeout_ms=10000)
        self.consumer = AIOKafkaConsumer(**kafka_options(settings), enable_auto_commit=False)

    async def __aenter__(self) -> LagClients:
        try:
            await self.admin.start()
            await self.consumer.start()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        with contextlib.suppress(Exception):
            await self.consumer.stop()
        with contextlib.suppress(Exception):
            await self.admin.close()


async def _lag(settings: Settings, clients: LagClients) -> list[Lag]:
    admin, consumer = clients.admin, clients.consumer
    rows: list[Lag] = []
    metadata = await consumer._client.fetch_all_metadata()
    for group, agents in sorted((await worker_groups(settings, admin)).items()):
        for agent in agents:
            # The command agent commits in its group; each query-side agent reads with a consumer of its own, which
            # commits to its reader group (app/streams/following.py).
            committer = group if agent in COMMAND_AGENTS else settings.reader_group(agent, group)
            committed = await admin.list_consumer_group_offsets(committer)
            topic = getattr(settings, AGENT_TOPICS[agent])
            partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions_for_topic(topic) or ())]
            ends = await consumer.end_offsets(partitions)
            rows += [
                Lag(tp.topic, agent, tp.partition, committed[tp].offset if tp in committed else None, ends[tp], group)
                for tp in partitions
            ]
    return rows


@dataclass(frozen=True)
class GroupMember:
    member_id: str
    host: str
    partitions: dict[str, list[int]]  # the consumed topics' partitions this worker owns


async def group_members(settings: Settings) -> dict[str, tuple[str, list[GroupMember]]]:
    """Per worker group: its state and, per worker, the partitions it owns (its carts or its read-model rows)."""
    from aiokafka.protocol.group import MemberAssignment

    admin = AIOKafkaAdminClient(**kafka_options(settings), request_timeout_ms=10000)
    found: dict[str, tuple[str, list[GroupMember]]] = {}
    try:
        await admin.start()
        for name, agents in sorted((await worker_groups(settings, admin)).items()):
            topics = consumed_topics(settings, agents)
            described = await admin.describe_consumer_groups([name])  # one at a time: see CommandBus.readiness
            group = described[0].groups[0]
            members = []
            for member_id, _client_id, host, _metadata, assignment in group[5]:
                owned = MemberAssignment.decode(assignment).assignment if assignment else []
                # The query-side agents read the partitions of their inputs that Faust assigns the worker of the
                # owner topic (app/streams/following.py).
                owners = settings.topic_events_owners
                owned = [(t, ps) for topic, ps in owned for t in (topics if topic == owners else [topic])]
                members.append(GroupMember(member_id, host, {t: sorted(ps) for t, ps in owned if t in topics}))
            found[name] = (group[2] or "unknown", members)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return found


async def drained(settings: Settings, topics: list[str]) -> bool:
    """True when every partition of these topics has been consumed to its end."""
    return all(row.lag == 0 for row in await consumer_lag(settings) if row.topic in topics)


async def read_model_freshness(settings: Settings) -> dict[str, str]:
    """Per read model, the time of the newest event it has applied (or why it is unknown)."""
    from app.runtime import Runtime

    runtime = Runtime(settings, migrate_first=False)
    found: dict[str, str] = {}
    try:
        newest = await (await runtime.read_models()).newest_event_at()
        newest["vendor_billing_sql"] = await (await runtime.vendor_billing_sql()).newest_event_at()
        found = {name: at.isoformat() if at else "no event yet" for name, at in newest.items()}
    except Exception as error:  # an operator's view: say what is unknown and why
        found.setdefault("error", str(error))
    finally:
        await runtime.aclose()
    return found
