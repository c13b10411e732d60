"""Installs, starts, checks and stops the three real services on loopback, without Docker.

Kafka (KRaft, one node) and Cassandra run from their Maven Central artifacts (classpaths resolved by Maven
from ``services/*/pom.xml``, jars cached in ``~/.m2``); PostgreSQL is Debian's, as a project-local cluster.
All state lives under ``Settings.state_dir`` (default ``.state/``). Every operation is idempotent: a service
that already answers is left alone. ``up`` waits until each service really answers a request (a Kafka metadata
request, a CQL query, a SQL query) and, when one does not, fails with the tail of its log.

Run as ``python -m app.tools.services up|down|status`` (or ``cart services ...``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.settings import PROJECT_ROOT, Settings, get_settings

SERVICES_DIR = PROJECT_ROOT / "services"
START_TIMEOUT_S = 240.0


class ServiceError(RuntimeError):
    """A service could not be installed, started or reached; the message says which and why."""


def say(message: str) -> None:
    print(message, flush=True)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(name: str, ready: Callable[[], bool], log: Path, alive: Callable[[], bool]) -> None:
    """Poll ``ready`` with visible progress; fail with the log's tail on time-out or if the process died."""
    started = time.monotonic()
    last_report = 0.0
    while True:
        if ready():
            say(f"  {name} is ready ({time.monotonic() - started:.0f}s)")
            return
        elapsed = time.monotonic() - started
        if not alive():
            raise ServiceError(f"{name} exited while starting. Last lines of {log}:\n{tail(log)}")
        if elapsed > START_TIMEOUT_S:
            raise ServiceError(
                f"{name} did not answer within {START_TIMEOUT_S:.0f}s. Last lines of {log}:\n{tail(log)}"
            )
        if elapsed - last_report >= 5:
            say(f"  waiting for {name}... {elapsed:.0f}s")
            last_report = elapsed
        time.sleep(0.5)


