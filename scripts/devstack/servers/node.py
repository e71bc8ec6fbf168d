"""The real node: kubelet, kube-proxy, CoreDNS and metrics-server as processes on this machine.

They run beside the control plane of `devstack.servers.kube`, as root (the kubelet mounts
volumes, kube-proxy writes iptables), with every file under `.state/infra/node`. The node's
address is the bridge's (`NODE_NETWORK.node_ip`); the kubelet, CoreDNS and metrics-server listen
there, their health ports on 127.0.0.1. All of them authenticate with the local admin
certificate: one machine, one trust domain.
"""

import json
from pathlib import Path
from typing import Any

import yaml

from devstack import datafiles, kube_build
from devstack.config import INFRA, NODE_NETWORK
from devstack.paths import INFRA_STATE, ensure_dir
from devstack.process import ManagedProcess, run
from devstack.servers.base import Server
from devstack.servers.containerd import SOCKET as CONTAINERD_SOCKET
from devstack.servers.containerd import Containerd
from devstack.servers.kube import KUBECONFIG, PKI, KubeServer, https_ok, kubectl, node_ready
from devstack.waiting import http_ok

NODE_STATE = INFRA_STATE / "node"


def _yaml_file(path: Path, content: dict[str, Any]) -> Path:
    ensure_dir(path.parent)
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


class Kubelet(KubeServer):
    """Registers the node and runs its pods through containerd's CRI."""

    name = "node-kubelet"
    start_timeout = 120.0

    @property
    def address(self) -> str:
        return f"https://{NODE_NETWORK.node_ip}:{INFRA.kubelet_port}"

    def config(self) -> dict[str, Any]:
        net = NODE_NETWORK
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": net.node_ip,
            "port": INFRA.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": INFRA.host,
            "healthzPort": INFRA.kubelet_healthz_port,
            # The API server (logs, exec) and metrics-server present the admin certificate.
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(PKI / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            # No systemd and cgroup v1 here: plain cgroupfs, no QoS hierarchy of our own.
            "cgroupDriver": "cgroupfs",
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
            "clusterDNS": [net.node_ip],
            "clusterDomain": net.cluster_domain,
            # Pods resolve cluster names only: no search domains or resolvers of the host.
            "resolvConf": str(NODE_STATE / "resolv.conf"),
            "podLogsDir": str(NODE_STATE / "pod-logs"),
            "registerNode": True,
            "serializeImagePulls": False,
            # Images are built here and cannot be pulled again: never collect them, and no
            # evictions on a developer's nearly full disk.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {},
            "maxPods": 110,
        }

    def prepare(self) -> None:
        ensure_dir(NODE_STATE / "pod-logs")
        (NODE_STATE / "resolv.conf").write_text("")
        _yaml_file(NODE_STATE / "kubelet.yaml", self.config())

    def process(self) -> ManagedProcess:
        return self._process(
            "kubelet",
            [
                f"--config={NODE_STATE / 'kubelet.yaml'}",
                f"--kubeconfig={KUBECONFIG}",
                f"--hostname-override={NODE_NETWORK.node_name}",
                f"--node-ip={NODE_NETWORK.node_ip}",
                f"--root-dir={NODE_STATE / 'kubelet'}",
                f"--cert-dir={NODE_STATE / 'kubelet-pki'}",
            ],
        )

    def ready(self) -> bool:
        return http_ok(f"http://{INFRA.host}:{INFRA.kubelet_healthz_port}/healthz") and node_ready(
            NODE_NETWORK.node_name
        )


class KubeProxy(KubeServer):
    """Services by iptables rules; NodePorts answer on 127.0.0.1 only."""

    name = "node-kube-proxy"

    @property
    def address(self) -> str:
        return f"http://{INFRA.host}:{INFRA.kube_proxy_healthz_port}"

    def prepare(self) -> None:
        _yaml_file(
            NODE_STATE / "kube-proxy.yaml",
            {
                "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                "kind": "KubeProxyConfiguration",
                "clientConnection": {"kubeconfig": str(KUBECONFIG)},
                "mode": "iptables",
                "clusterCIDR": NODE_NETWORK.pod_cidr,
                "hostnameOverride": NODE_NETWORK.node_name,
                "healthzBindAddress": f"{INFRA.host}:{INFRA.kube_proxy_healthz_port}",
                "metricsBindAddress": f"{INFRA.host}:{INFRA.kube_proxy_metrics_port}",
                "nodePortAddresses": ["127.0.0.0/8"],
                # Leave the machine's conntrack limits and timeouts as they are.
                "conntrack": {
                    "maxPerCore": 0,
                    "tcpEstablishedTimeout": "0s",
                    "tcpCloseWaitTimeout": "0s",
                },
            },
        )

    def process(self) -> ManagedProcess:
        return self._process("kube-proxy", [f"--config={NODE_STATE / 'kube-proxy.yaml'}"])

    def ready(self) -> bool:
        return http_ok(f"{self.address}/healthz")


