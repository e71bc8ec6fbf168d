"""Debian's containerd with runc: the real node's container runtime, with its own state.

Its config, root, state, socket and CNI configuration live under `.state/infra/containerd`, so
it never touches a system containerd. What these machines need (REFERENCE.md section 6): runc,
not crun (cgroup v1 hybrid); cgroupfs, not systemd; `restrict_oom_score_adj`, because root here
lacks CAP_SYS_RESOURCE and runc otherwise fails every sandbox on `oom_score_adj`. Images come
from `devstack.images` (no registry is reachable), the pause image included.
"""

import json
import subprocess

from devstack import datafiles
from devstack.config import NODE_NETWORK
from devstack.install import apt_install
from devstack.paths import INFRA_STATE, ensure_dir
from devstack.process import ManagedProcess, run
from devstack.servers.base import Server

ROOT = INFRA_STATE / "containerd"
SOCKET = ROOT / "containerd.sock"
NAMESPACE = "k8s.io"  # the CRI plugin's namespace: images the kubelet can see
CNI_BIN = "/usr/lib/cni"
RUNC = "/usr/sbin/runc"


def containerd_config(pause_image: str) -> str:
    return datafiles.render(
        "containerd/config.toml",
        root=ROOT / "root",
        state=ROOT / "state",
        socket=SOCKET,
        pause_image=pause_image,
        runc=RUNC,
        cni_bin=CNI_BIN,
        cni_conf=ROOT / "net.d",
    )


def cni_config() -> dict[str, object]:
    """Pods on our bridge, addresses from the pod range, no masquerade: nothing leaves."""
    net = NODE_NETWORK
    return {
        "cniVersion": "1.0.0",
        "name": "socialhub",
        "plugins": [
            {
                "type": "bridge",
                "bridge": net.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": net.pod_cidr, "gateway": net.node_ip}]],
                    "dataDir": str(ROOT / "ipam"),
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "loopback"},
        ],
    }


def ctr(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["ctr", "-a", str(SOCKET), "-n", NAMESPACE, *args], check=check)


class Containerd(Server):
    name = "containerd"

    def __init__(self, pause_image: str | None = None) -> None:
        self.pause_image = pause_image

    @property
    def address(self) -> str:
        return f"unix://{SOCKET}"

    def install(self) -> None:
        apt_install("containerd", "runc", "containernetworking-plugins")

    def prepare(self) -> None:
        if self.pause_image is None:
            raise ValueError("containerd starts with a pause image (devstack.images)")
        ensure_dir(ROOT)
        (ROOT / "config.toml").write_text(containerd_config(self.pause_image))
        net_d = ensure_dir(ROOT / "net.d")
        (net_d / "10-socialhub.conflist").write_text(json.dumps(cni_config(), indent=2) + "\n")

    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name=self.name,
            argv=["containerd", "--config", str(ROOT / "config.toml")],
            run_dir=INFRA_STATE / "run",
        )

    def ready(self) -> bool:
        # The CRI plugin answers only once its runtime and CNI are loaded.
        return (
            SOCKET.exists()
            and ctr("version", check=False).returncode == 0
            and "Start streaming server" in self.process().log_since_start()
        )

    def stop(self) -> bool:
        """Containers outlive containerd (their shims are daemons): end them first."""
        if self.process().running():
            for task in ctr("tasks", "ls", "-q", check=False).stdout.split():
                ctr("tasks", "kill", "-s", "SIGKILL", task, check=False)
        stopped = super().stop()
        run(
            [
                "pkill",
                "-KILL",
                "-f",
                f"containerd-shim-runc-v2 -namespace {NAMESPACE} -id .* -address {SOCKET}",
            ],
            check=False,
        )
        return stopped