def maven_classpath(component: str, target: Path) -> str:
    """Resolve (once; Maven caches the jars in ~/.m2) the runtime classpath of ``services/<component>``."""
    pom = SERVICES_DIR / component / "pom.xml"
    if not target.exists() or target.stat().st_mtime < pom.stat().st_mtime:
        if shutil.which("mvn") is None:
            raise ServiceError("Maven (mvn) is needed to fetch Kafka and Cassandra; install it (apt-get install maven)")
        say(f"  resolving {component} jars from Maven Central (first time only)...")
        target.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(pom), "dependency:build-classpath", f"-Dmdep.outputFile={target}"],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServiceError(f"Maven could not resolve {component}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return target.read_text().strip()


PR_SET_TIMERSLACK = 29  # prctl(2)
# Runs in the child, then executes the service in its place (same pid): a `preexec_fn` would do the same from inside
# `Popen`, but is not safe in a parent that has threads.
SET_SLACK_THEN_EXEC = (
    "import ctypes, os, sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(int(sys.argv[1]), int(sys.argv[2]), 0, 0, 0) != 0:\n"
    "    sys.exit(f'prctl(PR_SET_TIMERSLACK): {os.strerror(ctypes.get_errno())}')\n"
    "os.execvp(sys.argv[3], sys.argv[3:])\n"
)


def with_timer_slack(command: list[str], ns: int) -> list[str]:
    """`command`, started with a timer slack of `ns` (prctl(2), PR_SET_TIMERSLACK), which every thread it starts
    inherits; `command` itself when `ns` is 0 (the kernel's default, 50 us)."""
    if not ns:
        return command
    return [sys.executable, "-c", SET_SLACK_THEN_EXEC, str(PR_SET_TIMERSLACK), str(ns), *command]


def spawn(command: list[str], log: Path, pid_file: Path, cwd: Path) -> None:
    """Start a detached process (its own session, so Ctrl-C on `make run` leaves services up)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
    pid_file.write_text(str(process.pid))


def stop_pid(name: str, pid_file: Path, grace_s: float = 60.0) -> None:
    pid = read_pid(pid_file)
    if pid is None:
        say(f"  {name}: not running")
        pid_file.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and read_pid(pid_file) is not None:
        time.sleep(0.3)
    if read_pid(pid_file) is not None:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    say(f"  {name}: stopped")


def left_as_it_is(config_file: Path, wanted: str, pid_file: Path) -> bool:
    """Whether a running service stays as it runs: it runs the configuration this code writes, or another checkout
    started it (no pid file here). Otherwise `up` restarts it, so an upgrade cannot leave, say, Cassandra without
    password authentication or in another commit log mode."""
    return (config_file.is_file() and config_file.read_text() == wanted) or read_pid(pid_file) is None


GC_LOG = "-Xlog:gc:file=gc.log:time,uptime:filecount=2,filesize=20m"
"""Each JVM logs its collector's pauses to gc.log in its home (the services run there): what a stall is set beside."""

# The pause target of Kafka's own launcher (kafka-run-class.sh): with G1's default (200 ms) the broker's young pauses
# took 53-59 ms every 10 s under load, each holding up every request; regions of 4 MiB so that a fetch's or a
# produce's buffer of up to a MiB is not a humongous object, any of which may start a concurrent cycle (16 did
# in one test run with 1 MiB regions and a 35% occupancy threshold; docs/benchmarks.md, 2026-12-07, midday).
KAFKA_GC_FLAGS = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:G1HeapRegionSize=4m", GC_LOG]

# With memtables on the heap (and regions of 1 MiB, the size of a memtable's slab, so each slab a humongous object),
# Cassandra's young pauses took 60-110 ms and its slabs started a concurrent cycle each (docs/benchmarks.md,
# 2026-12-07, midday). The memtables are off the heap now (cassandra.yaml); these keep the pauses short.
CASSANDRA_GC_FLAGS = ["-XX:G1HeapRegionSize=4m", "-XX:MaxGCPauseMillis=25", GC_LOG]


@dataclass
class Kafka:
    settings: Settings

    @property
    def home(self) -> Path:
        return self.settings.state_dir / "kafka"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    def answers(self) -> bool:
        host, port = self.settings.kafka_host_port
        if not port_open(host, port):
            return False
        return asyncio.run(self._metadata())

    async def _metadata(self) -> bool:
        from aiokafka import AIOKafkaClient

        # The PLAINTEXT listener: the local broker always has one, whatever the clients are configured to use.
        host, _ = self.settings.kafka_host_port
        client = AIOKafkaClient(bootstrap_servers=f"{host}:{self.plaintext_port}", request_timeout_ms=5000)
        try:
            await client.bootstrap()
            return bool(client.cluster.brokers())
        except Exception:
            return False
        finally:
            await client.close()

    @property
    def plaintext_port(self) -> int:
        """The PLAINTEXT listener's port: kafka_bootstrap's, unless the clients use the secure one (then 9092)."""
        s = self.settings
        return s.kafka_host_port[1] if s.kafka_security_protocol == "PLAINTEXT" else 9092

    def tls(self) -> tuple[Path, str]:
        """The broker's key and self-signed certificate (a PKCS12 keystore, made once with the JDK's keytool) and
        the keystore's password; the certificate also goes to `<credentials_dir>/kafka-ca.pem` for the clients."""
        s = self.settings
        keystore, ca = s.credentials_dir / "kafka-tls.p12", s.credentials_dir / "kafka-ca.pem"
        password = ensure_password(s, "kafka-keystore-password")
        if not keystore.is_file():
            host = s.kafka_host_port[0]
            # The passwords go through the environment (`:env`), not the command line, which `ps` shows anyone.
            steps = [
                ["keytool", "-genkeypair", "-alias", "kafka", "-keyalg", "RSA", "-keysize", "2048",
                 "-validity", "3650", "-dname", "CN=localhost", "-ext", f"SAN=ip:{host},dns:localhost",
                 "-keystore", str(keystore), "-storetype", "PKCS12", "-storepass:env", "CART_KEYSTORE_PASSWORD",
                 "-keypass:env", "CART_KEYSTORE_PASSWORD"],
                ["keytool", "-exportcert", "-rfc", "-alias", "kafka", "-keystore", str(keystore),
                 "-storepass:env", "CART_KEYSTORE_PASSWORD", "-file", str(ca)],
            ]  # fmt: skip
            env = {**os.environ, "CART_KEYSTORE_PASSWORD": password}
            for step in steps:
                result = subprocess.run(step, capture_output=True, text=True, env=env)
                if result.returncode != 0:
                    keystore.unlink(missing_ok=True)
                    raise ServiceError(f"keytool failed: {result.stdout[-1000:]}{result.stderr[-1000:]}")
            keystore.chmod(0o600)
        return keystore, password

    def config(self) -> str:
        host, _ = self.settings.kafka_host_port
        port, secure = self.plaintext_port, self.settings.kafka_secure_port
        ctl = self.settings.kafka_controller_port
        keystore, keystore_password = self.tls()
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{host}:{ctl}",
                # PLAINTEXT for the local stack's own clients; SASL_SSL (SCRAM over TLS) for clients configured so.
                f"listeners=PLAINTEXT://{host}:{port},SASL_SSL://{host}:{secure},CONTROLLER://{host}:{ctl}",
                f"advertised.listeners=PLAINTEXT://{host}:{port},SASL_SSL://{host}:{secure}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
                "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
                f"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={scram}",
                f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram}",
                f"listener.name.sasl_ssl.ssl.keystore.location={keystore}",
                f"listener.name.sasl_ssl.ssl.keystore.password={keystore_password}",
                "listener.name.sasl_ssl.ssl.keystore.type=PKCS12",
                f"log.dirs={self.home / 'data'}",
                "num.partitions=1",
                # Topics are created on purpose (app.stores.migrations, Faust): a typo must fail, not make a topic.
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                # One broker: Kafka transactions (Faust's exactly_once) need the transaction log at RF 1.
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "log.retention.hours=-1",
                # Not properties: the broker's collector flags, written here so that `up` restarts a broker started
                # with others.
                f"# {' '.join(KAFKA_GC_FLAGS)}",
                "",
            ]
        )

    def up(self) -> None:
        host, _ = self.settings.kafka_host_port
        properties = self.home / "server.properties"
        if self.answers():
            if left_as_it_is(properties, self.config(), self.pid_file):
                say(f"Kafka: already running on {host}:{self.plaintext_port}")
                self.ensure_scram_user()
                return
            say("Kafka: running with another configuration (an earlier version's?); restarting it with this one")
            self.down()
        say(f"Kafka: starting on {host}:{self.plaintext_port} (SASL_SSL on {self.settings.kafka_secure_port})")
        self.home.mkdir(parents=True, exist_ok=True)
        classpath = maven_classpath("kafka", self.home / "classpath.txt")
        properties.touch(mode=0o600)
        properties.chmod(0o600)  # it holds the keystore's password
        properties.write_text(self.config())
        log4j = self.home / "log4j.properties"
        log4j.write_text(
            "log4j.rootLogger=INFO, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka=INFO\nlog4j.logger.org.apache.kafka=INFO\nlog4j.logger.state.change.logger=WARN\n"
        )
        java = ["java", "-Xms512m", "-Xmx512m", f"-Dlog4j.configuration=file:{log4j}", "-cp", classpath]
        if not (self.home / "data" / "meta.properties").exists():
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            result = subprocess.run(
                [
                    *java,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cid,
                    "-c",
                    str(properties),
                    "--ignore-formatted",
                ],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise ServiceError(f"Kafka storage format failed:\n{result.stdout}{result.stderr}")
        spawn([*java, *KAFKA_GC_FLAGS, "kafka.Kafka", str(properties)], self.log, self.pid_file, self.home)
        wait_until("Kafka", self.answers, self.log, lambda: read_pid(self.pid_file) is not None)
        self.ensure_scram_user()

    def ensure_scram_user(self) -> None:
        """The SCRAM credentials of `kafka_username` with the generated password (once per password: a marker
        file holds a digest of what was set)."""
        s = self.settings
        if read_pid(self.pid_file) is None:  # a broker another checkout started: its users are its own
            return
        password = s.kafka_password.get_secret_value() if s.kafka_password else ensure_password(s, "kafka-password")
        marker = self.home / "scram-user"
        digest = hashlib.sha256(f"{s.kafka_username}:{password}".encode()).hexdigest()
        if marker.is_file() and marker.read_text().strip() == digest:
            return
        classpath = maven_classpath("kafka", self.home / "classpath.txt")
        host, _ = s.kafka_host_port
        # A single-file Java program with Kafka's own Admin client: the password travels in the environment,
        # never on a command line (ConfigCommand takes it there, and its --add-config-file refuses SCRAM).
        env = {
            **os.environ,
            "CART_KAFKA_ADMIN_BOOTSTRAP": f"{host}:{self.plaintext_port}",
            "CART_SCRAM_USER": s.kafka_username,
            "CART_SCRAM_PASSWORD": password,
        }
        result = subprocess.run(
            ["java", "-Xmx256m", "-cp", classpath, str(SERVICES_DIR / "kafka" / "SetScram.java")],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        if result.returncode != 0:
            said = (result.stdout + result.stderr).replace(password, "***")  # never the password itself
            raise ServiceError(f"Kafka: could not set the SCRAM credentials of {s.kafka_username}: {said[-1500:]}")
        marker.write_text(digest + "\n")
        say(f"  Kafka: SCRAM user {s.kafka_username} with a generated password on SASL_SSL port {s.kafka_secure_port}")

    def down(self) -> None:
        stop_pid("Kafka", self.pid_file)


CASSANDRA_JVM_FLAGS = [
    "-Xss256k",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.net.preferIPv4Stack=true",
    "-Dchronicle.analytics.disable=true",
    "-Djdk.attach.allowAttachSelf=true",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-XX:+UseG1GC",
    *CASSANDRA_GC_FLAGS,
    *[
        f"--add-exports={m}=ALL-UNNAMED"
        for m in (
            "java.base/jdk.internal.misc",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.management/com.sun.jmx.remote.security",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
        )
    ],
    *[
        f"--add-opens={m}=ALL-UNNAMED"
        for m in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.lang.reflect",
            "java.base/java.lang",
            "java.base/java.util",
            "java.base/java.nio",
        )
    ],
]


@dataclass
class Cassandra:
    settings: Settings

    @property
    def home(self) -> Path:
        return self.settings.state_dir / "cassandra"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "cassandra.pid"

    @property
    def host(self) -> str:
        return self.settings.cassandra_contact_points[0]

    def _query(self, user: str, password: str, cql: str) -> str:
        """Run one statement as `user`: "ok", "refused" (the credentials) or "down"."""
        from cassandra import AuthenticationFailed
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import Cluster, NoHostAvailable

        cluster = Cluster(
            [self.host],
            port=self.settings.cassandra_port,
            connect_timeout=5,
            auth_provider=PlainTextAuthProvider(user, password),
        )
        try:
            cluster.connect().execute(cql, timeout=10)
            return "ok"
        except NoHostAvailable as error:
            refused = any(isinstance(e, AuthenticationFailed) for e in error.errors.values())
            return "refused" if refused else "down"
        except AuthenticationFailed:
            return "refused"
        except Exception:
            return "down"
        finally:
            cluster.shutdown()

    def commitlog(self) -> str:
        sync, window_ms = self.settings.cassandra_commitlog_sync, self.settings.cassandra_commitlog_window_ms
        if sync == "group":
            return f"commitlog_sync: group\ncommitlog_sync_group_window: {window_ms}ms"
        if sync == "batch":
            return "commitlog_sync: batch"
        return "commitlog_sync: periodic\ncommitlog_sync_period: 10000ms"

    def answers(self) -> bool:
        """Up and answering a login (ours, or a refusal of it: on first start, before `secure`, there is no role)."""
        if not port_open(self.host, self.settings.cassandra_port):
            return False
        # Refused counts as up: `secure` says what is wrong with the credentials.
        return self._query(self.settings.cassandra_username, self.password(), PROBE_CQL) in ("ok", "refused")

    def password(self) -> str:
        s = self.settings
        given = s.cassandra_password
        return given.get_secret_value() if given is not None else ensure_password(s, "cassandra-password")

    def secure(self) -> None:
        """Our role with the generated password, and the well-known default superuser disabled. Idempotent."""
        s = self.settings
        password = self.password()
        if self._query(s.cassandra_username, password, PROBE_CQL) == "ok":
            return
        # CQL takes no bind markers in role statements: the name and the password are quoted here.
        role, quoted = '"' + s.cassandra_username.replace('"', '""') + '"', password.replace("'", "''")
        create = f"CREATE ROLE IF NOT EXISTS {role} WITH PASSWORD = '{quoted}' AND LOGIN = true AND SUPERUSER = true"
        deadline = time.monotonic() + 60
        while self._query("cassandra", "cassandra", create) != "ok":
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"Cassandra refuses role {s.cassandra_username} with the password in {s.credentials_dir} and the "
                    "default superuser: the cluster was secured with another password (delete .state/cassandra to "
                    "start it afresh)"
                )
            time.sleep(1)  # the default superuser is created a moment after the port opens
        retire = f"ALTER ROLE cassandra WITH PASSWORD = '{secrets.token_urlsafe(24)}' AND LOGIN = false"
        if self._query(s.cassandra_username, password, retire) != "ok":
            raise ServiceError("Cassandra: could not disable the default superuser `cassandra`")
        say(f"  Cassandra: role {s.cassandra_username} with a generated password; the default superuser is disabled")

    def config(self) -> str:
        host = self.host
        return f"""cluster_name: shopping-cart
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
# Logins with a password (the generated one, see `secure`); every role here is a superuser, so no authorizer.
authenticator: PasswordAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
{self.commitlog()}
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{host}:7000"
listen_address: {host}
rpc_address: {host}
storage_port: 7000
native_transport_port: {self.settings.cassandra_port}
start_native_transport: true
auto_snapshot: false
data_file_directories:
  - {self.home / "data"}
commitlog_directory: {self.home / "commitlog"}
saved_caches_directory: {self.home / "saved_caches"}
hints_directory: {self.home / "hints"}
cdc_raw_directory: {self.home / "cdc_raw"}
concurrent_reads: 8
concurrent_writes: 8
# The journal copies a batch's events to the member-keyed table in unlogged batches of a few dozen rows.
batch_size_warn_threshold: 64KiB
unlogged_batch_across_partitions_warn_threshold: 1000
concurrent_counter_writes: 8
compaction_throughput: {self.settings.cassandra_compaction_mib_s}MiB/s
# Memtables off the heap: on it, the collector copied them at every young pause (see CASSANDRA_GC_FLAGS).
memtable_allocation_type: offheap_objects
# Started with the collector flags {" ".join(CASSANDRA_GC_FLAGS)}
# Started with a timer slack of {self.settings.cassandra_timer_slack_ns} ns (Settings.cassandra_timer_slack_ns): not a
# setting of this file, written here so that `up` restarts a Cassandra started with another.
"""

    def up(self) -> None:
        yaml = self.home / "cassandra.yaml"
        if self.answers():
            if left_as_it_is(yaml, self.config(), self.pid_file):
                say(f"Cassandra: already running on {self.host}:{self.settings.cassandra_port}")
                self.secure()
                return
            say("Cassandra: running with another configuration (an earlier version's?); restarting it with this one")
            self.down()
        say(f"Cassandra: starting on {self.host}:{self.settings.cassandra_port} (cold start takes 20-60s)")
        self.home.mkdir(parents=True, exist_ok=True)
        classpath = maven_classpath("cassandra", self.home / "classpath.txt")
        yaml.write_text(self.config())
        logback = self.home / "logback.xml"
        logback.write_text(
            '<configuration><appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender"><encoder>'
            "<pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder></appender>"
            '<logger name="org.apache.cassandra" level="INFO"/>'
            '<root level="WARN"><appender-ref ref="STDOUT"/></root></configuration>\n'
        )
        jamm = [p for p in classpath.split(":") if "/jamm-" in p]
        command = [
            "java",
            "-Xms1g",
            "-Xmx1g",
            *CASSANDRA_JVM_FLAGS,
            *([f"-javaagent:{jamm[0]}"] if jamm else []),
            f"-Dcassandra.config=file://{yaml}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.storagedir={self.home}",
            f"-Dcassandra.logdir={self.home}",
            f"-Dlogback.configurationFile={logback}",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.load_ring_state=false",
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-Dcassandra.jmx.local.port=7199",
            "-cp",
            classpath,
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        spawn(with_timer_slack(command, self.settings.cassandra_timer_slack_ns), self.log, self.pid_file, self.home)
        wait_until("Cassandra", self.answers, self.log, lambda: read_pid(self.pid_file) is not None)
        self.secure()

    def down(self) -> None:
        stop_pid("Cassandra", self.pid_file)


def ensure_password(settings: Settings, name: str) -> str:
    """The local service's generated password (`<credentials_dir>/name`, made on first use, readable by its owner
    only). Made atomically: a process racing this one reads the same password, never a half-written file."""
    path = settings.credentials_dir / name
    if path.is_file() and not path.read_text().strip():
        path.unlink()  # an empty file (a crash between create and write, before this was atomic) is no password
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        draft = path.with_name(f".{name}.{os.getpid()}")
        draft.write_text(secrets.token_urlsafe(24) + "\n")
        draft.chmod(0o600)
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs stands
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip()


PROBE_CQL = "SELECT release_version FROM system.local"

# Who may log in to the local cluster: over TCP only with a password; on its socket only the `postgres` OS user.
PG_HBA = """# Written by `cart services up` (app/tools/services.py).
local   all   all                  peer
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


def postgres_can_reach(folder: Path) -> bool:
    probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(folder)], capture_output=True)
    return probe.returncode == 0


@dataclass
class Postgres:
    settings: Settings

    @property
    def home(self) -> Path:
        # The server runs as the `postgres` user, which must reach its folder; a checkout under /root is not
        # reachable, and then the cluster lives in /var/tmp under a name tied to this checkout.
        preferred = self.settings.state_dir / "postgres"
        if os.geteuid() != 0 or postgres_can_reach(self.settings.state_dir.parent):
            return preferred
        digest = hashlib.sha1(str(self.settings.state_dir).encode()).hexdigest()[:10]
        return Path(f"/var/tmp/shopping-cart-postgres-{digest}")

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    def bin(self, name: str) -> str:
        candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
        if not candidates:
            self.install()
            candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
        if not candidates:
            raise ServiceError(f"PostgreSQL's {name} is missing after installing it")
        return str(candidates[0])

    def install(self) -> None:
        if os.geteuid() != 0:
            raise ServiceError("PostgreSQL is not installed; run as root or `sudo apt-get install -y postgresql`")
        say("  installing PostgreSQL from Debian's packages (first time only)...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "postgresql"]):
            result = subprocess.run(step, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                raise ServiceError(f"{' '.join(step)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def as_postgres(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def answers(self, database: str = "postgres") -> bool:
        if not port_open(self.settings.postgres_host, self.settings.postgres_port):
            return False
        return asyncio.run(self._query(database))

    async def _query(self, database: str) -> bool:
        import asyncpg

        s = self.settings
        try:
            conn = await asyncpg.connect(
                host=s.postgres_host,
                port=s.postgres_port,
                user=s.postgres_user,
                password=s.postgres_secret,
                database=database,
                timeout=5,
            )
        except Exception:
            return False
        try:
            return bool(await conn.fetchval("SELECT 1") == 1)
        finally:
            await conn.close()

    def up(self) -> None:
        s = self.settings
        if self.answers():
            say(f"PostgreSQL: already running on {s.postgres_host}:{s.postgres_port}")
        else:
            say(f"PostgreSQL: starting on {s.postgres_host}:{s.postgres_port}")
            initdb, pg_ctl = self.bin("initdb"), self.bin("pg_ctl")
            self.home.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(self.home, "postgres", "postgres")
            if not (self.data / "PG_VERSION").exists():
                result = subprocess.run(
                    self.as_postgres(
                        [initdb, "-D", str(self.data), "-U", s.postgres_user, "--auth=trust", "-E", "UTF8"]
                    ),
                    capture_output=True,
                    text=True,
                )
                if result.returncode != 0:
                    raise ServiceError(f"initdb failed:\n{result.stdout}{result.stderr}")
            sockets = f"-c unix_socket_directories={self.home}"
            options = f"-p {s.postgres_port} -c listen_addresses={s.postgres_host} {sockets}"
            result = subprocess.run(
                self.as_postgres(
                    [
                        pg_ctl,
                        "-D",
                        str(self.data),
                        "-l",
                        str(self.log),
                        "-w",
                        "-t",
                        "120",
                        "start",
                        "-o",
                        options,
                    ]
                ),
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise ServiceError(f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{tail(self.log)}")
            wait_until("PostgreSQL", self.answers, self.log, lambda: True)
        self.secure()
        self.create_database()

    def secure(self) -> None:
        """The superuser's generated password, and password (SCRAM) logins over TCP. Idempotent; the first call on
        a cluster made with `--auth=trust` sets the password while trust still lets it in, then closes the door."""
        asyncio.run(self._secure())

    async def _secure(self) -> None:
        import asyncpg

        s = self.settings
        given = s.postgres_password
        password = given.get_secret_value() if given is not None else ensure_password(s, "postgres-password")
        try:
            conn = await asyncpg.connect(
                host=s.postgres_host, port=s.postgres_port, user=s.postgres_user, password=password,
                database="postgres", timeout=10,
            )  # fmt: skip
        except asyncpg.InvalidPasswordError as error:
            raise ServiceError(
                f"PostgreSQL refuses {s.postgres_user} with the password in {s.credentials_dir}: the cluster was "
                f"secured with another one (delete {self.home} to start it afresh)"
            ) from error
        try:
            theirs, ours = await asyncio.to_thread(
                lambda d: (os.path.realpath(d), os.path.realpath(self.data)), await conn.fetchval("SHOW data_directory")
            )
            if theirs != ours:
                return  # a server this checkout did not make (another checkout's, the system's): left as it is
            hba = await conn.fetchval("SHOW hba_file")
            wanted = PG_HBA.format(user=s.postgres_user)
            if await asyncio.to_thread(Path(hba).read_text) == wanted:
                return
            await conn.execute("SET password_encryption = 'scram-sha-256'")
            # A parameter cannot be bound in ALTER ROLE: the name and the password are quoted here.
            role, quoted = '"' + s.postgres_user.replace('"', '""') + '"', password.replace("'", "''")
            await conn.execute(f"ALTER ROLE {role} WITH PASSWORD '{quoted}'")
            await asyncio.to_thread(Path(hba).write_text, wanted)
            await conn.fetchval("SELECT pg_reload_conf()")
            say(f"  PostgreSQL: {s.postgres_user} logs in with a generated password (SCRAM) from now on")
        finally:
            await conn.close()

    def create_database(self) -> None:
        asyncio.run(self._create_database())

    async def _create_database(self) -> None:
        import asyncpg

        s = self.settings
        conn = await asyncpg.connect(
            host=s.postgres_host,
            port=s.postgres_port,
            user=s.postgres_user,
            password=s.postgres_secret,
            database="postgres",
            timeout=10,
        )
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", s.postgres_database)
            if not exists:
                # The name is validated by Settings (lower-case identifier), so quoting it is safe.
                await conn.execute(f'CREATE DATABASE "{s.postgres_database}"')
                say(f"  created database {s.postgres_database}")
        finally:
            await conn.close()

    def down(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            say("  PostgreSQL: not running")
            return
        subprocess.run(
            self.as_postgres([self.bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            text=True,
        )
        say("  PostgreSQL: stopped")


def all_services(settings: Settings) -> list[Kafka | Cassandra | Postgres]:
    return [Kafka(settings), Cassandra(settings), Postgres(settings)]


def up(settings: Settings) -> None:
    if shutil.which("java") is None:
        raise ServiceError("Java 17 is needed for Kafka and Cassandra (apt-get install openjdk-17-jre-headless)")
    for service in all_services(settings):
        service.up()


def down(settings: Settings) -> None:
    say("Stopping services")
    for service in reversed(all_services(settings)):
        service.down()


def status(settings: Settings) -> bool:
    """Print what runs where; True when all three answer."""
    host, port = settings.kafka_host_port
    rows = [
        ("Kafka", f"{host}:{port}", Kafka(settings).answers()),
        (
            "Cassandra",
            f"{settings.cassandra_contact_points[0]}:{settings.cassandra_port}",
            Cassandra(settings).answers(),
        ),
        ("PostgreSQL", f"{settings.postgres_host}:{settings.postgres_port}", Postgres(settings).answers()),
    ]
    for name, where, ok in rows:
        say(f"{name:<11} {where:<22} {'up' if ok else 'down'}")
    say(f"state: {settings.state_dir}")
    return all(ok for _, _, ok in rows)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    action = args[0] if args else "status"
    settings = get_settings()
    try:
        if action == "up":
            up(settings)
        elif action == "down":
            down(settings)
        elif action == "status":
            return 0 if status(settings) else 1
        else:
            say("usage: python -m app.tools.services up|down|status")
            return 2
    except ServiceError as error:
        say(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
