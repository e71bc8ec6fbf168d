"""A real Kubernetes control plane on this machine, built from source by `devstack.kube_build`.

kine serves the etcd API from SQLite; kube-apiserver runs with RBAC, service-account keys,
aggregation (metrics-server) and a serving certificate generated under `.state/infra/kube/pki`,
on the real node's bridge address (`devstack.servers.network`), where pods reach it too;
kube-controller-manager brings garbage collection, ReplicaSets, Jobs and HPAs; kube-scheduler
places pods on the real node (`devstack.servers.node`, when started) or on one fake node that
kwok plays the kubelet for (pods become Running and Ready, Job pods Succeed). The fake node is
tainted: only namespaces created with `SIMULATED_NAMESPACE_ANNOTATIONS` land there, and nothing
else does. `KubeCluster` starts them in order and writes an admin kubeconfig.

Fault injection for simulated pods: a pod annotated `kwok.socialhub.dev/fail: "true"` fails: a
Job's pod exits 1, any other pod crash-loops and never becomes Ready.
"""

import argparse
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from devstack import kube_build
from devstack.config import INFRA, NODE_NETWORK
from devstack.paths import INFRA_STATE, ensure_dir
from devstack.process import ManagedProcess, run
from devstack.servers import network
from devstack.servers.base import Server
from devstack.waiting import port_open

KUBE_STATE = INFRA_STATE / "kube"
PKI = KUBE_STATE / "pki"
KUBECONFIG = KUBE_STATE / "admin.kubeconfig"
RUN_DIR = INFRA_STATE / "run"
FRONT_PROXY_CLIENT = "front-proxy-client"
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
        [{**SIMULATED_TAINT, "operator": "Equal"}]),
}


def _openssl(*args: str) -> None:
    run(["openssl", *args])


def ensure_pki() -> None:
    """One CA, the API server's serving certificate, an admin client and service-account keys."""
    ensure_dir(PKI)
    if not (PKI / "ca.crt").exists():
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                 "-subj", "/CN=socialhub-local-ca", "-keyout", str(PKI / "ca.key"),
                 "-out", str(PKI / "ca.crt"))
    net = NODE_NETWORK
    sans = (f"subjectAltName=IP:127.0.0.1,IP:{net.node_ip},IP:{net.api_service_ip},"
            "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
            f"DNS:kubernetes.default.svc.{net.cluster_domain}")
    _sign("apiserver", "/CN=kube-apiserver", extension=sans)
    # system:masters is the admin group; the controllers and the node use the same identity.
    _sign("admin", "/O=system:masters/CN=socialhub-admin",
          extension="extendedKeyUsage=clientAuth")
    # The aggregator's identity towards metrics-server (`--requestheader-allowed-names`).
    _sign("front-proxy-client", f"/CN={FRONT_PROXY_CLIENT}",
          extension="extendedKeyUsage=clientAuth")
    if not (PKI / "sa.key").exists():
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                 "-out", str(PKI / "sa.key"))
        _openssl("pkey", "-in", str(PKI / "sa.key"), "-pubout", "-out", str(PKI / "sa.pub"))


def _sign(name: str, subject: str, *, extension: str) -> None:
    """A certificate signed by the local CA; signed again when its subject or extension change."""
    inputs = PKI / f"{name}.inputs"
    if (PKI / f"{name}.crt").exists() and inputs.exists() and \
            inputs.read_text() == f"{subject}\n{extension}\n":
        return
    key, csr = PKI / f"{name}.key", PKI / f"{name}.csr"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key),
             "-out", str(csr))
    extfile = PKI / f"{name}.ext"
    extfile.write_text(extension + "\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(PKI / "ca.crt"),
             "-CAkey", str(PKI / "ca.key"), "-CAcreateserial", "-days", "3650",
             "-extfile", str(extfile), "-out", str(PKI / f"{name}.crt"))
    csr.unlink()
    extfile.unlink()
    inputs.write_text(f"{subject}\n{extension}\n")


def api_url() -> str:
    return f"https://{NODE_NETWORK.node_ip}:{INFRA.kube_apiserver_port}"


