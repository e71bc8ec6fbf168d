"""kwok plays the kubelet for one fake node, where simulated pods "run" without containers.

Scheduled pods become Running and Ready, Job pods Succeed. The fake node is tainted: only
namespaces created with `SIMULATED_NAMESPACE_ANNOTATIONS` land there, and nothing else does.

Fault injection (`data/kwok/fail-stages.yaml`, ahead of kwok's normal stages): a pod annotated
`FAIL_ANNOTATION: "true"` fails: a Job's pod ends Failed with exit code 1; any other pod runs
but never becomes Ready, its container in CrashLoopBackOff (a real crash loop keeps the pod, it
does not end it).
"""

import json
from pathlib import Path

from devstack import datafiles, kube_build
from devstack.config import INFRA
from devstack.process import ManagedProcess
from devstack.servers.kube.client import KUBECONFIG, kubectl, node_ready
from devstack.servers.kube.control_plane import KubeServer
from devstack.servers.kube.pki import KUBE_STATE

FAKE_NODE = "kwok-node-0"
FAIL_ANNOTATION = "kwok.socialhub.dev/fail"
SIMULATED_TAINT = {"key": "socialhub.dev/node", "value": "simulated", "effect": "NoSchedule"}
# The operator suite's namespaces: simulated, and served by its own `socialhub run` process
# (the in-cluster operator of `devstack.cluster` leaves them alone).
SIMULATED_NAMESPACE_PREFIX = "op-"
# A namespace with these annotations has its pods placed on kwok's fake node (admission plugins
# PodNodeSelector and PodTolerationRestriction): many simulated pods, no real containers.
SIMULATED_NAMESPACE_ANNOTATIONS = {
    "scheduler.alpha.kubernetes.io/node-selector": "type=kwok",
    "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(
        [{**SIMULATED_TAINT, "operator": "Equal"}]
    ),
}

FAKE_NODE_MANIFEST = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": FAKE_NODE,
        "annotations": {"kwok.x-k8s.io/node": "fake"},
        "labels": {
            "kubernetes.io/hostname": FAKE_NODE,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
        },
    },
    "spec": {"taints": [SIMULATED_TAINT]},
    "status": {
        "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
        "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"},
    },
}


def fail_stages() -> str:
    """The fault-injection stages, for pods annotated `FAIL_ANNOTATION: "true"`."""
    return datafiles.render("kwok/fail-stages.yaml", fail_annotation=FAIL_ANNOTATION)


class Kwok(KubeServer):
    """Plays the kubelet for one fake node: scheduled pods run, Job pods complete."""

    name = "kube-kwok"

    @property
    def address(self) -> str:
        return f"http://{INFRA.host}:{INFRA.kwok_port}"

    @property
    def config(self) -> Path:
        return KUBE_STATE / "kwok.yaml"

    def prepare(self) -> None:
        stages = sorted((kube_build.kube_dir() / "kwok-stages").glob("*.yaml"))
        documents = [fail_stages(), *(path.read_text() for path in stages)]
        self.config.write_text("\n---\n".join(doc.strip() for doc in documents) + "\n")
        kubectl(
            "apply",
            "--server-side",
            "--field-manager=socialhub-devstack",
            "-f",
            "-",
            stdin=json.dumps(FAKE_NODE_MANIFEST),
        )

    def process(self) -> ManagedProcess:
        return self._process(
            "kwok",
            [
                f"--kubeconfig={KUBECONFIG}",
                f"--config={self.config}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--server-address={INFRA.host}:{INFRA.kwok_port}",
                # Fake addresses outside the real node's pod network.
                "--node-ip=10.245.0.1",
                "--cidr=10.245.0.0/16",
            ],
        )

    def ready(self) -> bool:
        return node_ready(FAKE_NODE)
