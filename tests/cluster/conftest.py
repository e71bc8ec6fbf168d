"""One SocialHub on the real node, brought up once per run the way `make cluster` does it.

The images are built here and loaded into containerd; the operator runs as a pod from its
image; the SocialHub (the small profile, `e2e` data) gets the Secrets, media volume and
NodePort `devstack.cluster` gives it. Servers already running are reused and left running;
what this session started, it stops.
"""

import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from devstack import cluster, kube_build
from devstack import images as container_images
from devstack.config import PROFILES
from devstack.platform import Infra
from devstack.servers.kafka import Kafka
from devstack.servers.kube import KubeCluster, kubectl
from devstack.servers.mailsink import MailSink
from devstack.servers.mongo import Mongo
from devstack.servers.node import real_node
from devstack.servers.postgres import Postgres
from devstack.servers.redis import Redis
from tests.operator.conftest import lua

T = TypeVar("T")
E2E = cluster.Target(PROFILES["e2e"], namespace="e2e-socialhub")
READY_SECONDS = 600.0
__all__ = ["lua"]  # the Argo CD health check's interpreter, shared with tests/operator
# What the tests change in the small profile: chat on two pods (chat across pods), posts free
# to scale out and back quickly (the HPA test).
E2E_OVERRIDES: dict[str, Any] = {
    "components": {
        "chat": {"minReplicas": 2, "maxReplicas": 2},
        "posts": {
            "minReplicas": 1,
            "maxReplicas": 2,
            "targetCpuUtilization": 50,
            "scaleDownStabilizationSeconds": 15,
        },
    },
}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the binaries and images (minutes when cold) before any test, outside timeouts."""
    if any(item.get_closest_marker("node") for item in session.items):
        print("\nbuilding the node's binaries and the images into the cache (once)", flush=True)
        kube_build.build()
        container_images.build_all(progress=lambda line: print(line, flush=True))


@pytest.fixture(scope="session")
def built_images() -> container_images.Images:
    return container_images.build_all()


@pytest.fixture(scope="session")
def node_infra(
    postgres: Postgres,
    redis_server: Redis,
    kafka_server: Kafka,
    mongo_server: Mongo,
    mailsink: MailSink,
) -> Infra:
    return Infra(postgres, redis_server, kafka_server, mongo_server, mailsink)


@pytest.fixture(scope="session")
def real_cluster(built_images: container_images.Images) -> Iterator[KubeCluster]:
    whole = KubeCluster(node=real_node(built_images.pause))
    started = [server for server in whole.servers if not server.running()]
    cluster.start_node(built_images, progress=print)
    yield whole
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="session")
def e2e_socialhub(
    real_cluster: KubeCluster, built_images: container_images.Images, node_infra: Infra
) -> cluster.Target:
    """The e2e SocialHub, Ready; a previous run's is deleted first, so every run starts new."""
    if kubectl("get", "namespace", E2E.namespace, "--ignore-not-found", "-o", "name").strip():
        kubectl("delete", "namespace", E2E.namespace, "--wait=true", "--timeout=180s")
    cluster.prepare_backing(E2E, node_infra, progress=print)
    cluster.install_operator(built_images)
    started = time.monotonic()
    cluster.deploy(E2E, built_images, node_infra, E2E_OVERRIDES)
    cluster.wait_ready(E2E, timeout=READY_SECONDS, progress=print)
    print(f"apply -> Ready in {time.monotonic() - started:.1f}s", flush=True)
    return E2E


@pytest.fixture(scope="module")
async def gateway(e2e_socialhub: cluster.Target) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the SocialHub's gateway Service, through its NodePort on 127.0.0.1."""
    async with httpx.AsyncClient(base_url=e2e_socialhub.gateway_url, timeout=30) as client:
        yield client


def get_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def namespaced(target: cluster.Target, *args: str) -> Any:
    return get_json("-n", target.namespace, *args)


def pods(target: cluster.Target, component: str) -> list[dict[str, Any]]:
    """The component's Deployment pods (not its Job pods), oldest first."""
    listing = namespaced(
        target,
        "get",
        "pods",
        "-l",
        f"app.kubernetes.io/instance={target.name},app.kubernetes.io/component={component}",
    )
    return sorted(listing["items"], key=lambda pod: pod["metadata"]["creationTimestamp"])


def ready(pod: dict[str, Any]) -> bool:
    return pod["metadata"].get("deletionTimestamp") is None and any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


def socialhub_status(target: cluster.Target) -> dict[str, Any]:
    status: dict[str, Any] = namespaced(target, "get", "socialhub", target.name).get("status", {})
    return status


def condition(target: cluster.Target, kind: str) -> dict[str, Any]:
    for item in socialhub_status(target).get("conditions", []):
        if item["type"] == kind:
            return dict(item)
    return {}


def patch_socialhub(target: cluster.Target, patch: dict[str, Any]) -> None:
    kubectl(
        "-n",
        target.namespace,
        "patch",
        "socialhub",
        target.name,
        "--type=merge",
        "-p",
        json.dumps(patch),
    )


def wait_for(
    check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 1.0
) -> T:
    """Poll until `check` returns something truthy; a bounded wait, its length not asserted."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (RuntimeError, KeyError, subprocess.CalledProcessError) as error:
            last = error
        else:
            if result:
                return result
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last error: {last!r})")
