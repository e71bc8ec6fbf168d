"""The control plane's servers, from the binaries `devstack.kube_build` builds.

kine serves the etcd API from SQLite; kube-apiserver runs with RBAC, service-account keys,
aggregation (metrics-server) and the serving certificate of `pki`, on the real node's bridge
address (`devstack.servers.network`), where pods reach it too; kube-controller-manager brings
garbage collection, ReplicaSets, Jobs and HPAs; kube-scheduler places pods on the real node or
on kwok's fake node (`kwok`).
"""

from devstack import kube_build
from devstack.config import INFRA, NODE_NETWORK
from devstack.paths import INFRA_STATE, ensure_dir
from devstack.process import ManagedProcess
from devstack.servers.base import Server
from devstack.servers.kube.client import KUBECONFIG, api_url, https_ok, write_kubeconfig
from devstack.servers.kube.pki import FRONT_PROXY_CLIENT, KUBE_STATE, PKI, ensure_pki
from devstack.waiting import port_open

RUN_DIR = INFRA_STATE / "run"


class KubeServer(Server):
    """Common ground: binaries from the build cache, logs and pids under the infra run dir."""

    def install(self) -> None:
        kube_build.build()

    def _process(self, binary: str, args: list[str]) -> ManagedProcess:
        return ManagedProcess(
            name=self.name, argv=[str(kube_build.binary(binary)), *args], run_dir=RUN_DIR
        )


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
        return self._process(
            "kine",
            [
                "--endpoint",
                f"sqlite://{database}?_journal=WAL&cache=shared&_busy_timeout=30000",
                "--listen-address",
                f"{INFRA.host}:{INFRA.kube_etcd_port}",
                "--metrics-bind-address",
                "0",
            ],
        )

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
        return self._process(
            "kube-apiserver",
            [
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
            ],
        )

    def ready(self) -> bool:
        return https_ok(f"{self.address}/readyz", verify=True)


class KubeControllerManager(_KubeController):
    name = "kube-controller-manager"
    port = INFRA.kube_controller_manager_port

    def process(self) -> ManagedProcess:
        return self._process(
            "kube-controller-manager",
            [
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
            ],
        )


class KubeScheduler(_KubeController):
    name = "kube-scheduler"
    port = INFRA.kube_scheduler_port

    def process(self) -> ManagedProcess:
        return self._process("kube-scheduler", self._component_flags("scheduler"))
