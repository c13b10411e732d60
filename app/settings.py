"""Every address, port, name and limit the system uses, read once from the environment.

Variables are prefixed ``CART_`` (``CART_KAFKA_BOOTSTRAP=127.0.0.1:9092``); a ``.env`` file in the working
directory is read too. Nothing here connects to anything.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.streams.agent_names import COMMAND_AGENTS

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """The one typed configuration object; see README.md for what each setting means."""

    model_config = SettingsConfigDict(env_prefix="CART_", env_file=".env", extra="ignore")

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093
    topic_commands: str = "cart-commands"
    topic_events: str = "cart-events"
    topic_replies: str = "cart-replies"
    topic_item_purchased: str = "item-purchased"
    topic_popular_items_updates: str = "popular-items-updates"
    topic_vendor_billing_updates: str = "vendor-billing-updates"
    partitions: int = Field(default=12, ge=1, le=1024)
    reply_partitions: int = Field(default=4, ge=1, le=1024)
    # How every Kafka client connects (app/streams/kafka_clients.py). The local broker listens for PLAINTEXT on
    # kafka_bootstrap's port and for SASL_SSL (SCRAM, its own certificate) on kafka_secure_port.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-256"
    kafka_username: str = "cart"
    kafka_password: SecretStr | None = None  # default: the local broker's `<credentials_dir>/kafka-password`
    kafka_ca_file: Path | None = None  # default: the local broker's `<credentials_dir>/kafka-ca.pem`
    kafka_secure_port: int = 9094

    # Cassandra
    cassandra_hosts: str = "127.0.0.1"
    cassandra_port: int = 9042
    cassandra_keyspace: str = Field(default="shopping_cart", pattern=r"^[a-z][a-z0-9_]{0,47}$")
    cassandra_replication_factor: int = Field(default=1, ge=1)
    # The local Cassandra's commit log (`cart services up`). `batch` (the default) syncs it to disk before a write
    # is acknowledged, so an acknowledged command survives a power loss of the machine; `group` does too, syncing
    # every CART_CASSANDRA_COMMITLOG_WINDOW_MS; `periodic` acknowledges at once and syncs every 10 s (a power loss
    # can take up to 10 s of acknowledged commands). Measured costs: docs/operations.md.
    cassandra_commitlog_sync: Literal["batch", "group", "periodic"] = "batch"
    cassandra_commitlog_window_ms: int = Field(default=5, ge=1, le=1000)
    # The timer slack `cart services up` starts the local Cassandra with (its threads' timed sleeps may last this much
    # longer; 0: the kernel's default, 50 us). Cassandra's request pools keep idle workers polling for work, parked
    # 10 us to 1 ms at a time; on 2 cores at a few hundred requests/s that polling was most of Cassandra's CPU: a
    # single-row read cost 3.7 ms of it at 100/s, 0.87 ms with 1 ms of slack (docs/benchmarks.md, 2026-12-06).
    cassandra_timer_slack_ns: int = Field(default=1_000_000, ge=0, le=100_000_000)
    # How fast the local Cassandra may compact (`compaction_throughput`, MiB/s; Cassandra's default is 64). At 64 one
    # compaction took a whole core for seconds, and at an open-loop 200 commands/s the commands during it waited a
    # p50 of 70-150 ms against 23-27 at 8 (docs/benchmarks.md, 2026-12-06, evening). A saturating load flushes about
    # 1 MB/s here, which size-tiered compaction rewrites a few times: 8 is about twice what that needs.
    cassandra_compaction_mib_s: int = Field(default=8, ge=1, le=1024)
    # `cart run` starts its query-side workers this much nicer (a lower CPU priority) than the API and the command
    # workers: when many members check out at once, the read models' work took the two cores from the commands (at an
    # open-loop 200/s, the checkouts' p50 51-149 ms at 0, 23-37 at 10: docs/benchmarks.md, 2026-12-06, evening). The
    # read models catch up on what the commands leave of the CPU. 0: the same priority as the rest.
    query_worker_nice: int = Field(default=10, ge=0, le=19)
    # The workers' and the API's Cassandra connections are served by their own event loop rather than the driver's
    # I/O thread (app/stores/loop_connection.py; docs/benchmarks.md, 2026-12-06, late morning: closed loop +11%, the
    # command worker's CPU per command -14%, catch-up +8-11%). False: the driver's libev thread, as before.
    cassandra_on_loop: bool = True
    # Password authentication. Without a password given here, the one `cart services up` generated for the local
    # Cassandra (`<credentials_dir>/cassandra-password`) is used, if there is one; with neither, no credentials
    # are sent (a cluster without authentication).
    cassandra_username: str = "cart"
    cassandra_password: SecretStr | None = None

    # PostgreSQL
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "postgres"
    # As for Cassandra: given here, or the local cluster's `<credentials_dir>/postgres-password`.
    postgres_password: SecretStr | None = None
    postgres_database: str = Field(default="shopping_cart", pattern=r"^[a-z][a-z0-9_]{0,62}$")

    # The Faust app (also the consumer group id) and what a worker process runs.
    app_id: str = "shopping-cart"
    agents: str = "all"
    worker_web_port: int = 6066
    # How soon a dead worker's partitions move to a live one (Kafka's consumer session timeout).
    session_timeout_s: float = Field(default=10.0, ge=6.0, le=300.0)

    # Who may call the API (app/api/auth.py): bearer JWTs whose subject is the member id. "off" is for development
    # only (every request acts as an operator). A shared secret (HS256) from `auth_secret` or `auth_secret_file`
    # (default `<state_dir>/auth/signing-key`, which `cart run` and `cart token` create), or, for tokens issued
    # elsewhere, a PEM public key or a JWKS file (RS256/ES256).
    auth: Literal["on", "off"] = "on"
    auth_issuer: str = "shopping-cart"
    auth_audience: str = "shopping-cart"
    auth_secret: SecretStr | None = None
    auth_secret_file: Path | None = None
    auth_public_key_file: Path | None = None
    auth_jwks_file: Path | None = None
    auth_algorithms: str = ""  # pinned; default HS256 with a secret, RS256,ES256 with a public key or JWKS
    auth_metrics: bool = False  # /metrics needs a token with scope "metrics"
    # Abuse limits: requests per second (and the burst allowed) per member and per client address.
    member_rate_per_s: float = Field(default=50.0, gt=0)
    member_burst: int = Field(default=100, ge=1)
    client_rate_per_s: float = Field(default=5000.0, gt=0)
    client_burst: int = Field(default=10_000, ge=1)

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = 9001
    # A request must arrive whole (headers and body) within this long of its first byte: slow clients get a 408.
    request_read_timeout_s: float = Field(default=10.0, gt=0)
    command_timeout_s: float = Field(default=10.0, gt=0)

    # Batches: an agent takes at most this many messages at a time, waiting at most this long for more once one
    # has arrived (latency added when the load is light, fewer writes per message when it is heavy).
    command_batch_max: int = Field(default=500, ge=1, le=10_000)
    # 3 ms: more commands per conditional write (docs/benchmarks.md, 2026-12-02 evening: 152 -> 184 commands/s,
    # 10.2 -> 8.7 ms CPU per command against no wait, 32 clients), 3 ms more for a lone command.
    command_batch_within_s: float = Field(default=0.003, ge=0, le=1)
    # 5000: a catch-up over a backlog 8-26% faster than with 2000 (four interleaved pairs; docs/benchmarks.md,
    # 2026-12-06); at a steady load a batch holds what came within `projection_batch_within_s`, far fewer.
    projection_batch_max: int = Field(default=5000, ge=1, le=100_000)
    # Projections wait a little for more: nobody waits on them, and bigger batches cost less CPU per event
    # (docs/benchmarks.md, 2026-12-02: with the query side's longer linger, the query worker from 1.0 to 0.87 ms per
    # command).
    projection_batch_within_s: float = Field(default=0.05, ge=0, le=5)
    # Working through a backlog (a batch's newest message more than a second old), they wait longer: fewer, larger
    # batches cost less per event (docs/benchmarks.md, 2026-12-03: catch-up with 0.2 s against 0.05 s).
    projection_batch_within_behind_s: float = Field(default=0.25, ge=0, le=5)
    # How long a producer waits to put more messages into one request: the API and a worker with the command
    # agent (every hop adds it to a command's latency), and a worker with only query-side agents (only freshness).
    # No linger on the command path: a command crosses three producers, and under load messages pile up behind the
    # request in flight anyway (docs/benchmarks.md, 2026-12-05 night: 0 against 2 ms, p50 at 200/s 41 -> 32 ms,
    # saturation and CPU no worse).
    producer_linger_s: float = Field(default=0.0, ge=0, le=1)
    projection_linger_s: float = Field(default=0.01, ge=0, le=1)
    # The largest record batch a worker's producer makes (Kafka takes up to 1 MiB): a produce request per 16 KiB,
    # Kafka's default, cost the client 8 us of CPU per 300-byte message handed over in batches, against 2-3 us at
    # 256 KiB (app/streams/outbox.py; docs/benchmarks.md, 2026-12-06, late night).
    producer_batch_bytes: int = Field(default=256 * 1024, ge=16 * 1024, le=1024 * 1024)
    # How long Kafka may hold a query-side agent's fetch for more messages (up to `projection_fetch_min_bytes`):
    # with a fetch_min_bytes of 1 every fetch came back with the first message there, and the query worker spent
    # most of its CPU fetching (docs/benchmarks.md, 2026-12-02 evening: 1.9-2.3 -> 1.5 ms per command).
    projection_fetch_wait_s: float = Field(default=0.05, ge=0, le=1)
    projection_fetch_min_bytes: int = Field(default=256 * 1024, ge=1)
    # How often `purchases` writes what it has absorbed (member -> seq_nr) and its offset to its table, per partition
    # (app/streams/batches.py, `Checkpointed`); 0 writes them with every batch. Under the peer's load a member's
    # commands are spread over the whole run: per batch it was 1.2 changelog messages per command, 0.32 at 5 s
    # (docs/benchmarks.md, 2026-12-06, midday); a crash replays at most this long of cart-events, which the
    # bookkeeping absorbs (the public topic gets those purchases again: at least once, by eventId).
    projection_checkpoint_s: float = Field(default=5.0, ge=0, le=60)
    # How many members' carts a worker keeps in memory (the rest are loaded from the journal when needed).
    cart_cache_size: int = Field(default=100_000, ge=1)
    # The member-keyed journal is written behind the answers (app/command_side/indexer.py): every this many seconds,
    # or once this many events wait; 0 writes each batch before it is answered. A member's rows written together
    # are one Cassandra mutation, so the longer the wait, the fewer mutations; and the more a new owner has to
    # index at its claim (docs/benchmarks.md, 2026-12-05).
    index_every_s: float = Field(default=10.0, ge=0, le=600)
    index_max_pending: int = Field(default=20_000, ge=1)

    # The cart
    snapshot_every: int = Field(default=100, ge=1)
    journal_bucket_size: int = Field(default=10_000, ge=1000)

    # Fault injection for the crash tests: the worker exits right after appending this command id's events.
    crash_after_append: str = ""
    # Fault injection: the events of this command id are appended but never emitted (an emission lost).
    unemitted_command: str = ""

    # Local state: the services' data and logs, the workers' table stores.
    state_dir: Path = PROJECT_ROOT / ".state"
    # The local services' generated passwords (not under state_dir: each test worker has a state_dir of its own).
    credentials_dir: Path = PROJECT_ROOT / ".state" / "credentials"
    # A worker's own table stores (default: `<state_dir>/worker`); each worker on a machine needs its own.
    worker_dir: Path | None = None

    @property
    def cassandra_contact_points(self) -> list[str]:
        return [h.strip() for h in self.cassandra_hosts.split(",") if h.strip()]

    def credential(self, name: str, given: SecretStr | None) -> str | None:
        """A password: the one given in the settings, else the local services' file `name`, else none."""
        if given is not None:
            return given.get_secret_value()
        path = self.credentials_dir / name
        return path.read_text().strip() if path.is_file() else None

    @property
    def cassandra_secret(self) -> str | None:
        return self.credential("cassandra-password", self.cassandra_password)

    @property
    def kafka_secret(self) -> str | None:
        return self.credential("kafka-password", self.kafka_password)

    @property
    def kafka_ca(self) -> Path | None:
        local = self.credentials_dir / "kafka-ca.pem"
        return self.kafka_ca_file or (local if local.is_file() else None)

    @property
    def postgres_secret(self) -> str | None:
        return self.credential("postgres-password", self.postgres_password)

    @property
    def postgres_dsn(self) -> str:
        """The connection string, with the password: pass it to a driver, never to a log line or a message."""
        secret = self.postgres_secret
        auth = quote(self.postgres_user, safe="") + (f":{quote(secret, safe='')}" if secret else "")
        return f"postgresql://{auth}@{self.postgres_host}:{self.postgres_port}/{self.postgres_database}"

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        first = self.kafka_bootstrap.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        return host, int(port)

    @property
    def consumer_group(self) -> str:
        """The Faust app id (consumer group, changelog prefix) of a worker running `agents`.

        Workers that run different agents must not share a group: Kafka would split each topic's partitions among
        them, and an agent would see only the partitions given to its process. So a worker that runs a subset is a
        group of its own, named after it; all workers running the same subset share it and scale out together."""
        names = self.agent_names
        group = self.app_id if names in ([], ["all"]) else f"{self.app_id}-{'-'.join(names)}"
        # The command agent is not a Faust agent (it drives a consumer of its own, in `command_group`): a worker of
        # it alone must not give its Faust app that name.
        return f"{group}-faust" if group == self.command_group else group

    @property
    def topic_events_owners(self) -> str:
        """The query side's owner topic (app/streams/following.py): co-partitioned with cart-events and the update
        topics, never written to; Faust assigns its partitions, and each query-side agent reads those of its input."""
        return f"{self.topic_events}-owners"

    @property
    def topics(self) -> dict[str, int]:
        """Every topic of this system but the Faust tables' changelogs, with its number of partitions: what
        `migrate` creates, and what a test's or the bench's own system deletes when it is done (the owner topic
        too: missed before 2026-12-06, hundreds of them were left on the development machine's broker)."""
        return {
            self.topic_commands: self.partitions,
            self.topic_events: self.partitions,
            self.topic_events_owners: self.partitions,
            self.topic_item_purchased: self.partitions,
            self.topic_popular_items_updates: self.partitions,
            self.topic_vendor_billing_updates: self.partitions,
            self.topic_replies: self.reply_partitions,
        }

    def reader_group(self, agent: str, group: str | None = None) -> str:
        """The group a following agent (app/streams/following.py) of the workers in Faust group `group` (default:
        this worker's) commits its read offsets to, for the operators' lag: the agent is assigned its partitions
        (it follows Faust's group), so this group has no members."""
        return f"{group or self.consumer_group}-{agent}-reader"

    @property
    def command_group(self) -> str:
        """The consumer group of the command agent in every deployment: it reads cart-commands with a consumer it
        drives (app/streams/driven.py), not through Faust, so all command workers share this group whatever else
        they run."""
        return f"{self.app_id}-{'-'.join(COMMAND_AGENTS)}"

    @property
    def agent_names(self) -> list[str]:
        """`agents` as sorted, distinct names ([] or ["all"]: every agent)."""
        return sorted({n.strip() for n in self.agents.split(",") if n.strip()})

    @property
    def worker_linger_s(self) -> float:
        """The linger of this worker's producer: the command path's, unless it runs no command agent."""
        return self.producer_linger_s if self.runs_commands else self.projection_linger_s

    @property
    def runs_commands(self) -> bool:
        """Whether this worker runs a command agent (is on a command's path)."""
        names = self.agent_names
        return names in ([], ["all"]) or any(name in COMMAND_AGENTS for name in names)

    @property
    def worker_data_dir(self) -> Path:
        return self.worker_dir or self.state_dir / "worker"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use (never at import time)."""
    return Settings()
