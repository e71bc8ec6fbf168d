"""The operator-managed distribution on a real kubelet: real containers, real networking.

What `kubectl apply` of one SocialHub gives a cluster admin: every Deployment available, the
migrations run in pods, topics created, the gateway serving, rollouts and lost pods that cost no
request and no accepted write, an HPA that scales on real CPU, and deletion that leaves nothing.
Order matters only at the end: the last test deletes the SocialHub.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from aiokafka.admin import AIOKafkaAdminClient

from devstack import cluster
from devstack.config import INFRA, NODE_NETWORK
from devstack.servers.kube import kubectl
from tests.cluster.conftest import (
    condition,
    get_json,
    namespaced,
    patch_socialhub,
    pods,
    ready,
    wait_for,
)
from tests.operator.conftest import argo_health
from tests.posts.helpers import png
from tests.test_quickstart import bearer, register_and_login

# Generous: the first test also waits for the images, the node and the SocialHub.
pytestmark = [pytest.mark.node, pytest.mark.kube, pytest.mark.slow, pytest.mark.timeout(900)]

COMPONENTS = ("auth", "posts", "notifications", "users", "chat", "gateway")
ROLL_SECONDS = 240.0


def deployments(target: cluster.Target) -> dict[str, dict[str, Any]]:
    listing = namespaced(
        target, "get", "deployments", "-l", f"app.kubernetes.io/instance={target.name}"
    )
    return {
        item["metadata"]["labels"]["app.kubernetes.io/component"]: item for item in listing["items"]
    }


def available(deployment: dict[str, Any]) -> bool:
    status, wanted = deployment.get("status", {}), deployment["spec"].get("replicas", 1)
    return bool(
        status.get("availableReplicas", 0) >= wanted
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("replicas", 0) == wanted
    )


def all_available(target: cluster.Target) -> bool:
    found = deployments(target)
    return set(found) == set(COMPONENTS) and all(available(d) for d in found.values())


async def test_the_socialhub_runs_on_the_real_node(
    e2e_socialhub: cluster.Target, lua: str, tmp_path: Path
) -> None:
    target = e2e_socialhub
    assert all_available(target)
    # The operator itself: manifests/base's Deployment, admitted under `restricted`.
    namespace = get_json("get", "namespace", cluster.OPERATOR_NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    operator = get_json("-n", cluster.OPERATOR_NAMESPACE, "get", "deployment", "socialhub-operator")
    assert operator["status"]["availableReplicas"] == 1
    for component in COMPONENTS:
        for pod in pods(target, component):
            assert pod["spec"]["nodeName"] == NODE_NETWORK.node_name
            assert pod["status"]["podIP"].startswith("10.244.0.")
            statuses = pod["status"]["containerStatuses"]
            assert all(s["containerID"].startswith("containerd://") for s in statuses)
    jobs = namespaced(target, "get", "jobs")["items"]
    migrations = [
        job for job in jobs if job["metadata"]["labels"].get("socialhub.dev/job") == "migrate"
    ]
    assert len(migrations) == 3
    assert all(job["status"].get("succeeded") == 1 for job in migrations), [
        job["status"] for job in migrations
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=INFRA.kafka_bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
    finally:
        await admin.close()
    prefix = target.profile.topic_prefix
    assert {f"{prefix}POST_TOPIC", f"{prefix}USER_TOPIC", f"{prefix}DEAD_LETTER_TOPIC"} <= topics
    # Argo CD reads the same status.
    live = namespaced(target, "get", "socialhub", target.name)
    assert argo_health(lua, live, tmp_path) == "Healthy"


async def test_a_post_with_an_image_is_served_from_the_shared_media_volume(
    gateway: httpx.AsyncClient,
) -> None:
    _, token = await register_and_login(gateway)
    image = png(3, 2)
    created = await gateway.post(
        "/posts/",
        headers=bearer(token),
        data={"content": "pic"},
        files={"files": ("photo.png", image, "image/png")},
    )
    assert created.status_code == 201, created.text
    served = await gateway.get(created.json()["media"][0]["url"])
    assert served.status_code == 200
    assert served.content == image


async def test_chat_reaches_clients_on_another_chat_pod(
    e2e_socialhub: cluster.Target, gateway: httpx.AsyncClient
) -> None:
    """Two clients, each connected straight to a different chat pod, share one room."""
    chat_pods = wait_for(
        lambda: (
            [p for p in pods(e2e_socialhub, "chat") if ready(p)][:2]
            if len([p for p in pods(e2e_socialhub, "chat") if ready(p)]) >= 2
            else None
        ),
        timeout=120,
        what="two ready chat pods",
    )
    tokens = [(await register_and_login(gateway))[1] for _ in chat_pods]
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    clients = [socketio.AsyncClient() for _ in chat_pods]
    clients[1].on("new_message", received.put)
    room = f"room-{uuid.uuid4().hex[:8]}"
    try:
        for client, pod, token in zip(clients, chat_pods, tokens, strict=True):
            await client.connect(
                f"http://{pod['status']['podIP']}:5004",
                socketio_path="/chat/socket.io",
                headers=bearer(token),
                transports=["websocket"],
                wait_timeout=10,
            )
            assert (await client.call("join_room", {"roomId": room}, timeout=10))["ok"]
        await clients[0].emit("send_message", {"roomId": room, "message": "across pods"})
        message = await asyncio.wait_for(received.get(), 10)
    finally:
        for client in clients:
            await client.disconnect()
    assert (message["roomId"], message["message"]) == (room, "across pods")


class LoadLoop:
    """A bounded client loop on the gateway, one new connection per request, that counts."""

    def __init__(self, base_url: str, request: Callable[[httpx.AsyncClient], Any]) -> None:
        self.base_url, self.request = base_url, request
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self.accepted: list[str] = []
        self._stop = asyncio.Event()

    async def run(self, *, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10, limits=limits) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    response = await self.request(client)
                except httpx.HTTPError as error:
                    self.errors.append(repr(error))
                else:
                    self.statuses.append(response.status_code)
                    if response.status_code == 201:
                        self.accepted.append(response.json()["id"])
                await asyncio.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()

    @property
    def server_errors(self) -> list[int]:
        return [code for code in self.statuses if code >= 500]


def pod_names(target: cluster.Target) -> dict[str, set[str]]:
    return {
        component: {p["metadata"]["name"] for p in pods(target, component)}
        for component in COMPONENTS
    }


async def test_a_gateway_config_change_rolls_only_the_gateway_without_failed_requests(
    e2e_socialhub: cluster.Target,
) -> None:
    target = e2e_socialhub
    wait_for(lambda: all_available(target), timeout=ROLL_SECONDS, what="a settled SocialHub")
    before = pod_names(target)
    loop = LoadLoop(target.gateway_url, lambda client: client.get("/auth/health"))
    traffic = asyncio.create_task(loop.run(seconds=ROLL_SECONDS))
    await asyncio.sleep(2)
    rate = namespaced(target, "get", "socialhub", target.name)["spec"]["gateway"][
        "rateLimitPerSecond"
    ]
    patch_socialhub(target, {"spec": {"gateway": {"rateLimitPerSecond": rate - 1}}})

    def rolled() -> bool:
        now = pod_names(target)
        return (
            bool(now["gateway"])
            and not now["gateway"] & before["gateway"]
            and all_available(target)
        )

    await asyncio.to_thread(wait_for, rolled, timeout=ROLL_SECONDS, what="the gateway rolled")
    await asyncio.sleep(3)
    loop.stop()
    await traffic
    after = pod_names(target)
    assert {c: after[c] == before[c] for c in COMPONENTS if c != "gateway"} == {
        c: True for c in COMPONENTS if c != "gateway"
    }
    assert len(loop.statuses) > 20
    assert loop.server_errors == []
    assert loop.errors == []
    print(f"gateway roll: {len(loop.statuses)} requests, 0 failed")


async def test_a_killed_posts_pod_is_replaced_and_no_accepted_post_is_lost(
    e2e_socialhub: cluster.Target, gateway: httpx.AsyncClient
) -> None:
    target = e2e_socialhub
    wait_for(lambda: all_available(target), timeout=ROLL_SECONDS, what="a settled SocialHub")
    _, token = await register_and_login(gateway)
    victim = pods(target, "posts")[0]["metadata"]["name"]
    loop = LoadLoop(
        target.gateway_url,
        lambda client: client.post(
            "/posts/", headers=bearer(token), json={"content": f"kept {uuid.uuid4().hex}"}
        ),
    )
    traffic = asyncio.create_task(loop.run(seconds=ROLL_SECONDS))
    await asyncio.sleep(2)
    kubectl("-n", target.namespace, "delete", "pod", victim, "--grace-period=0", "--force")

    def replaced() -> bool:
        names = {p["metadata"]["name"] for p in pods(target, "posts") if ready(p)}
        return bool(names) and victim not in names and all_available(target)

    await asyncio.to_thread(wait_for, replaced, timeout=ROLL_SECONDS, what="posts replaced")
    await asyncio.sleep(2)
    loop.stop()
    await traffic
    assert loop.accepted, loop.statuses
    lost = []
    for post_id in loop.accepted:
        read = await gateway.get(f"/posts/{post_id}", headers=bearer(token))
        if read.status_code != 200:
            lost.append((post_id, read.status_code, read.text))
    assert lost == []
    print(
        f"killed posts pod: {len(loop.accepted)} of {len(loop.statuses)} posts accepted, "
        f"{len(loop.errors)} connection errors, 0 lost"
    )


def _hpa(target: cluster.Target, component: str) -> dict[str, Any]:
    hpa: dict[str, Any] = namespaced(target, "get", "hpa", f"{target.name}-{component}")
    return hpa


async def test_load_on_posts_scales_its_hpa_out_and_back_in(
    e2e_socialhub: cluster.Target, gateway: httpx.AsyncClient
) -> None:
    target = e2e_socialhub
    minimum = _hpa(target, "posts")["spec"]["minReplicas"]
    _, token = await register_and_login(gateway)
    loops = [
        LoadLoop(
            target.gateway_url, lambda client: client.get("/posts/feed", headers=bearer(token))
        )
        for _ in range(6)
    ]
    started = time.monotonic()
    traffic = [asyncio.create_task(loop.run(seconds=120)) for loop in loops]

    def scaled_out() -> int | None:
        desired = int(_hpa(target, "posts")["status"].get("desiredReplicas", 0))
        return desired if desired > minimum else None

    try:
        desired = await asyncio.to_thread(
            wait_for, scaled_out, timeout=115, what="the posts HPA above minReplicas", interval=2
        )
    finally:
        for loop in loops:
            loop.stop()
        await asyncio.gather(*traffic)
    print(f"posts HPA: {minimum} -> {desired} after {time.monotonic() - started:.0f}s of load")
    stopped = time.monotonic()
    await asyncio.to_thread(
        wait_for,
        lambda: _hpa(target, "posts")["status"].get("desiredReplicas") == minimum,
        timeout=240,
        what="the posts HPA back at minReplicas",
        interval=2,
    )
    print(f"posts HPA back to {minimum} {time.monotonic() - stopped:.0f}s after the load")


def test_a_missing_gateway_image_is_degraded_naming_the_pod_then_recovers(
    e2e_socialhub: cluster.Target, lua: str, tmp_path: Path
) -> None:
    target = e2e_socialhub
    live = namespaced(target, "get", "socialhub", target.name)
    good = live["spec"]["gateway"]["image"]
    patch_socialhub(target, {"spec": {"gateway": {"image": "localhost/socialhub-gateway:absent"}}})
    degraded = wait_for(
        lambda: (
            condition(target, "Degraded")
            if condition(target, "Degraded").get("status") == "True"
            else None
        ),
        timeout=180,
        what="Degraded",
    )
    assert f"{target.name}-gateway-" in degraded["message"], degraded
    assert (
        argo_health(lua, namespaced(target, "get", "socialhub", target.name), tmp_path)
        == "Degraded"
    )
    patch_socialhub(target, {"spec": {"gateway": {"image": good}}})
    wait_for(
        lambda: condition(target, "Ready").get("status") == "True",
        timeout=ROLL_SECONDS,
        what="Ready again",
    )


def test_deleting_the_socialhub_removes_every_child(e2e_socialhub: cluster.Target) -> None:
    target = e2e_socialhub
    kubectl(
        "-n", target.namespace, "delete", "socialhub", target.name, "--wait=true", "--timeout=120s"
    )
    kinds = "deployments,services,configmaps,jobs,hpa,pdb,pods"
    selector = f"app.kubernetes.io/instance={target.name}"

    def gone() -> bool:
        left = json.loads(
            kubectl("-n", target.namespace, "get", kinds, "-l", selector, "-o", "json")
        )["items"]
        return not left

    wait_for(gone, timeout=180, what="every child deleted")
