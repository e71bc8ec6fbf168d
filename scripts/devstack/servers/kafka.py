"""Apache Kafka from Maven Central's jars: one KRaft node that is both broker and controller.

The Apache download site is out of reach, so `install` lets Maven resolve `kafka_2.13` and its
runtime closure (pinned in `devstack/data/kafka/pom.xml`) into one cached libs directory, and
`process` runs `kafka.Kafka` from it with the JVM directly.
"""

import base64
import hashlib
import shutil
import socket
import struct
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from devstack import datafiles
from devstack.config import INFRA, NODE_NETWORK
from devstack.install import apt_install
from devstack.paths import CACHE, INFRA_STATE, ensure_dir
from devstack.process import ManagedProcess, run
from devstack.servers.base import Server

POM = datafiles.path("kafka/pom.xml")
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
NODE_ID = 1


def kafka_version() -> str:
    """The Kafka release pinned in the pom, so the cache directory follows the pom."""
    version = ET.parse(POM).getroot().findtext("m:properties/m:kafka.version", namespaces=_POM_NS)
    if not version:
        raise RuntimeError(f"{POM} has no <kafka.version> property")
    return version


class Kafka(Server):
    name = "kafka"
    # Two JVM starts (storage format, then the broker) on a busy two-core machine.
    start_timeout = 120.0

    def __init__(
        self,
        port: int = INFRA.kafka_port,
        controller_port: int = INFRA.kafka_controller_port,
        state_dir: Path = INFRA_STATE,
        node_port: int | None = INFRA.kafka_node_port,
    ) -> None:
        self.port = port
        self.controller_port = controller_port
        self.node_port = node_port
        self.version = kafka_version()
        self.home = CACHE / "kafka" / self.version
        self.libs = self.home / "libs"
        self.root = state_dir / "kafka"
        self.data = self.root / "data"
        self.run_dir = state_dir / "run"

    @property
    def address(self) -> str:
        return f"{INFRA.host}:{self.port}"

    @property
    def _marker(self) -> Path:
        return self.home / "complete"

    def install(self) -> None:
        pom_digest = hashlib.sha256(POM.read_bytes()).hexdigest()
        if self._marker.exists() and self._marker.read_text().strip() == pom_digest:
            return
        if shutil.which("java") is None:
            apt_install("openjdk-17-jre-headless")
        if shutil.which("mvn") is None:
            apt_install("maven")
        print(f"fetching Apache Kafka {self.version} jars from Maven Central", flush=True)
        # A half-finished or older copy may hold jars of other versions: start from nothing.
        self._marker.unlink(missing_ok=True)
        shutil.rmtree(self.libs, ignore_errors=True)
        run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-Dmaven.repo.local={CACHE / 'm2'}",
                f"-DoutputDirectory={self.libs}",
                "-DincludeScope=runtime",
            ]
        )
        if not list(self.libs.glob(f"kafka_2.13-{self.version}.jar")):
            raise RuntimeError(f"Maven finished but {self.libs} has no kafka_2.13 jar")
        self._marker.write_text(pom_digest + "\n")

    def prepare(self) -> None:
        ensure_dir(self.data)
        log4j = datafiles.text("kafka/log4j2.properties")
        (self.root / "log4j2.properties").write_text(log4j)
        (self.root / "server.properties").write_text(self._server_properties())
        if (self.data / "meta.properties").exists():
            return
        run(
            [
                "java",
                *self._jvm_base(),
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                self._cluster_id(),
                "--config",
                str(self.root / "server.properties"),
            ]
        )

    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name=self.name,
            argv=[
                "java",
                "-Xms256m",
                "-Xmx768m",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true",
                *self._jvm_base(),
                "kafka.Kafka",
                str(self.root / "server.properties"),
            ],
            run_dir=self.run_dir,
            cwd=self.root,
            # SIGTERM runs Kafka's controlled shutdown: flush, checkpoint, leave the quorum.
            stop_timeout=60.0,
        )

    def ready(self) -> bool:
        """The broker serves a Metadata request that lists itself (it is registered, unfenced)."""
        try:
            brokers = _metadata_broker_ports(INFRA.host, self.port)
        except (OSError, struct.error, ValueError):
            return False
        return self.port in brokers

    def _jvm_base(self) -> list[str]:
        # `libs/*` is expanded by the JVM itself, not by a shell.
        return [
            f"-Dlog4j2.configurationFile={self.root / 'log4j2.properties'}",
            "-cp",
            str(self.libs / "*"),
        ]

    def _cluster_id(self) -> str:
        """The cluster id, made once and kept beside the data it was formatted with."""
        path = self.root / "cluster-id"
        if path.exists():
            return path.read_text().strip()
        cluster_id = _kafka_uuid()
        path.write_text(cluster_id + "\n")
        return cluster_id

    def _server_properties(self) -> str:
        host = INFRA.host
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@{host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{host}:{self.port},CONTROLLER://{host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": "3",
            "default.replication.factor": "1",
            "auto.create.topics.enable": "false",
            "log.retention.hours": "168",
            # One node: every internal topic must fit on it.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Nobody else is about to join: do not hold the first rebalance of a group for 3 s.
            "group.initial.rebalance.delay.ms": "0",
        }
        if self.node_port is not None:
            # For pods on the real node: bound on loopback like the others, advertised at the
            # node's address, which `devstack.servers.network` forwards here.
            settings["listeners"] += f",NODE://{host}:{self.node_port}"
            settings["advertised.listeners"] += f",NODE://{NODE_NETWORK.node_ip}:{self.node_port}"
            settings["listener.security.protocol.map"] += ",NODE:PLAINTEXT"
        return "".join(f"{key}={value}\n" for key, value in settings.items())


def _kafka_uuid() -> str:
    """A random id in Kafka's text form: URL-safe base64 of 16 bytes, unpadded, no leading '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


_METADATA_API_KEY = 3
_METADATA_VERSION = 4  # the oldest version Kafka 4 still serves (KIP-896); not yet "flexible"


def _metadata_broker_ports(host: str, port: int) -> set[int]:
    """Send one Metadata request for no topics; return the ports of the brokers it lists."""
    client_id = b"devstack"
    correlation_id = 1
    body = (
        struct.pack(">hhih", _METADATA_API_KEY, _METADATA_VERSION, correlation_id, len(client_id))
        + client_id
    )
    body += struct.pack(">i?", 0, False)  # topics: empty array (none); allow_auto_topic_creation
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.settimeout(2)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        response = _read_exactly(sock, size)
    (answered_id, _throttle_ms, broker_count) = struct.unpack_from(">iii", response, 0)
    if answered_id != correlation_id:
        raise ValueError(f"correlation id {answered_id} != {correlation_id}")
    offset = 12
    ports = set()
    for _ in range(broker_count):
        offset += 4  # node_id
        (host_len,) = struct.unpack_from(">h", response, offset)
        offset += 2 + host_len
        (broker_port, rack_len) = struct.unpack_from(">ih", response, offset)
        offset += 6 + max(rack_len, 0)
        ports.add(broker_port)
    return ports


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection mid-response")
        chunks += chunk
    return bytes(chunks)
