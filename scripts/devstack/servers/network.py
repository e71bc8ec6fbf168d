"""The real node's network on this machine: one bridge and two iptables chains of our own.

- The bridge `shbr0` carries the node's address (10.244.0.1); the CNI bridge plugin attaches
  every pod to it with an address from 10.244.0.0/24.
- `SOCIALHUB-FORWARD` (filter FORWARD) drops whatever a pod sends off the pod network, so pod
  traffic never leaves the machine (there is no masquerade either).
- `SOCIALHUB-BACKING` (nat PREROUTING) forwards the backing servers' ports at the node's
  address to the servers on 127.0.0.1 (with `route_localnet` on the bridge): pods reach `make
  up`'s own PostgreSQL, Redis, FerretDB, Kafka's node listener and the SMTP sink, which all
  keep listening on loopback only. (The API server listens on the node's address itself: pods
  reach it as the `kubernetes` Service, which kube-proxy already rewrites once.)

`ensure()` is idempotent: it creates what is missing and rewrites our chains' rules.
"""

from pathlib import Path

from devstack.config import INFRA, NODE_NETWORK
from devstack.install import apt_install
from devstack.process import run

FORWARD_CHAIN = "SOCIALHUB-FORWARD"
BACKING_CHAIN = "SOCIALHUB-BACKING"


def backing_ports() -> tuple[int, ...]:
    """The loopback servers pods may reach at the node's address."""
    return (
        INFRA.postgres_port,
        INFRA.redis_port,
        INFRA.mongo_port,
        INFRA.smtp_port,
        INFRA.kafka_node_port,
    )


def _sysctl(key: str, value: str) -> None:
    Path("/proc/sys", *key.split(".")).write_text(value + "\n")


def _ip(*args: str, check: bool = True) -> str:
    return run(["ip", *args], check=check).stdout


def _iptables(*args: str, check: bool = True) -> bool:
    return run(["iptables", "-w", *args], check=check).returncode == 0


def _chain(table: str, chain: str, parent: str) -> None:
    """An empty chain of ours, jumped to first from `parent`."""
    if not _iptables("-t", table, "-N", chain, check=False):
        _iptables("-t", table, "-F", chain)
    if not _iptables("-t", table, "-C", parent, "-j", chain, check=False):
        _iptables("-t", table, "-I", parent, "1", "-j", chain)


def ensure_bridge() -> None:
    net = NODE_NETWORK
    if _ip("link", "show", net.bridge, check=False) == "":
        _ip("link", "add", net.bridge, "type", "bridge")
    prefix = net.pod_cidr.split("/")[1]
    if f"{net.node_ip}/{prefix}" not in _ip("-4", "addr", "show", "dev", net.bridge):
        _ip("addr", "add", f"{net.node_ip}/{prefix}", "dev", net.bridge)
    _ip("link", "set", net.bridge, "up")


def ensure() -> None:
    """The bridge, the kernel settings pods need, and our two chains."""
    apt_install("iptables", "iproute2", "conntrack")
    net = NODE_NETWORK
    ensure_bridge()
    _sysctl("net.ipv4.ip_forward", "1")
    _sysctl("net.bridge.bridge-nf-call-iptables", "1")
    _sysctl(f"net.ipv4.conf.{net.bridge}.route_localnet", "1")

    _chain("filter", FORWARD_CHAIN, "FORWARD")
    _iptables("-A", FORWARD_CHAIN, "-s", net.pod_cidr, "-d", net.pod_cidr, "-j", "ACCEPT")
    _iptables("-A", FORWARD_CHAIN, "-s", net.pod_cidr, "-j", "DROP")
    _iptables("-A", FORWARD_CHAIN, "-d", net.pod_cidr, "-j", "ACCEPT")

    _chain("nat", BACKING_CHAIN, "PREROUTING")
    for port in backing_ports():
        _iptables(
            "-t",
            "nat",
            "-A",
            BACKING_CHAIN,
            "-s",
            net.pod_cidr,
            "-d",
            net.node_ip,
            "-p",
            "tcp",
            "--dport",
            str(port),
            "-j",
            "DNAT",
            "--to-destination",
            f"{INFRA.host}:{port}",
        )


def remove() -> None:
    """Our chains and the bridge; what kube-proxy wrote it removes itself (`--cleanup`)."""
    for table, chain, parent in (
        ("filter", FORWARD_CHAIN, "FORWARD"),
        ("nat", BACKING_CHAIN, "PREROUTING"),
    ):
        while _iptables("-t", table, "-D", parent, "-j", chain, check=False):
            pass
        _iptables("-t", table, "-F", chain, check=False)
        _iptables("-t", table, "-X", chain, check=False)
    _ip("link", "delete", NODE_NETWORK.bridge, check=False)
