"""The local Kubernetes control plane and the operator, for the `kube` tests.

The control plane (kine, kube-apiserver, kube-controller-manager, kube-scheduler, kwok) is
built once into the cache by `devstack.kube_build` and started once per run; servers already
running are reused and left running. The operator runs as a real `socialhub run` process.
"""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from devstack.paths import STATE, ensure_dir
from devstack.servers.kube import KubeCluster, kubectl
from socialhub_operator import crd

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "manifests" / "samples" / "socialhub.yaml"
WAIT_SECONDS = 180.0


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    cluster = KubeCluster()
    started = [server for server in cluster.servers if not server.running()]
    path = cluster.start()
    yield path
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="session")
def dynamic(kubeconfig: Path) -> DynamicClient:
    api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig))
    return DynamicClient(api)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def socialhubs(dynamic: DynamicClient) -> Any:
    """The SocialHub API, after `manifests/base` (CRD, RBAC, operator Deployment) is applied."""
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=socialhub-tests",
            "-k", str(ROOT / "manifests" / "base"))
    crds = dynamic.resources.get(api_version="apiextensions.k8s.io/v1",
                                 kind="CustomResourceDefinition")
    name = crd.definition()["metadata"]["name"]
    eventually(lambda: _established(crds.get(name=name).to_dict()))
    dynamic.resources.invalidate_cache()
    return dynamic.resources.get(api_version="socialhub.dev/v1alpha1", kind="SocialHub")


def _established(definition: dict[str, Any]) -> bool:
    return any(c["type"] == "Established" and c["status"] == "True"
               for c in definition.get("status", {}).get("conditions", []))


def service_account_kubeconfig(kubeconfig: Path, namespace: str, account: str) -> Path:
    """A kubeconfig that authenticates as a ServiceAccount (a bound token, as in a pod)."""
    config = yaml.safe_load(kubeconfig.read_text())
    token = kubectl("create", "token", account, "-n", namespace, "--duration=24h").strip()
    config["users"] = [{"name": account, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = account
    path = ensure_dir(STATE / "test") / f"{account}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def operator(kubeconfig: Path, socialhubs: Any) -> Iterator[Path]:
    """`socialhub run` as the operator's own ServiceAccount, so its RBAC is what is tested.

    Yields the operator's log file.
    """
    log = ensure_dir(STATE / "test") / "operator.log"
    env = {**os.environ, "KUBECONFIG": str(
        service_account_kubeconfig(kubeconfig, "socialhub-system", "socialhub-operator"))}
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "socialhub_operator.cli", "run"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    yield log
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def namespace(dynamic: DynamicClient) -> Iterator[str]:
    name = f"op-{uuid.uuid4().hex[:8]}"
    namespaces = dynamic.resources.get(api_version="v1", kind="Namespace")
    namespaces.create(body={"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": name}})
    yield name
    namespaces.delete(name=name)


def sample(**spec_overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    document["spec"] |= spec_overrides
    return document


def eventually(check: Callable[[], T | None], timeout: float = WAIT_SECONDS) -> T:
    """Poll until `check` returns something truthy without raising; returns that value.

    Waiting is bounded so a broken operator fails the test; how long it took is not asserted.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (AssertionError, NotFoundError, ResourceNotFoundError, KeyError) as error:
            last = error
        else:
            if result:
                return result
        time.sleep(0.5)
    raise AssertionError(f"condition not reached within {timeout:.0f}s; last error: {last!r}")
