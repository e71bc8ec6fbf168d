"""Pure logic of the operator: spec defaults, capacity sizing, rendering, status, the CRD file."""

import copy
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from socialhub.kit.settings import ServiceSettings
from socialhub_operator import crd, gateway, render
from socialhub_operator.capacity import (
    PER_INSTANCE,
    ReplicaBounds,
    needed_replicas,
    replica_bounds,
)
from socialhub_operator.cli import render_yaml
from socialhub_operator.render import ClusterFacts, Instance
from socialhub_operator.spec import (
    COMPONENTS,
    MAX_REPLICAS,
    SERVICES,
    Capacity,
    Component,
    SocialHubSpec,
)
from socialhub_operator.status import conditions, verdicts
from tests.gateway.conftest import NGINX, self_signed

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "manifests" / "samples" / "socialhub.yaml"


def sample_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    return document


def instance(**spec_overrides: Any) -> Instance:
    spec = sample_document()["spec"] | spec_overrides
    return Instance("hub", "ns", SocialHubSpec.model_validate(spec))


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def test_crd_file_is_generated_from_the_spec_models() -> None:
    on_disk = yaml.safe_load((ROOT / "crds" / "socialhub.dev_socialhubs.yaml").read_text())
    assert on_disk == crd.definition(), "run: socialhub crd > crds/socialhub.dev_socialhubs.yaml"


def test_crd_schema_carries_defaults_bounds_and_cel() -> None:
    schema = crd.spec_schema()
    component = schema["properties"]["components"]["properties"]["auth"]
    assert component["properties"]["targetCpuUtilization"]["default"] == 70
    assert component["properties"]["minReplicas"]["minimum"] == 1
    assert "minReplicas <= self.maxReplicas" in component["x-kubernetes-validations"][0]["rule"]
    assert schema["required"] == ["version", "backing"]
    assert "$ref" not in yaml.safe_dump(schema)


def test_concurrent_user_sizing_follows_the_design_document() -> None:
    design = Capacity(
        concurrent_users=10_000,
        logins_per_second=0,
        token_checks_per_second=0,
        posts_per_second=0,
        follows_per_second=0,
        chat_connections=0,
        chat_messages_per_second=0,
        notification_events_per_second=0,
    )
    replicas = {service: needed_replicas(service, design) for service in SERVICES}
    assert replicas == {"auth": 3, "users": 3, "posts": 5, "chat": 10, "notifications": 3}
    assert set(PER_INSTANCE) == set(COMPONENTS)


def test_replicas_come_from_the_largest_target() -> None:
    logins_for_ten = 10 * PER_INSTANCE["auth"]["logins_per_second"]
    capacity = Capacity(
        concurrent_users=10_000, logins_per_second=int(logins_for_ten), burst_factor=2
    )  # users alone need 3 auth instances, logins 10
    bounds = replica_bounds("auth", capacity, Component(), MAX_REPLICAS)
    assert (bounds.minimum, bounds.maximum) == (10, 20)


def test_overrides_win_and_keep_min_below_max() -> None:
    capacity = Capacity(chat_connections=50_000)  # needs 10 chat instances
    assert replica_bounds("chat", capacity, Component(max_replicas=4), MAX_REPLICAS).minimum == 4
    pinned = replica_bounds(
        "chat", capacity, Component(min_replicas=2, max_replicas=5), MAX_REPLICAS
    )
    assert (pinned.minimum, pinned.maximum) == (2, 5)
    with pytest.raises(ValidationError, match="minReplicas must not exceed maxReplicas"):
        Component(min_replicas=5, max_replicas=2)