class CoreDns(KubeServer):
    """Cluster DNS on the node's address: Services and pods by name, nothing else."""

    name = "node-coredns"

    @property
    def address(self) -> str:
        return f"dns://{NODE_NETWORK.node_ip}:53"

    def corefile(self) -> str:
        return datafiles.render(
            "coredns/Corefile",
            node_ip=NODE_NETWORK.node_ip,
            host=INFRA.host,
            health_port=INFRA.coredns_health_port,
            ready_port=INFRA.coredns_ready_port,
            domain=NODE_NETWORK.cluster_domain,
            kubeconfig=KUBECONFIG,
        )

    def prepare(self) -> None:
        ensure_dir(NODE_STATE)
        (NODE_STATE / "Corefile").write_text(self.corefile())

    def process(self) -> ManagedProcess:
        return self._process("coredns", ["-conf", str(NODE_STATE / "Corefile")])

    def ready(self) -> bool:
        return http_ok(f"http://{INFRA.host}:{INFRA.coredns_ready_port}/ready")


class MetricsServer(KubeServer):
    """The resource metrics API the HPAs read, served to the API server as an aggregated API.

    It runs on the node's address; a Service without selector and its Endpoints point the
    `v1beta1.metrics.k8s.io` APIService there.
    """

    name = "node-metrics-server"
    start_timeout = 90.0

    @property
    def address(self) -> str:
        return f"https://{NODE_NETWORK.node_ip}:{INFRA.metrics_server_port}"

    def registration(self) -> list[dict[str, Any]]:
        meta = {"name": "metrics-server", "namespace": "kube-system"}
        return [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta,
                "spec": {
                    "ports": [
                        {"name": "https", "port": 443, "targetPort": INFRA.metrics_server_port}
                    ]
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": meta,
                "subsets": [
                    {
                        "addresses": [{"ip": NODE_NETWORK.node_ip}],
                        "ports": [{"name": "https", "port": INFRA.metrics_server_port}],
                    }
                ],
            },
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": "v1beta1.metrics.k8s.io"},
                "spec": {
                    "service": {"name": "metrics-server", "namespace": "kube-system", "port": 443},
                    "group": "metrics.k8s.io",
                    "version": "v1beta1",
                    "insecureSkipTLSVerify": True,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            },
        ]

    def prepare(self) -> None:
        ensure_dir(NODE_STATE / "metrics-server")
        kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=socialhub-devstack",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": self.registration()}),
        )

    def process(self) -> ManagedProcess:
        return self._process(
            "metrics-server",
            [
                f"--kubeconfig={KUBECONFIG}",
                f"--authentication-kubeconfig={KUBECONFIG}",
                f"--authorization-kubeconfig={KUBECONFIG}",
                f"--bind-address={NODE_NETWORK.node_ip}",
                f"--secure-port={INFRA.metrics_server_port}",
                f"--cert-dir={NODE_STATE / 'metrics-server'}",
                # The kubelet's serving certificate is self-signed.
                "--kubelet-insecure-tls",
                "--kubelet-preferred-address-types=InternalIP",
                "--kubelet-use-node-status-port",
                "--metric-resolution=10s",
                "--kubelet-request-timeout=5s",
            ],
        )

    def ready(self) -> bool:
        return (
            https_ok(f"{self.address}/readyz", verify=False)
            and run(
                [
                    str(kube_build.binary("kubectl")),
                    f"--kubeconfig={KUBECONFIG}",
                    "get",
                    "apiservice",
                    "v1beta1.metrics.k8s.io",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type=='Available')].status}",
                ],
                check=False,
            ).stdout.strip()
            == "True"
        )


def real_node(pause_image: str | None = None) -> list[Server]:
    """The node's servers in start order (for `KubeCluster(node=...)`): the kubelet needs
    containerd, the others need only the API server. Starting needs the pause image."""
    return [Containerd(pause_image), Kubelet(), KubeProxy(), CoreDns(), MetricsServer()]