def write_kubeconfig() -> Path:
    """An admin kubeconfig for kubectl, the controllers, kwok and the operator tests."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "socialhub-local", "cluster": {
            "server": api_url(), "certificate-authority": str(PKI / "ca.crt")}}],
        "users": [{"name": "admin", "user": {
            "client-certificate": str(PKI / "admin.crt"),
            "client-key": str(PKI / "admin.key")}}],
        "contexts": [{"name": "socialhub-local",
                      "context": {"cluster": "socialhub-local", "user": "admin"}}],
        "current-context": "socialhub-local",
    }
    KUBECONFIG.write_text(json.dumps(config, indent=2) + "\n")
    return KUBECONFIG


def kubectl(*args: str, stdin: str | None = None) -> str:
    """Run kubectl against the local cluster; raises with its output on failure."""
    argv = [str(kube_build.binary("kubectl")), f"--kubeconfig={KUBECONFIG}", *args]
    result = subprocess.run(argv, input=stdin, text=True, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def https_ok(url: str, *, verify: bool) -> bool:
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt")) if verify \
        else ssl._create_unverified_context()  # the controllers serve self-signed health ports
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def node_ready(name: str) -> bool:
    """Whether the node has registered and reports Ready."""
    try:
        status = kubectl("get", "node", name, "-o",
                         "jsonpath={.status.conditions[?(@.type=='Ready')].status}")
    except RuntimeError:
        return False
    return status.strip() == "True"


class KubeServer(Server):
    """Common ground: binaries from the build cache, logs and pids under the infra run dir."""

    def install(self) -> None:
        kube_build.build()

    def _process(self, binary: str, args: list[str]) -> ManagedProcess:
        return ManagedProcess(name=self.name, argv=[str(kube_build.binary(binary)), *args],
                              run_dir=RUN_DIR)


class _KubeController(KubeServer):
    """A control-plane component that reaches the API server by kubeconfig and serves health."""

    port: int

    @property
    def address(self) -> str:
        return f"https://{INFRA.host}:{self.port}"

    def _component_flags(self, state_dir: str) -> list[str]:
        return [
            f"--kubeconfig={KUBECONFIG}",
            f"--authentication-kubeconfig={KUBECONFIG}",
            f"--authorization-kubeconfig={KUBECONFIG}",
            f"--bind-address={INFRA.host}",
            f"--secure-port={self.port}",
            f"--cert-dir={KUBE_STATE / state_dir}",
            "--leader-elect=false",
        ]

    def ready(self) -> bool:
        # The components serve their health port with a self-signed certificate.
        return https_ok(f"{self.address}/healthz", verify=False)


class Kine(KubeServer):
    name = "kube-kine"

    @property
    def address(self) -> str:
        return f"http://{INFRA.host}:{INFRA.kube_etcd_port}"

    def prepare(self) -> None:
        ensure_dir(KUBE_STATE / "kine")

    def process(self) -> ManagedProcess:
        database = KUBE_STATE / "kine" / "state.db"
        return self._process("kine", [
            "--endpoint", f"sqlite://{database}?_journal=WAL&cache=shared&_busy_timeout=30000",
            "--listen-address", f"{INFRA.host}:{INFRA.kube_etcd_port}",
            "--metrics-bind-address", "0",
        ])

    def ready(self) -> bool:
        # kine speaks only gRPC; an accepting port means the schema is in place.
        return port_open(INFRA.kube_etcd_port, INFRA.host)


class KubeApiserver(KubeServer):
    name = "kube-apiserver"
    start_timeout = 120.0

    @property
    def address(self) -> str:
        return api_url()

    def prepare(self) -> None:
        ensure_pki()
        write_kubeconfig()

    def process(self) -> ManagedProcess:
        net = NODE_NETWORK
        return self._process("kube-apiserver", [
            f"--etcd-servers=http://{INFRA.host}:{INFRA.kube_etcd_port}",
            # The bridge's address: this machine and its pods reach it, nothing else does.
            f"--bind-address={net.node_ip}",
            f"--advertise-address={net.node_ip}",
            f"--secure-port={INFRA.kube_apiserver_port}",
            f"--cert-dir={PKI}",
            f"--tls-cert-file={PKI / 'apiserver.crt'}",
            f"--tls-private-key-file={PKI / 'apiserver.key'}",
            f"--client-ca-file={PKI / 'ca.crt'}",
            f"--service-account-key-file={PKI / 'sa.pub'}",
            f"--service-account-signing-key-file={PKI / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={net.service_cidr}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            # logs, exec and port-forward: the API server calls the kubelet as admin.
            f"--kubelet-client-certificate={PKI / 'admin.crt'}",
            f"--kubelet-client-key={PKI / 'admin.key'}",
            "--kubelet-preferred-address-types=InternalIP",
            # Aggregation, for metrics-server (the HPAs' CPU metrics).
            f"--requestheader-client-ca-file={PKI / 'ca.crt'}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={PKI / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={PKI / 'front-proxy-client.key'}",
            "--enable-aggregator-routing=true",
            "--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction",
            # Nodes would start tainted not-ready until the node lifecycle controller, which
            # judges kubelet heartbeats, clears it; kwok's fake node has no kubelet to judge.
            "--disable-admission-plugins=TaintNodesByCondition",
        ])

    def ready(self) -> bool:
        return https_ok(f"{self.address}/readyz", verify=True)


class KubeControllerManager(_KubeController):
    name = "kube-controller-manager"
    port = INFRA.kube_controller_manager_port

    def process(self) -> ManagedProcess:
        return self._process("kube-controller-manager", [
            *self._component_flags("controller-manager"),
            f"--service-account-private-key-file={PKI / 'sa.key'}",
            f"--root-ca-file={PKI / 'ca.crt'}",
            f"--service-cluster-ip-range={NODE_NETWORK.service_cidr}",
            "--use-service-account-credentials=false",
            # No node heartbeats to judge here (kwok's node never dies); the rest are defaults.
            "--controllers=*,-nodelifecycle",
            # Shorter loops than production so the tests see HPAs and GC act promptly.
            "--horizontal-pod-autoscaler-sync-period=2s",
            "--concurrent-gc-syncs=20",
        ])


class KubeScheduler(_KubeController):
    name = "kube-scheduler"
    port = INFRA.kube_scheduler_port

    def process(self) -> ManagedProcess:
        return self._process("kube-scheduler", self._component_flags("scheduler"))


FAKE_NODE_MANIFEST = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": FAKE_NODE,
        "annotations": {"kwok.x-k8s.io/node": "fake"},
        "labels": {"kubernetes.io/hostname": FAKE_NODE, "kubernetes.io/os": "linux",
                   "kubernetes.io/arch": "amd64", "type": "kwok"},
    },
    "spec": {"taints": [SIMULATED_TAINT]},
    "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
               "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"}},
}

# Fault injection for pods annotated `FAIL_ANNOTATION: "true"`, ahead of kwok's normal stages:
# a Job's pod ends Failed with exit code 1; any other pod runs but never becomes Ready, its
# container in CrashLoopBackOff (a real crash loop keeps the pod, it does not end it).
FAIL_STAGES = f"""apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: socialhub-job-pod-fail
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.annotations["{FAIL_ANNOTATION}"]'
      operator: 'In'
      values: ['true']
    - key: '.metadata.ownerReferences.[].kind'
      operator: 'In'
      values: ['Job']
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
  weight: 10000
  next:
    statusTemplate: |
      {{{{ $now := Now }}}}
      containerStatuses:
      {{{{ range .spec.containers }}}}
      - image: {{{{ .image | Quote }}}}
        name: {{{{ .name | Quote }}}}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 1
            finishedAt: {{{{ $now | Quote }}}}
            reason: Error
            startedAt: {{{{ $now | Quote }}}}
      {{{{ end }}}}
      phase: Failed
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: socialhub-pod-crashloop
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.annotations["{FAIL_ANNOTATION}"]'
      operator: 'In'
      values: ['true']
    - key: '.metadata.ownerReferences.[].kind'
      operator: 'NotIn'
      values: ['Job']
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
  weight: 10000
  next:
    statusTemplate: |
      {{{{ $now := Now }}}}
      conditions:
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "False"
        reason: ContainersNotReady
        type: Ready
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "False"
        reason: ContainersNotReady
        type: ContainersReady
      containerStatuses:
      {{{{ range .spec.containers }}}}
      - image: {{{{ .image | Quote }}}}
        name: {{{{ .name | Quote }}}}
        ready: false
        restartCount: 5
        started: false
        state:
          waiting:
            reason: CrashLoopBackOff
      {{{{ end }}}}
      phase: Running
      startTime: {{{{ $now | Quote }}}}
