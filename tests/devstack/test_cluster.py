"""`make cluster`'s SocialHub as the operator will read it (pure parts, no cluster needed)."""

import base64
from typing import Any

from devstack import cluster
from devstack.config import INFRA, NODE_NETWORK, PROFILES
from devstack.images import Images
from devstack.platform import Infra
from socialhub_operator.spec import SocialHubSpec

BUILT = Images(
    services="localhost/socialhub:abc123",
    operator="localhost/socialhub-operator:abc",
    gateway="localhost/socialhub-gateway:def456",
    pause="localhost/pause:1",
)


def spec_of(document: dict[str, Any]) -> SocialHubSpec:
    return SocialHubSpec.model_validate(document["spec"])


def test_the_cluster_socialhub_is_a_valid_spec_with_this_machines_images_and_data() -> None:
    document = cluster.socialhub(cluster.CLUSTER, BUILT)
    spec = spec_of(document)
    assert (spec.image, spec.version) == ("localhost/socialhub", "abc123")
    assert spec.gateway.image == BUILT.gateway
    assert spec.gateway.node_port == PROFILES["cluster"].gateway_port
    assert spec.media.claim_name == cluster.MEDIA_CLAIM
    assert (spec.mail.host, spec.mail.port) == (NODE_NETWORK.node_ip, INFRA.smtp_port)
    assert spec.backing.kafka.topic_prefix == "cluster."
    assert document["metadata"] == {"name": "socialhub", "namespace": "socialhub"}


def test_overrides_merge_into_the_small_profile_instead_of_replacing_it() -> None:
    target = cluster.Target(PROFILES["e2e"], namespace="e2e-x")
    spec = spec_of(cluster.socialhub(target, BUILT, {"components": {"chat": {"minReplicas": 2}}}))
    assert spec.components.chat.min_replicas == 2
    assert spec.components.chat.resources is not None  # the small profile's, kept
    assert spec.components.users.max_replicas == 1
    limits = {item.name: item.value for item in spec.components.auth.env}
    assert limits == dict(PROFILES["e2e"].env)
    assert spec.gateway.rate_limit_per_second == PROFILES["e2e"].gateway_rate[0]


def test_backing_secrets_point_pods_at_the_node_address() -> None:
    secrets = {
        s["metadata"]["name"]: s for s in cluster.backing_secrets(cluster.CLUSTER, Infra.default())
    }
    assert set(secrets) == {
        "socialhub-postgres",
        "socialhub-mongo",
        "socialhub-redis",
        "socialhub-kafka",
    }
    decoded = {
        key: base64.b64decode(value).decode()
        for key, value in secrets["socialhub-postgres"]["data"].items()
    }
    assert set(decoded) == {"auth", "users", "posts"}
    assert all(f"@{NODE_NETWORK.node_ip}:{INFRA.postgres_port}/" in url for url in decoded.values())
    kafka = base64.b64decode(secrets["socialhub-kafka"]["data"]["bootstrapServers"]).decode()
    assert kafka == f"{NODE_NETWORK.node_ip}:{INFRA.kafka_node_port}"
