"""A real Kubernetes control plane on this machine, built from source by `devstack.kube_build`.

`KubeCluster` (`cluster`) starts kine, kube-apiserver, kube-controller-manager and
kube-scheduler (`control_plane`) and kwok's fake node for simulated pods (`kwok`), in order,
with the certificates of `pki` and an admin kubeconfig (`client`); the real node
(`devstack.servers.node`) joins when given. This module is the suite's and devstack's one way
in: `python -m devstack.servers.kube start|stop|status`.
"""

from devstack.servers.kube.client import KUBECONFIG, api_url, https_ok, kubectl, node_ready
from devstack.servers.kube.cluster import KubeCluster
from devstack.servers.kube.control_plane import KubeServer
from devstack.servers.kube.kwok import (
    FAIL_ANNOTATION,
    SIMULATED_NAMESPACE_ANNOTATIONS,
    SIMULATED_NAMESPACE_PREFIX,
)
from devstack.servers.kube.pki import PKI

__all__ = [
    "FAIL_ANNOTATION",
    "KUBECONFIG",
    "PKI",
    "SIMULATED_NAMESPACE_ANNOTATIONS",
    "SIMULATED_NAMESPACE_PREFIX",
    "KubeCluster",
    "KubeServer",
    "api_url",
    "https_ok",
    "kubectl",
    "node_ready",
]