"""


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
        documents = [FAIL_STAGES, *(path.read_text() for path in stages)]
        self.config.write_text("\n---\n".join(doc.strip() for doc in documents) + "\n")
        kubectl("apply", "--server-side", "--field-manager=socialhub-devstack", "-f", "-",
                stdin=json.dumps(FAKE_NODE_MANIFEST))

    def process(self) -> ManagedProcess:
        return self._process("kwok", [
            f"--kubeconfig={KUBECONFIG}",
            f"--config={self.config}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address={INFRA.host}:{INFRA.kwok_port}",
            # Fake addresses outside the real node's pod network.
            "--node-ip=10.245.0.1",
            "--cidr=10.245.0.0/16",
        ])

    def ready(self) -> bool:
        return node_ready(FAKE_NODE)


class KubeCluster:
    """The control plane, and the real node when given, as one unit.

    Started in dependency order (the bridge first: the API server listens on it), stopped in
    reverse. `node` is `devstack.servers.node.real_node(...)`: containerd, kubelet,
    kube-proxy, CoreDNS and metrics-server.
    """

    def __init__(self, node: Sequence[Server] = ()) -> None:
        self.control_plane: list[Server] = [Kine(), KubeApiserver(), KubeControllerManager(),
                                            KubeScheduler(), Kwok()]
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


if __name__ == "__main__":
    main()
