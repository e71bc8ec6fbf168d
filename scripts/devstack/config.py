"""Ports and names of the local platform.

Backing servers (infra) are shared by every profile on the machine. A profile is one copy of the
platform on top of them: `dev` is what `make up` runs, `test` is what `make test` runs. Profiles
never see each other's data: each has its own databases, Redis database, Mongo database and
Kafka topic prefix, and its own service and gateway ports.
"""

import os
from dataclasses import dataclass

from socialhub.contracts.topology import Service


def _port(env: str, default: int) -> int:
    return int(os.environ.get(env, default))


@dataclass(frozen=True)
class Infra:
    # All below 32768, outside Linux's range for outgoing connections' local ports, so a busy
    # machine's client sockets never hold a port a server is about to bind.
    postgres_port: int = _port("SOCIALHUB_POSTGRES_PORT", 21432)
    redis_port: int = _port("SOCIALHUB_REDIS_PORT", 21379)
    kafka_port: int = _port("SOCIALHUB_KAFKA_PORT", 21092)
    kafka_controller_port: int = _port("SOCIALHUB_KAFKA_CONTROLLER_PORT", 21093)
    mongo_port: int = _port("SOCIALHUB_MONGO_PORT", 21017)
    smtp_port: int = _port("SOCIALHUB_SMTP_PORT", 21025)
    # The local Kubernetes control plane (operator tests): kine's etcd API, the API server and
    # the secure (health) ports of the controller manager, the scheduler and kwok.
    kube_etcd_port: int = _port("SOCIALHUB_KUBE_ETCD_PORT", 21230)
    kube_apiserver_port: int = _port("SOCIALHUB_KUBE_APISERVER_PORT", 21443)
    kube_controller_manager_port: int = _port("SOCIALHUB_KUBE_CONTROLLER_MANAGER_PORT", 21257)
    kube_scheduler_port: int = _port("SOCIALHUB_KUBE_SCHEDULER_PORT", 21259)
    kwok_port: int = _port("SOCIALHUB_KWOK_PORT", 21247)
    # The real node (devstack.servers.node): the kubelet's API and health ports, kube-proxy's
    # metrics and health ports, metrics-server's API and CoreDNS's health and readiness ports.
    kubelet_port: int = _port("SOCIALHUB_KUBELET_PORT", 21250)
    kubelet_healthz_port: int = _port("SOCIALHUB_KUBELET_HEALTHZ_PORT", 21248)
    kube_proxy_metrics_port: int = _port("SOCIALHUB_KUBE_PROXY_METRICS_PORT", 21256)
    kube_proxy_healthz_port: int = _port("SOCIALHUB_KUBE_PROXY_HEALTHZ_PORT", 21249)
    metrics_server_port: int = _port("SOCIALHUB_METRICS_SERVER_PORT", 21251)
    coredns_health_port: int = _port("SOCIALHUB_COREDNS_HEALTH_PORT", 21252)
    coredns_ready_port: int = _port("SOCIALHUB_COREDNS_READY_PORT", 21253)
    # Kafka's listener for pods: bound on 127.0.0.1, advertised at the node's address.
    kafka_node_port: int = _port("SOCIALHUB_KAFKA_NODE_PORT", 21094)
    host: str = "127.0.0.1"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"


INFRA = Infra()


@dataclass(frozen=True)
class NodeNetwork:
    """The real node's network: a bridge of our own, private addresses that stay on this machine.

    The node's address is the bridge's: the API server, CoreDNS, the kubelet and metrics-server
    listen there, and pods reach the backing servers (on 127.0.0.1) through it.
    """

    bridge: str = "shbr0"
    node_ip: str = "10.244.0.1"
    pod_cidr: str = "10.244.0.0/24"
    service_cidr: str = "10.96.0.0/16"
    # The first address of the service range is the `kubernetes` Service (the API server).
    api_service_ip: str = "10.96.0.1"
    node_name: str = "socialhub-node"
    cluster_domain: str = "cluster.local"


NODE_NETWORK = NodeNetwork()


@dataclass(frozen=True)
class Profile:
    name: str
    port_offset: int
    gateway_port: int
    redis_db: int
    # settings that differ from the services' defaults in this profile
    env: tuple[tuple[str, str], ...] = ()
    # the gateway's per-IP request rate (requests/s) and burst
    gateway_rate: tuple[int, int] = (50, 100)
    # False: the profile runs on the real node (`devstack.cluster`), not as local processes;
    # its gateway port is then the gateway Service's NodePort on 127.0.0.1.
    local: bool = True

    def port(self, service: Service) -> int:
        return service.port + self.port_offset

    def database(self, service: Service) -> str:
        suffix = "" if self.name == "dev" else f"_{self.name}"
        return f"socialhub_{service.name}{suffix}"

    @property
    def topic_prefix(self) -> str:
        return "" if self.name == "dev" else f"{self.name}."

    @property
    def mongo_database(self) -> str:
        return "socialhub" if self.name == "dev" else f"socialhub_{self.name}"


PROFILES = {
    "dev": Profile("dev", 0, _port("SOCIALHUB_GATEWAY_PORT", 8080), redis_db=0),
    # Every test request comes from 127.0.0.1: per-IP account limits would throttle the suite
    # itself. The limits have their own tests with their own settings.
    "test": Profile(
        "test",
        20000,
        _port("SOCIALHUB_TEST_GATEWAY_PORT", 28080),
        redis_db=1,
        env=(("SIGNUP_LIMIT_PER_IP", "100000"), ("LOGIN_LIMIT_PER_IP", "100000")),
    ),
    # `make bench`: load comes from one address, so per-IP limits would measure 429s, and a
    # JSON access line per request would measure logging.
    "bench": Profile(
        "bench",
        10000,
        _port("SOCIALHUB_BENCH_GATEWAY_PORT", 18080),
        redis_db=2,
        env=(
            ("SIGNUP_LIMIT_PER_IP", "100000000"),
            ("LOGIN_LIMIT_PER_IP", "100000000"),
            ("ACCESS_LOG", "false"),
            ("LOG_LEVEL", "WARNING"),
        ),
        gateway_rate=(1_000_000, 1_000_000),
    ),
    # `make cluster` and the tests on the real node (devstack.cluster): the same backing
    # servers, data of their own.
    "cluster": Profile(
        "cluster", 0, _port("SOCIALHUB_CLUSTER_GATEWAY_PORT", 30080), redis_db=3, local=False
    ),
    "e2e": Profile(
        "e2e",
        0,
        _port("SOCIALHUB_E2E_GATEWAY_PORT", 30081),
        redis_db=4,
        env=(("SIGNUP_LIMIT_PER_IP", "100000"), ("LOGIN_LIMIT_PER_IP", "100000")),
        gateway_rate=(100_000, 100_000),
        local=False,
    ),
}
