"""The control plane, and the real node when given, started and stopped as one unit."""

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from devstack.servers import network
from devstack.servers.base import Server
from devstack.servers.kube.client import KUBECONFIG
from devstack.servers.kube.control_plane import (
    Kine,
    KubeApiserver,
    KubeControllerManager,
    KubeScheduler,
)
from devstack.servers.kube.kwok import Kwok


class KubeCluster:
    """The control plane, and the real node when given, as one unit.

    Started in dependency order (the bridge first: the API server listens on it), stopped in
    reverse. `node` is `devstack.servers.node.real_node(...)`: containerd, kubelet,
    kube-proxy, CoreDNS and metrics-server.
    """

    def __init__(self, node: Sequence[Server] = ()) -> None:
        self.control_plane: list[Server] = [
            Kine(),
            KubeApiserver(),
            KubeControllerManager(),
            KubeScheduler(),
            Kwok(),
        ]
        self.servers: list[Server] = [*self.control_plane, *node]

    @property
    def kubeconfig(self) -> Path:
        return KUBECONFIG

    def start(self, progress: Callable[[str], None] = lambda _: None) -> Path:
        network.ensure()
        for server in self.servers:
            if not server.running():
                progress(f"  starting {server.name} ...")
                server.start()
        return KUBECONFIG

    def stop(self, progress: Callable[[str], None] = lambda _: None) -> None:
        for server in reversed(self.servers):
            if server.stop():
                progress(f"  stopped {server.name}")

    def running(self) -> bool:
        return all(server.running() for server in self.servers)


def main() -> None:
    parser = argparse.ArgumentParser(description="the local Kubernetes control plane")
    parser.add_argument("command", choices=("start", "stop", "status"))
    command = parser.parse_args().command
    cluster = KubeCluster()
    if command == "start":
        print(f"KUBECONFIG={cluster.start()}")
    elif command == "stop":
        cluster.stop()
    else:
        for server in cluster.servers:
            state = "running" if server.running() else "stopped"
            print(f"{server.name:26} {state:8} {server.address}")