def _integer_fields(node: dict[str, Any], path: str = "spec") -> Iterator[tuple[str, Any]]:
    if node.get("type") == "integer":
        yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _integer_fields(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _integer_fields(node[key], f"{path}[]")


def test_every_number_of_the_spec_is_bounded() -> None:
    """An unbounded target overflowed the HPA's int32 fields or asked for millions of pods."""
    fields = dict(_integer_fields(crd.spec_schema()))
    assert "spec.capacity.loginsPerSecond" in fields
    unbounded = [
        path
        for path, field in fields.items()
        if "minimum" not in field or field.get("maximum", 2**31) >= 2**31
    ]
    assert not unbounded


@pytest.mark.parametrize("logins", [10**12, 133_143_986_331, -1])
def test_capacity_targets_out_of_range_are_refused(logins: int) -> None:
    with pytest.raises(ValidationError, match="loginsPerSecond"):
        instance(capacity={"loginsPerSecond": logins})


def test_replicas_are_capped_per_component() -> None:
    hub = instance(
        capacity={"loginsPerSecond": 10**8},
        maxReplicasPerComponent=20,
        components={"users": {"minReplicas": 30, "maxReplicas": 40}},
    )
    plan = render.plan(hub, ClusterFacts(gate_on_migrations=False))
    assert plan.bounds["auth"] == ReplicaBounds(minimum=20, maximum=20, capped=True)
    assert plan.bounds["users"] == ReplicaBounds(minimum=20, maximum=20, capped=True)
    assert not plan.bounds["chat"].capped
    for hpa in by_kind(plan.apply, "HorizontalPodAutoscaler").values():
        assert hpa["spec"]["maxReplicas"] <= 20
    unset = {k: v for k, v in sample_document()["spec"].items() if k != "maxReplicasPerComponent"}
    assert SocialHubSpec.model_validate(unset).max_replicas_per_component == 100


def test_every_child_is_rendered_with_common_labels() -> None:
    plan = render.plan(instance(), ClusterFacts(gate_on_migrations=False))
    kinds = [m["kind"] for m in plan.apply]
    assert kinds.count("Deployment") == 6
    assert kinds.count("Service") == 6
    assert kinds.count("HorizontalPodAutoscaler") == 6
    assert kinds.count("PodDisruptionBudget") == 6
    assert kinds.count("Job") == 4  # three migrations and the topics
    for manifest in plan.apply:
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "hub"
        assert labels["app.kubernetes.io/managed-by"] == render.MANAGED_BY
        assert manifest["metadata"]["namespace"] == "ns"


def _selects(selector: dict[str, str], pod_labels: dict[str, str]) -> bool:
    return selector.items() <= pod_labels.items()


def test_selectors_pick_only_their_deployments_pods() -> None:
    """A budget counting finished Job pods breaks the disruption controller (no evictions)."""
    plan = render.plan(instance(), ClusterFacts(gate_on_migrations=False))
    selectors = [
        m["spec"]["selector"].get("matchLabels", m["spec"]["selector"])
        for m in plan.apply
        if m["kind"] in ("Deployment", "Service", "PodDisruptionBudget")
    ]
    jobs = by_kind(plan.apply, "Job").values()
    assert len(jobs) == 4
    for job in jobs:
        pod_labels = job["spec"]["template"]["metadata"]["labels"]
        assert pod_labels[render.JOB_KIND_LABEL] in ("migrate", "topics")
        assert not any(_selects(selector, pod_labels) for selector in selectors), pod_labels
    for deployment in by_kind(plan.apply, "Deployment").values():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        owners = [s for s in selectors if _selects(s, pod_labels)]
        assert owners == [deployment["spec"]["selector"]["matchLabels"]] * 3  # its own three


def test_deployments_wait_for_their_migration() -> None:
    hub = instance()
    gated = render.plan(hub, ClusterFacts())
    assert set(by_kind(gated.apply, "Deployment")) == {
        "hub-notifications",
        "hub-chat",
        "hub-gateway",
    }
    assert gated.held == {("Deployment", f"hub-{s}") for s in ("auth", "users", "posts")}
    migrated = render.plan(
        hub, ClusterFacts(succeeded_jobs=frozenset(gated.migration_jobs.values()))
    )
    assert len(by_kind(migrated.apply, "Deployment")) == 6
    assert not migrated.held


def test_a_new_version_gets_a_new_migration_job() -> None:
    before = render.plan(instance(), ClusterFacts()).migration_jobs
    after = render.plan(instance(version="0.2.0"), ClusterFacts()).migration_jobs
    assert set(before) == set(after) == {"auth", "users", "posts"}
    assert all(before[s] != after[s] for s in before)


def test_services_get_their_settings_from_secrets() -> None:
    deployments = by_kind(
        render.plan(instance(), ClusterFacts(gate_on_migrations=False)).apply, "Deployment"
    )
    env = {
        e["name"]: e
        for e in deployments["hub-auth"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["SERVICE_PORT"]["value"] == "5000"
    assert env["SERVICE_HOST"]["value"] == "0.0.0.0"
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "socialhub-postgres",
        "key": "auth",
    }
    assert env["JWT_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "hub-jwt", "key": "jwtSecret"}
    chat = {
        e["name"]: e
        for e in deployments["hub-chat"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert "JWT_SECRET" not in chat
    assert "DATABASE_URL" not in chat
    assert chat["AUTH_SERVICE_URL"]["value"] == "http://hub-auth.ns.svc.cluster.local:5000"
    assert "replicas" not in deployments["hub-auth"]["spec"]  # the HPA owns them


def _pod(plan: render.Plan, kind: str, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = by_kind(plan.apply, kind)[name]["spec"]["template"]["spec"]
    return pod


def _mounts(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}


def _volumes(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod["volumes"]}


def test_every_mount_has_its_volume() -> None:
    hub = instance(
        media={"claimName": "media"},
        gateway={"host": "hub.example.com", "tlsSecretName": "gateway-tls"},
    )
    for manifest in render.plan(hub, ClusterFacts(gate_on_migrations=False)).apply:
        if manifest["kind"] in ("Deployment", "Job"):
            pod = manifest["spec"]["template"]["spec"]
            assert {m["name"] for m in pod["containers"][0]["volumeMounts"]} <= set(
                _volumes(pod)
            ), manifest["metadata"]["name"]


def test_local_media_live_on_the_claim_the_gateway_serves() -> None:
    hub = instance(
        media={"claimName": "hub-media"}, gateway={"publicUrl": "https://hub.example.com/"}
    )
    plan = render.plan(hub, ClusterFacts(gate_on_migrations=False))
    posts = _pod(plan, "Deployment", "hub-posts")
    env = {e["name"]: e.get("value") for e in posts["containers"][0]["env"]}
    assert env["MEDIA_DIR"] == "/media"
    assert env["MEDIA_BASE_URL"] == "https://hub.example.com/media"
    assert _mounts(posts)["/media"] == {"name": "media", "mountPath": "/media"}
    assert _volumes(posts)["media"]["persistentVolumeClaim"] == {"claimName": "hub-media"}
    assert posts["securityContext"]["fsGroup"] == render.SERVICES_GID
    gateway = _pod(plan, "Deployment", "hub-gateway")
    assert _mounts(gateway)["/media"]["readOnly"] is True
    assert _volumes(gateway)["media"]["persistentVolumeClaim"] == {
        "claimName": "hub-media",
        "readOnly": True,
    }
    assert "alias /media/;" in render.gateway_config_map(hub)["data"]["nginx.conf"]
    assert plan.bounds["posts"].maximum > 1
    migration = _pod(plan, "Job", plan.migration_jobs["posts"])
    assert "media" not in _volumes(migration)


def test_local_media_without_a_claim_keep_posts_at_one_replica() -> None:
    hub = instance(media={})
    plan = render.plan(hub, ClusterFacts(gate_on_migrations=False))
    posts = _pod(plan, "Deployment", "hub-posts")
    assert _volumes(posts)["media"] == {"name": "media", "emptyDir": {}}
    env = {e["name"]: e.get("value") for e in posts["containers"][0]["env"]}
    assert (env["MEDIA_DIR"], env["MEDIA_BASE_URL"]) == ("/media", "/media")
    assert (plan.bounds["posts"].minimum, plan.bounds["posts"].maximum) == (1, 1)
    assert "media" not in _volumes(_pod(plan, "Deployment", "hub-gateway"))
    assert "alias" not in render.gateway_config_map(hub)["data"]["nginx.conf"]


def test_cloudinary_media_need_no_volume() -> None:
    hub = instance(
        media={"backend": "cloudinary", "cloudinarySecretName": "cloudinary", "claimName": "unused"}
    )
    plan = render.plan(hub, ClusterFacts(gate_on_migrations=False))
    posts = _pod(plan, "Deployment", "hub-posts")
    assert "media" not in _volumes(posts)
    assert "MEDIA_DIR" not in {e["name"] for e in posts["containers"][0]["env"]}
    assert "media" not in _volumes(_pod(plan, "Deployment", "hub-gateway"))
    assert plan.bounds["posts"].maximum > 1


@pytest.mark.parametrize("url", ["hub.example.com", "https://a b", "ftp://hub", "https://h/?q"])
def test_public_url_is_an_http_base(url: str) -> None:
    with pytest.raises(ValidationError):
        instance(gateway={"publicUrl": url})


def _env(hub: Instance, service: str) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in render.service_env(hub, service)}


def test_auth_sends_reset_mails_through_the_spec_smtp_server() -> None:
    hub = instance(
        mail={
            "host": "smtp.example.com",
            "port": 2525,
            "starttls": False,
            "fromAddress": "Hub <hub@example.com>",
            "secretName": "smtp",
        }
    )
    env = _env(hub, "auth")
    assert {
        name: env[name]
        for name in ("MAIL_BACKEND", "SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS", "MAIL_FROM")
    } == {
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "smtp.example.com",
        "SMTP_PORT": "2525",
        "SMTP_STARTTLS": "false",
        "MAIL_FROM": "Hub <hub@example.com>",
    }
    assert env["SMTP_PASSWORD"] == {"secretKeyRef": {"name": "smtp", "key": "password"}}
    assert env["SMTP_USERNAME"] == {"secretKeyRef": {"name": "smtp", "key": "username"}}
    assert "SMTP_HOST" not in _env(hub, "users")
    read = render.secrets_read(render.plan(hub, ClusterFacts(gate_on_migrations=False)).apply)
    assert "smtp" in read  # a rotated SMTP password rolls auth


def test_without_a_mail_server_reset_codes_are_logged_outside_production() -> None:
    assert _env(instance(environment="test"), "auth")["MAIL_BACKEND"] == "log"
    production = _env(instance(), "auth")
    assert "MAIL_BACKEND" not in production  # the log backend refuses production
    assert "SMTP_PASSWORD" not in _env(instance(mail={"host": "smtp.example.com"}), "auth")
    with pytest.raises(ValidationError, match="fromAddress"):
        instance(mail={"host": "smtp.example.com", "fromAddress": "a@b\r\nBcc: x@y"})


def test_socialhubs_sharing_a_redis_never_share_channels() -> None:
    spec = instance().spec
    hubs = [
        Instance("hub", "ns", spec),
        Instance("hub", "other", spec),
        Instance("hub2", "ns", spec),
    ]
    for service in SERVICES:
        prefixes = {_env(hub, service)["REDIS_CHANNEL_PREFIX"] for hub in hubs}
        assert prefixes == {"ns.hub.", "other.hub.", "ns.hub2."}


def test_extra_env_replaces_same_named_entries() -> None:
    hub = instance(components={"users": {"env": [{"name": "LOG_LEVEL", "value": "DEBUG"}]}})
    env = render.service_env(hub, "users")
    assert [e for e in env if e["name"] == "LOG_LEVEL"] == [{"name": "LOG_LEVEL", "value": "DEBUG"}]


def _template_hash(hub: Instance, name: str, facts: ClusterFacts | None = None) -> str:
    plan = render.plan(hub, facts or ClusterFacts(gate_on_migrations=False))
    annotations = by_kind(plan.apply, "Deployment")[name]["spec"]["template"]["metadata"][
        "annotations"
    ]
    value: str = annotations[render.HASH_ANNOTATION]
    return value


def test_gateway_settings_change_the_gateway_hash_only() -> None:
    base, changed = instance(), instance(gateway={"rateLimitPerSecond": 99})
    assert _template_hash(base, "hub-gateway") != _template_hash(changed, "hub-gateway")
    assert _template_hash(base, "hub-users") == _template_hash(changed, "hub-users")
    conf = render.gateway_config_map(changed)["data"]["nginx.conf"]
    assert "rate=99r/s" in conf
    assert "hub-auth.ns.svc.cluster.local:5000" in conf


def test_a_changed_secret_rolls_exactly_the_pods_that_read_it() -> None:
    hub = instance()
    mongo, jwt = hub.spec.backing.mongo.secret_name, hub.jwt_secret_name
    base = {mongo: "a", jwt: "a"}
    one = ClusterFacts(gate_on_migrations=False, secret_digests=base)
    rotated = ClusterFacts(gate_on_migrations=False, secret_digests=base | {mongo: "b"})
    regenerated = ClusterFacts(gate_on_migrations=False, secret_digests=base | {jwt: "b"})
    changed = {
        name
        for name in ("hub-auth", "hub-users", "hub-notifications", "hub-gateway")
        if _template_hash(hub, name, one) != _template_hash(hub, name, rotated)
    }
    assert changed == {"hub-notifications"}
    assert _template_hash(hub, "hub-auth", one) != _template_hash(hub, "hub-auth", regenerated)
    assert _template_hash(hub, "hub-users", one) == _template_hash(hub, "hub-users", regenerated)


def test_the_secrets_read_are_every_secret_a_deployment_refers_to() -> None:
    extra = {"name": "EXTRA", "valueFrom": {"secretKeyRef": {"name": "extra", "key": "k"}}}
    hub = instance(
        gateway={"host": "hub.example.com", "tlsSecretName": "gateway-tls"},
        components={"posts": {"env": [extra]}},
    )
    backing = hub.spec.backing
    stores = {
        backing.postgres.secret_name,
        backing.mongo.secret_name,
        backing.redis.secret_name,
        backing.kafka.secret_name,
    }
    read = render.secrets_read(render.plan(hub, ClusterFacts(gate_on_migrations=False)).apply)
    assert read == stores | {hub.jwt_secret_name, "gateway-tls", "extra"}


def local_nginx_version() -> str:
    banner = subprocess.run([NGINX, "-v"], capture_output=True, text=True, check=True).stderr
    return banner.strip().rsplit("/", 1)[-1]  # "nginx version: nginx/1.22.1"


@pytest.mark.parametrize(
    "gateway_spec",
    [
        {},
        {"host": "hub.example.com", "tlsSecretName": "gateway-tls"},
        {
            "trustedProxies": ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"],
            "publicUrl": "https://hub.example.com",
        },
    ],
    ids=["plain", "tls", "trusted-proxies"],
)
@pytest.mark.parametrize("media", [{}, {"claimName": "hub-media"}], ids=["", "local-media"])
def test_nginx_accepts_the_rendered_gateway(
    tmp_path: Path, gateway_spec: dict[str, Any], media: dict[str, Any]
) -> None:
    """`nginx -t`, run by the container's own command line, on the ConfigMap's nginx.conf.

    The cluster's names and paths become this machine's: upstreams 127.0.0.1 (nginx resolves
    names when it reads the file), the prefix, TLS and media directories temporary ones. The
    nginx here is Debian's, so the spec names its version.
    """
    hub = instance(gateway=gateway_spec | {"nginxVersion": local_nginx_version()}, media=media)
    plan = render.plan(hub, ClusterFacts(gate_on_migrations=False))
    conf = by_kind(plan.apply, "ConfigMap")["hub-gateway"]["data"][gateway.CONFIG_FILE]
    tls = tmp_path / "tls"
    tls.mkdir()
    cert, key = self_signed(tls)
    Path(cert).rename(tls / "tls.crt")  # the keys of a kubernetes.io/tls Secret
    Path(key).rename(tls / "tls.key")
    paths = {
        gateway.PREFIX: str(tmp_path / "prefix"),
        gateway.TLS_DIR: str(tls),
        f"alias {gateway.MEDIA_DIR}/": f"alias {tmp_path}/media/",
        f"{gateway.CONFIG_DIR}/{gateway.CONFIG_FILE}": str(tmp_path / "nginx.conf"),
    }
    for cluster, local in paths.items():
        conf = conf.replace(cluster, local)
    (tmp_path / "nginx.conf").write_text(
        re.sub(r"hub-[a-z]+\.ns\.svc\.cluster\.local", "127.0.0.1", conf)
    )
    (tmp_path / "prefix").mkdir()
    (tmp_path / "media").mkdir()
    container = _pod(plan, "Deployment", "hub-gateway")["containers"][0]
    command = [paths.get(word, word) for word in container["command"]]
    assert command[0] == "nginx"
    assert command[-2:] == ["-g", "daemon off;"]
    result = subprocess.run([NGINX, *command[1:-2], "-t"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr, result.stderr
    assert ("alias" in conf) == bool(media)


@pytest.mark.parametrize(
    "proxy", ["1.2.3.4/99", "10.0.0.1/8", "fe80::1%eth0", "10.0.0.0/8;", "any"]
)
def test_trusted_proxies_are_addresses_or_cidrs(proxy: str) -> None:
    """`1.2.3.4/99` used to pass and break `nginx -t`; the CRD has the same rule in CEL."""
    with pytest.raises(ValidationError, match="trustedProxies"):
        instance(gateway={"trustedProxies": [proxy]})
    rules = crd.spec_schema()["properties"]["gateway"]["x-kubernetes-validations"]
    assert any("isCIDR(p)" in rule["rule"] for rule in rules)


def test_the_default_gateway_speaks_http2_as_its_nginx_wants() -> None:
    hub = instance(gateway={"host": "hub.example.com", "tlsSecretName": "gateway-tls"})
    assert hub.spec.gateway.image.endswith(f":{hub.spec.gateway.nginx_version}-alpine")
    conf = render.gateway_config_map(hub)["data"][gateway.CONFIG_FILE]
    assert "http2 on;" in conf
    assert "ssl http2" not in conf


def test_gateway_node_port_and_scale_down_window() -> None:
    hub = instance(
        gateway={"serviceType": "NodePort", "nodePort": 30080},
        components={"posts": {"scaleDownStabilizationSeconds": 15}},
    )
    plan = render.plan(hub, ClusterFacts(gate_on_migrations=False))
    port = by_kind(plan.apply, "Service")["hub-gateway"]["spec"]["ports"][0]
    assert (port["port"], port["nodePort"]) == (80, 30080)
    hpas = by_kind(plan.apply, "HorizontalPodAutoscaler")
    assert hpas["hub-posts"]["spec"]["behavior"] == {
        "scaleDown": {"stabilizationWindowSeconds": 15}
    }
    assert "behavior" not in hpas["hub-users"]["spec"]  # Kubernetes' default window
    with pytest.raises(ValidationError, match="nodePort needs serviceType"):
        instance(gateway={"nodePort": 30080})


def test_pods_keep_serving_while_they_leave_the_endpoints() -> None:
    """A rolling update or scale-in never sends a request to a pod already gone."""
    shutdown = ServiceSettings.model_fields["shutdown_grace_seconds"].default
    plan = render.plan(instance(), ClusterFacts(gate_on_migrations=False))
    for deployment in by_kind(plan.apply, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"]:
            assert container["lifecycle"]["preStop"] == {
                "exec": {"command": ["sleep", str(render.DRAIN_SECONDS)]}
            }
        assert pod["terminationGracePeriodSeconds"] > render.DRAIN_SECONDS + shutdown
    for job in by_kind(plan.apply, "Job").values():
        assert "lifecycle" not in job["spec"]["template"]["spec"]["containers"][0]


def test_strimzi_topics_replace_the_topic_job() -> None:
    hub = instance(
        backing=sample_document()["spec"]["backing"]
        | {"kafka": {"secretName": "k", "strimziCluster": "main", "topicPrefix": "prod."}}
    )
    plan = render.plan(hub, ClusterFacts(strimzi=True))
    topics = by_kind(plan.apply, "KafkaTopic")
    assert {t["spec"]["topicName"] for t in topics.values()} == {
        "prod.POST_TOPIC",
        "prod.USER_TOPIC",
        "prod.DEAD_LETTER_TOPIC",
    }
    assert all(t["metadata"]["labels"]["strimzi.io/cluster"] == "main" for t in topics.values())
    assert plan.topic_job is None
    assert not any(name.startswith("hub-kafka-topics") for name in by_kind(plan.apply, "Job"))


def test_owned_adds_a_controller_reference() -> None:
    owner = render.owner_reference("hub", "uid-1")
    manifest = render.owned({"kind": "Service", "metadata": {"name": "x"}}, owner)
    assert manifest["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "socialhub.dev/v1alpha1",
            "kind": "SocialHub",
            "name": "hub",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def _available(name: str, config_hash: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "generation": 2},
        "spec": {
            "replicas": 2,
            "template": {"metadata": {"annotations": {render.HASH_ANNOTATION: config_hash}}},
        },
        "status": {
            "observedGeneration": 2,
            "replicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 2,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    }


def _complete(condition: str = "Complete", message: str = "") -> dict[str, Any]:
    return {
        "status": {
            "conditions": [
                {
                    "type": condition,
                    "status": "True",
                    "reason": "BackoffLimitExceeded" if message else "",
                    "message": message,
                }
            ]
        }
    }


def _state(
    hub: Instance,
) -> tuple[render.Plan, dict[str, Any], dict[str, Any], dict[str, str | None]]:
    first = render.plan(hub, ClusterFacts())
    plan = render.plan(hub, ClusterFacts(succeeded_jobs=frozenset(first.migration_jobs.values())))
    expected: dict[str, str | None] = {
        m["metadata"]["name"]: m["spec"]["template"]["metadata"]["annotations"][
            render.HASH_ANNOTATION
        ]
        for m in plan.apply
        if m["kind"] == "Deployment"
    }
    deployments = {name: _available(name, h or "") for name, h in expected.items()}
    jobs = {name: _complete() for name in plan.migration_jobs.values()}
    assert plan.topic_job
    jobs[plan.topic_job] = _complete()
    return plan, deployments, jobs, expected


def _by_type(found: list[Any]) -> dict[str, Any]:
    return {v.type: v for v in found}


def test_status_ready_when_everything_rolled_out() -> None:
    found = _by_type(verdicts(*_state(instance())))
    assert found["Ready"].status
    assert found["Ready"].reason == "AllComponentsReady"
    assert not found["Progressing"].status
    assert not found["Degraded"].status


def test_status_progressing_while_a_rollout_runs() -> None:
    plan, deployments, jobs, expected = _state(instance())
    deployments["hub-chat"]["status"]["updatedReplicas"] = 1
    found = _by_type(verdicts(plan, deployments, jobs, expected))
    assert found["Progressing"].status
    assert found["Progressing"].reason == "RollingOut"
    assert "hub-chat: 1/2 replicas updated" in found["Progressing"].message
    assert not found["Ready"].status


def test_status_degraded_on_failed_migration_or_stalled_rollout() -> None:
    plan, deployments, jobs, expected = _state(instance())
    jobs[plan.migration_jobs["users"]] = _complete("Failed", "Job has reached the backoff limit")
    found = _by_type(verdicts(plan, deployments, jobs, expected))
    assert found["Degraded"].status
    assert found["Degraded"].reason == "MigrationFailed"
    assert "backoff limit" in found["Degraded"].message
    assert not found["Ready"].status
    assert not found["Progressing"].status

    plan, deployments, jobs, expected = _state(instance())
    deployments["hub-posts"]["status"]["conditions"].append(
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    )
    found = _by_type(verdicts(plan, deployments, jobs, expected))
    assert found["Degraded"].reason == "RolloutStalled"


def test_condition_transition_time_moves_only_on_flips() -> None:
    found = verdicts(*_state(instance()))
    first = conditions(found, [], 1, now=datetime(2024, 1, 1, tzinfo=UTC))
    again = conditions(found, copy.deepcopy(first), 2, now=datetime(2024, 1, 2, tzinfo=UTC))
    assert [c["lastTransitionTime"] for c in again] == [c["lastTransitionTime"] for c in first]
    assert all(c["observedGeneration"] == 2 for c in again)


def test_cli_render_prints_every_child() -> None:
    documents = yaml.safe_load_all(render_yaml([sample_document()], strimzi=False))
    kinds = sorted({d["kind"] for d in documents})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        "PodDisruptionBudget",
        "Service",
    ]


def test_cli_entry_point_renders_and_prints_the_crd() -> None:
    rendered = subprocess.run(
        [sys.executable, "-m", "socialhub_operator.cli", "render", "-f", str(SAMPLE), "--strimzi"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(rendered)]
    assert kinds.count("KafkaTopic") == 0  # the sample names no Strimzi cluster
    assert kinds.count("Deployment") == 6
    printed = subprocess.run(
        [sys.executable, "-m", "socialhub_operator.cli", "crd"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert yaml.safe_load(printed) == crd.definition()
