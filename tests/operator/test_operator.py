"""The operator against a real API server, controller manager, scheduler and kwok node.

Every test applies its own SocialHub in a fresh namespace, with `socialhub run` watching.
"""

from pathlib import Path
from typing import Any

import pytest
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, UnprocessibleEntityError

from devstack.servers.kube import FAIL_ANNOTATION
from socialhub_operator.capacity import replica_bounds
from socialhub_operator.render import HASH_ANNOTATION
from socialhub_operator.spec import COMPONENTS, SocialHubSpec
from socialhub_operator.status import JOB_RETRY_SECONDS, RETRY_ANNOTATION
from tests.operator.conftest import argo_health, eventually, sample

# Generous bounds for slow, shared machines: a test waits for several reconciliations.
pytestmark = [pytest.mark.kube, pytest.mark.usefixtures("operator"), pytest.mark.timeout(600)]
CHILD_KINDS = (
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
)
INSTANCE = "socialhub"


def api(dynamic: DynamicClient, api_version: str, kind: str) -> Any:
    return dynamic.resources.get(api_version=api_version, kind=kind)


def children(dynamic: DynamicClient, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for api_version, kind in CHILD_KINDS:
        items = (
            api(dynamic, api_version, kind)
            .get(namespace=namespace, label_selector=f"app.kubernetes.io/instance={INSTANCE}")
            .items
        )
        found |= {(kind, item.metadata.name): item.to_dict() for item in items}
    return found


def condition(hub: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in hub.get("status", {}).get("conditions", []):
        if item["type"] == kind:
            return dict(item)
    return {}


def create(socialhubs: Any, namespace: str, document: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = socialhubs.create(body=document, namespace=namespace).to_dict()
    return created


def get(socialhubs: Any, namespace: str) -> dict[str, Any]:
    hub: dict[str, Any] = socialhubs.get(name=INSTANCE, namespace=namespace).to_dict()
    return hub


def patch_spec(socialhubs: Any, namespace: str, spec: dict[str, Any]) -> None:
    socialhubs.patch(
        name=INSTANCE,
        namespace=namespace,
        body={"spec": spec},
        content_type="application/merge-patch+json",
    )


def template_hash(dynamic: DynamicClient, namespace: str, component: str) -> str:
    deployment = api(dynamic, "apps/v1", "Deployment").get(
        name=f"{INSTANCE}-{component}", namespace=namespace
    )
    value: str = deployment.spec.template.metadata.annotations[HASH_ANNOTATION]
    return value


def wait_ready(socialhubs: Any, namespace: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        hub = get(socialhubs, namespace)
        current = hub["status"]["observedGeneration"] == hub["metadata"]["generation"]
        return hub if current and condition(hub, "Ready").get("status") == "True" else None

    return eventually(ready)


def test_sample_creates_every_child_owned_and_reaches_ready(
    dynamic: DynamicClient, socialhubs: Any, namespace: str, lua: str, tmp_path: Path
) -> None:
    hub = create(socialhubs, namespace, sample())
    hub = wait_ready(socialhubs, namespace)
    assert condition(hub, "Progressing")["status"] == "False"
    assert condition(hub, "Degraded")["status"] == "False"
    assert hub["status"]["version"] == "0.1.0"
    assert argo_health(lua, hub, tmp_path) == "Healthy"
    # Without a media claim posts run one pod, whatever the targets ask: Ready, but said.
    capped = condition(hub, "ReplicasCapped")
    assert (capped["status"], capped["reason"]) == ("True", "TargetsAboveLimit")
    assert "posts at most 1" in capped["message"]
    assert any(e["reason"] == "TargetsAboveLimit" for e in warnings(dynamic, namespace))

    found = children(dynamic, namespace)
    for component in COMPONENTS:
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            assert (kind, f"{INSTANCE}-{component}") in found
    assert ("ConfigMap", f"{INSTANCE}-gateway") in found
    assert ("Secret", f"{INSTANCE}-jwt") in found
    jobs = sorted(name.rsplit("-", 2)[0] for kind, name in found if kind == "Job")
    assert jobs == ["socialhub-auth", "socialhub-kafka", "socialhub-posts", "socialhub-users"]
    for (kind, name), child in found.items():
        owners = child["metadata"].get("ownerReferences") or []
        assert [(o["kind"], o["uid"], o["controller"]) for o in owners] == [
            ("SocialHub", hub["metadata"]["uid"], True)
        ], f"{kind} {name} is not owned"


def test_api_server_defaults_match_the_spec_models(socialhubs: Any, namespace: str) -> None:
    document = sample()
    stored = create(socialhubs, namespace, document)
    assert SocialHubSpec.model_validate(stored["spec"]) == SocialHubSpec.model_validate(
        document["spec"]
    )
    assert stored["spec"]["gateway"]["rateLimitBurst"] == 40
    assert stored["spec"]["components"]["auth"]["targetCpuUtilization"] == 70


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"components": {"auth": {"minReplicas": 5, "maxReplicas": 2}}},
            "minReplicas must not exceed maxReplicas",
        ),
        ({"gateway": {"tlsSecretName": "tls"}}, "TLS needs a host name"),
        ({"media": {"backend": "cloudinary"}}, "the cloudinary backend needs cloudinarySecretName"),
        ({"capacity": {"loginsPerSecond": -1}}, "spec.capacity.loginsPerSecond"),
        ({"logLevel": "LOUD"}, "spec.logLevel"),
        ({"version": "not a tag"}, "spec.version"),
    ],
)
def test_invalid_specs_are_rejected_by_the_api_server(
    socialhubs: Any, namespace: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(UnprocessibleEntityError) as rejected:
        create(socialhubs, namespace, sample(**spec))
    assert message in str(rejected.value.body)


def test_overlong_name_is_rejected_by_cel(socialhubs: Any, namespace: str) -> None:
    document = sample()
    document["metadata"]["name"] = "x" * 31
    with pytest.raises(UnprocessibleEntityError) as rejected:
        create(socialhubs, namespace, document)
    assert "name must be at most 30 characters" in str(rejected.value.body)


def test_capacity_change_resizes_the_autoscalers(
    dynamic: DynamicClient, socialhubs: Any, namespace: str
) -> None:
    create(socialhubs, namespace, sample())
    hpas = api(dynamic, "autoscaling/v2", "HorizontalPodAutoscaler")
    name = f"{INSTANCE}-chat"
    eventually(lambda: hpas.get(name=name, namespace=namespace))
    before = hpas.get(name=name, namespace=namespace).spec.minReplicas

    patch_spec(
        socialhubs, namespace, {"capacity": {"chatConnections": 80_000, "concurrentUsers": 1000}}
    )
    spec = SocialHubSpec.model_validate(get(socialhubs, namespace)["spec"])
    expected = replica_bounds(
        "chat", spec.capacity, spec.components.chat, spec.max_replicas_per_component
    )
    assert expected.minimum == 16  # 80,000 connections / 5,000 per instance
    assert expected.minimum != before
    eventually(
        lambda: (
            (
                hpas.get(name=name, namespace=namespace).spec.minReplicas,
                hpas.get(name=name, namespace=namespace).spec.maxReplicas,
            )
            == (expected.minimum, expected.maximum)
        )
    )
    deployments = api(dynamic, "apps/v1", "Deployment")
    # The controller manager's autoscaler then brings the Deployment up to the new minimum.
    eventually(
        lambda: deployments.get(name=name, namespace=namespace).spec.replicas == expected.minimum
    )


def test_gateway_settings_roll_the_gateway(
    dynamic: DynamicClient, socialhubs: Any, namespace: str
) -> None:
    create(socialhubs, namespace, sample())
    wait_ready(socialhubs, namespace)
    replica_sets = api(dynamic, "apps/v1", "ReplicaSet")
    name = f"{INSTANCE}-gateway"

    def gateway_replica_sets() -> set[str]:
        items = replica_sets.get(
            namespace=namespace, label_selector="app.kubernetes.io/component=gateway"
        ).items
        return {item.metadata.labels["pod-template-hash"] for item in items}

    gateway_before = template_hash(dynamic, namespace, "gateway")
    users_before = template_hash(dynamic, namespace, "users")
    sets_before = gateway_replica_sets()
    patch_spec(socialhubs, namespace, {"gateway": {"rateLimitPerSecond": 77}})

    config_maps = api(dynamic, "v1", "ConfigMap")
    eventually(
        lambda: "rate=77r/s" in config_maps.get(name=name, namespace=namespace).data["nginx.conf"]
    )
    eventually(lambda: template_hash(dynamic, namespace, "gateway") != gateway_before)
    eventually(lambda: gateway_replica_sets() - sets_before)  # a new ReplicaSet rolls out
    assert template_hash(dynamic, namespace, "users") == users_before
    wait_ready(socialhubs, namespace)


def test_a_rotated_backing_secret_rolls_the_pods_that_read_it(
    dynamic: DynamicClient, socialhubs: Any, namespace: str
) -> None:
    secrets = api(dynamic, "v1", "Secret")
    mongo = sample()["spec"]["backing"]["mongo"]["secretName"]  # the namespace fixture's
    create(socialhubs, namespace, sample())
    wait_ready(socialhubs, namespace)
    before = {component: template_hash(dynamic, namespace, component) for component in COMPONENTS}
    secrets.patch(
        name=mongo,
        namespace=namespace,
        body={"stringData": {"url": "mongodb://new-password@mongo:27017"}},
        content_type="application/merge-patch+json",
    )
    eventually(
        lambda: template_hash(dynamic, namespace, "notifications") != before["notifications"]
    )
    after = {component: template_hash(dynamic, namespace, component) for component in COMPONENTS}
    assert {c for c in COMPONENTS if after[c] != before[c]} == {"notifications"}
    wait_ready(socialhubs, namespace)


def test_children_deleted_or_edited_by_hand_are_put_back(
    dynamic: DynamicClient, socialhubs: Any, namespace: str
) -> None:
    create(socialhubs, namespace, sample())
    wait_ready(socialhubs, namespace)
    services = api(dynamic, "v1", "Service")
    name = f"{INSTANCE}-auth"
    uid = services.get(name=name, namespace=namespace).metadata.uid
    services.delete(name=name, namespace=namespace)
    eventually(lambda: services.get(name=name, namespace=namespace).metadata.uid != uid)

    hpas = api(dynamic, "autoscaling/v2", "HorizontalPodAutoscaler")
    wanted = hpas.get(name=name, namespace=namespace).spec.maxReplicas
    hpas.patch(
        name=name,
        namespace=namespace,
        body={"spec": {"maxReplicas": wanted + 40}},
        content_type="application/merge-patch+json",
    )
    eventually(lambda: hpas.get(name=name, namespace=namespace).spec.maxReplicas == wanted)


def test_deleting_the_socialhub_collects_every_child(
    dynamic: DynamicClient, socialhubs: Any, namespace: str
) -> None:
    create(socialhubs, namespace, sample())
    wait_ready(socialhubs, namespace)
    assert len(children(dynamic, namespace)) >= 30
    socialhubs.delete(name=INSTANCE, namespace=namespace)
    eventually(lambda: not children(dynamic, namespace))
    with pytest.raises(NotFoundError):
        get(socialhubs, namespace)


def test_failed_migration_degrades_and_holds_the_old_version(
    dynamic: DynamicClient, socialhubs: Any, namespace: str, lua: str, tmp_path: Path
) -> None:
    create(socialhubs, namespace, sample())
    wait_ready(socialhubs, namespace)
    # kwok fails pods carrying this annotation: the new auth migration exits 1.
    patch_spec(
        socialhubs,
        namespace,
        {
            "version": "0.2.0",
            "migrations": {"backoffLimit": 0},
            "components": {"auth": {"podAnnotations": {FAIL_ANNOTATION: "true"}}},
        },
    )

    def degraded() -> dict[str, Any] | None:
        hub = get(socialhubs, namespace)
        return hub if condition(hub, "Degraded").get("status") == "True" else None

    hub = eventually(degraded)
    assert condition(hub, "Degraded")["reason"] == "MigrationFailed"
    assert "auth migration" in condition(hub, "Degraded")["message"]
    assert condition(hub, "Ready")["status"] == "False"
    assert hub["status"]["version"] == "0.1.0"
    assert argo_health(lua, hub, tmp_path) == "Degraded"

    deployments = api(dynamic, "apps/v1", "Deployment")

    def image(component: str) -> str:
        deployment = deployments.get(name=f"{INSTANCE}-{component}", namespace=namespace)
        value: str = deployment.spec.template.spec.containers[0].image
        return value

    eventually(lambda: image("users").endswith(":0.2.0"))  # its migration succeeded
    assert image("auth").endswith(":0.1.0")
    assert any(e["reason"] == "MigrationFailed" for e in warnings(dynamic, namespace))

    # The database comes back (here: kwok stops failing the pods). Nobody touches the Job: the
    # operator creates it again JOB_RETRY_SECONDS after it failed, and auth rolls out.
    jobs = api(dynamic, "batch/v1", "Job")
    [failed_job] = [
        job
        for job in jobs.get(
            namespace=namespace, label_selector="app.kubernetes.io/component=auth-migrate"
        ).items
        if job.metadata.name in condition(hub, "Degraded")["message"]
    ]
    job_name, failed_uid = failed_job.metadata.name, failed_job.metadata.uid
    patch_spec(socialhubs, namespace, {"components": {"auth": {"podAnnotations": None}}})
    retried = eventually(
        lambda: (
            (job := jobs.get(name=job_name, namespace=namespace)).metadata.uid != failed_uid and job
        ),
        timeout=JOB_RETRY_SECONDS + 120,
    )
    assert "BackoffLimitExceeded" in retried.metadata.annotations[RETRY_ANNOTATION]
    hub = wait_ready(socialhubs, namespace)
    assert hub["status"]["version"] == "0.2.0"
    assert image("auth").endswith(":0.2.0")


def test_strimzi_topics_when_the_crd_exists(
    dynamic: DynamicClient, socialhubs: Any, namespace: str
) -> None:
    crds = api(dynamic, "apiextensions.k8s.io/v1", "CustomResourceDefinition")
    crds.server_side_apply(
        body=KAFKA_TOPIC_CRD, field_manager="socialhub-tests", force_conflicts=True
    )
    try:
        document = sample()
        document["spec"]["backing"]["kafka"]["strimziCluster"] = "main"
        create(socialhubs, namespace, document)

        def topics() -> set[str]:
            dynamic.resources.invalidate_cache()
            items = (
                api(dynamic, "kafka.strimzi.io/v1beta2", "KafkaTopic")
                .get(namespace=namespace)
                .items
            )
            return {item.spec.topicName for item in items}

        eventually(lambda: topics() == {"POST_TOPIC", "USER_TOPIC", "DEAD_LETTER_TOPIC"})
        jobs = {name for kind, name in children(dynamic, namespace) if kind == "Job"}
        assert not any(name.startswith(f"{INSTANCE}-kafka-topics") for name in jobs)
    finally:
        crds.delete(name=KAFKA_TOPIC_CRD["metadata"]["name"])


# The part of Strimzi's KafkaTopic CRD the operator relies on (group, version, kind, spec).
KAFKA_TOPIC_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "kafkatopics.kafka.strimzi.io"},
    "spec": {
        "group": "kafka.strimzi.io",
        "names": {
            "kind": "KafkaTopic",
            "listKind": "KafkaTopicList",
            "plural": "kafkatopics",
            "singular": "kafkatopic",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1beta2",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def test_a_deleted_jwt_secret_is_regenerated_and_rolls_auth(
    dynamic: DynamicClient, socialhubs: Any, namespace: str
) -> None:
    create(socialhubs, namespace, sample())
    wait_ready(socialhubs, namespace)
    secrets = api(dynamic, "v1", "Secret")
    deployments = api(dynamic, "apps/v1", "Deployment")
    name = f"{INSTANCE}-jwt"

    def auth_hash() -> str:
        deployment = deployments.get(name=f"{INSTANCE}-auth", namespace=namespace)
        value: str = deployment.spec.template.metadata.annotations[HASH_ANNOTATION]
        return value

    before_secret = secrets.get(name=name, namespace=namespace).data["jwtSecret"]
    before_hash = auth_hash()
    secrets.delete(name=name, namespace=namespace)
    regenerated = eventually(lambda: secrets.get(name=name, namespace=namespace).data["jwtSecret"])
    assert regenerated != before_secret
    # auth reads the key when it starts: its pods roll onto the new one.
    eventually(lambda: auth_hash() != before_hash)
    wait_ready(socialhubs, namespace)


def test_stalled_rollout_degrades(socialhubs: Any, namespace: str) -> None:
    create(socialhubs, namespace, sample(progressDeadlineSeconds=30))
    wait_ready(socialhubs, namespace)
    # chat has no migration: its new pods start at once and fail, so the rollout never ends.
    patch_spec(
        socialhubs,
        namespace,
        {"components": {"chat": {"podAnnotations": {FAIL_ANNOTATION: "true"}}}},
    )

    def degraded() -> dict[str, Any] | None:
        hub = get(socialhubs, namespace)
        stalled = "socialhub-chat rollout exceeded its progress deadline"
        return hub if stalled in condition(hub, "Degraded").get("message", "") else None

    hub = eventually(degraded)
    assert condition(hub, "Degraded")["status"] == "True"
    # The crash-looping pods are named first: they say what to fix.
    assert condition(hub, "Degraded")["reason"] == "PodsFailing"
    assert "socialhub-chat-" in condition(hub, "Degraded")["message"]
    assert "CrashLoopBackOff" in condition(hub, "Degraded")["message"]
    assert condition(hub, "Ready")["status"] == "False"


def warnings(dynamic: DynamicClient, namespace: str) -> list[dict[str, Any]]:
    listed = api(dynamic, "v1", "Event").get(namespace=namespace).to_dict()["items"]
    return [
        event
        for event in listed
        if event["type"] == "Warning" and event["involvedObject"]["kind"] == "SocialHub"
    ]


def test_a_missing_backing_secret_is_degraded_until_it_exists(
    dynamic: DynamicClient, socialhubs: Any, namespace: str, lua: str, tmp_path: Path
) -> None:
    secrets = api(dynamic, "v1", "Secret")
    redis = sample()["spec"]["backing"]["redis"]["secretName"]
    kept = secrets.get(name=redis, namespace=namespace).to_dict()
    secrets.delete(name=redis, namespace=namespace)
    create(socialhubs, namespace, sample())

    def degraded() -> dict[str, Any] | None:
        hub = get(socialhubs, namespace)
        return hub if condition(hub, "Degraded").get("reason") == "SecretMissing" else None

    hub = eventually(degraded)
    assert redis in condition(hub, "Degraded")["message"]
    assert condition(hub, "Ready")["status"] == "False"
    assert argo_health(lua, hub, tmp_path) == "Degraded"
    events = eventually(lambda: warnings(dynamic, namespace))
    assert any(e["reason"] == "SecretMissing" and redis in e["message"] for e in events)

    secrets.create(
        namespace=namespace,
        body={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": redis},
            "data": kept["data"],
        },
    )
    wait_ready(socialhubs, namespace)


@pytest.mark.parametrize(
    ("spec", "refused", "words", "fix"),
    [
        # users' resources go to its migration Job too, and the Deployment waits for that Job
        (
            {"components": {"users": {"resources": {"requests": {"cpu": "lots"}}}}},
            ["Job socialhub-users-migrate-"],
            "quantities must match",
            {"components": {"users": {"resources": None}}},
        ),
        (
            {"gateway": {"image": ""}},
            ["Deployment socialhub-gateway: "],
            "image: Required value",
            {"gateway": {"image": None}},
        ),
    ],
)
def test_a_child_the_api_server_refuses_is_degraded_with_its_reason(
    dynamic: DynamicClient,
    socialhubs: Any,
    namespace: str,
    spec: dict[str, Any],
    refused: list[str],
    words: str,
    fix: dict[str, Any],
) -> None:
    create(socialhubs, namespace, sample(**spec))

    def degraded() -> dict[str, Any] | None:
        hub = get(socialhubs, namespace)
        return hub if condition(hub, "Degraded").get("reason") == "ApplyFailed" else None

    message = condition(eventually(degraded), "Degraded")["message"]
    assert [child for child in refused if child in message] == refused
    assert words in message
    events = eventually(lambda: warnings(dynamic, namespace))
    assert any(e["reason"] == "ApplyFailed" and words in e["message"] for e in events)
    patch_spec(socialhubs, namespace, fix)
    wait_ready(socialhubs, namespace)


def test_pods_that_cannot_be_placed_keep_it_progressing(
    socialhubs: Any, namespace: str, lua: str, tmp_path: Path
) -> None:
    # Pending pods may yet be placed (a node added): Progressing, until the progress deadline.
    create(
        socialhubs,
        namespace,
        sample(components={"chat": {"resources": {"requests": {"cpu": "100"}}}}),
    )  # kwok's node has 64 cores

    def progressing() -> dict[str, Any] | None:
        hub = get(socialhubs, namespace)
        current = hub.get("status", {}).get("observedGeneration") == hub["metadata"]["generation"]
        found = condition(hub, "Progressing")
        return (
            hub
            if current
            and found.get("reason") == "RollingOut"
            and "socialhub-chat: 0/" in found["message"]
            else None
        )

    hub = eventually(progressing)
    assert condition(hub, "Progressing")["status"] == "True"
    assert condition(hub, "Degraded")["status"] == "False"
    assert argo_health(lua, hub, tmp_path) == "Progressing"
    patch_spec(socialhubs, namespace, {"components": {"chat": {"resources": None}}})
    wait_ready(socialhubs, namespace)
