"""The local Kubernetes control plane and the operator, for the `kube` tests.

The control plane (kine, kube-apiserver, kube-controller-manager, kube-scheduler, kwok) is
built once into the cache by `devstack.kube_build` and started once per run; servers already
running are reused and left running. The operator runs as a real `socialhub run` process.
"""

import json
import os
import shutil
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

from devstack import kube_build
from devstack.install import apt_install
from devstack.paths import STATE, ensure_dir
from devstack.servers.kube import (
    SIMULATED_NAMESPACE_ANNOTATIONS,
    SIMULATED_NAMESPACE_PREFIX,
    KubeCluster,
    kubectl,
)
from socialhub_operator import crd
from tests.unit import unit_fixture

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "manifests" / "samples" / "socialhub.yaml"
WAIT_SECONDS = 240.0
BACKING_SECRETS = {
    "socialhub-postgres": {
        service: f"postgresql+asyncpg://u:p@postgres:5432/{service}"
        for service in ("auth", "users", "posts")
    },
    "socialhub-mongo": {"url": "mongodb://mongo:27017"},
    "socialhub-redis": {"url": "redis://redis:6379/0"},
    "socialhub-kafka": {"bootstrapServers": "kafka:9092"},
}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the control plane (minutes when cold) before any test runs, outside test timeouts."""
    if any(item.get_closest_marker("kube") for item in session.items) and not kube_build.built():
        print("\nbuilding the Kubernetes control plane into the cache (once)", flush=True)
        kube_build.build()


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
        config_file=str(kubeconfig)
    )
    return DynamicClient(api)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def socialhubs(dynamic: DynamicClient) -> Any:
    """The SocialHub API, after `manifests/base` without its Deployment (CRD, namespace, RBAC)
    is applied: here the operator runs as a process with its ServiceAccount's token; the
    Deployment runs it as a pod in tests/cluster, on the real node."""
    documents = yaml.safe_load_all(kubectl("kustomize", str(ROOT / "manifests" / "base")))
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=socialhub-tests",
        "-f",
        "-",
        stdin=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [document for document in documents if document["kind"] != "Deployment"],
            }
        ),
    )
    crds = dynamic.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    name = crd.definition()["metadata"]["name"]
    eventually(lambda: _established(crds.get(name=name).to_dict()))
    dynamic.resources.invalidate_cache()
    return dynamic.resources.get(api_version="socialhub.dev/v1alpha1", kind="SocialHub")


def _established(definition: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Established" and c["status"] == "True"
        for c in definition.get("status", {}).get("conditions", [])
    )


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


OPERATOR_PROCESSES: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
@unit_fixture
def _operator_still_running() -> Iterator[None]:
    """A test that ends the operator fails itself, not the tests after it."""
    yield
    for process in OPERATOR_PROCESSES:
        assert process.poll() is None, f"the operator exited ({process.returncode})"


@pytest.fixture(scope="session")
def operator(kubeconfig: Path, socialhubs: Any) -> Iterator[Path]:
    """`socialhub run` as the operator's own ServiceAccount, so its RBAC is what is tested.

    Yields the operator's log file.
    """
    log = ensure_dir(STATE / "test") / "operator.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(
            service_account_kubeconfig(kubeconfig, "socialhub-system", "socialhub-operator")
        ),
    }
    with log.open("ab") as out:
        # Only this suite's namespaces: the real-node tests run the operator as a pod.
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "socialhub_operator.cli",
                "run",
                f"--namespace={SIMULATED_NAMESPACE_PREFIX}*",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    OPERATOR_PROCESSES.append(process)
    yield log
    OPERATOR_PROCESSES.remove(process)
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def namespace(dynamic: DynamicClient) -> Iterator[str]:
    """A fresh namespace on kwok's simulated node, with the four backing Secrets the sample
    names (their values are never dialled: no pod really runs)."""
    name = f"{SIMULATED_NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}"
    namespaces = dynamic.resources.get(api_version="v1", kind="Namespace")
    # Restricted pod security: a child whose pods break it never becomes Ready.
    namespaces.create(
        body={
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                "annotations": SIMULATED_NAMESPACE_ANNOTATIONS,
            },
        }
    )
    secrets = dynamic.resources.get(api_version="v1", kind="Secret")
    for secret, data in BACKING_SECRETS.items():
        secrets.create(
            namespace=name,
            body={
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret},
                "stringData": data,
            },
        )
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


@pytest.fixture(scope="session")
def lua() -> str:
    """Lua 5.1: Argo CD runs health checks in gopher-lua, which implements Lua 5.1."""
    if shutil.which("lua5.1") is None:
        apt_install("lua5.1")
    return "lua5.1"


def lua_literal(value: Any) -> str:
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"[{json.dumps(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nil"
    return json.dumps(value)


def argo_health(lua: str, obj: dict[str, Any], tmp_path: Path) -> str:
    """Run the shipped health check the way Argo CD does: `obj` global in, `hs` table out."""
    config = yaml.safe_load((ROOT / "manifests/argocd/argocd-cm-health.yaml").read_text())
    script = tmp_path / "health.lua"
    script.write_text(config["data"]["resource.customizations.health.socialhub.dev_SocialHub"])
    harness = (
        f"obj = {lua_literal(obj)}\n"
        f"local hs = assert(loadfile({json.dumps(str(script))}))()\n"
        "io.write(hs.status)\n"
    )
    return subprocess.run(
        [lua, "-"], input=harness, capture_output=True, text=True, check=True
    ).stdout
