"""Pure rendering: one SocialHub spec (plus what the cluster reports) -> the objects that run it.

No I/O here, so `socialhub render` and the operator produce the same children and unit tests
cover the logic directly. The operator adds owner references and applies the plan.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from socialhub.contracts import topology
from socialhub.contracts.events import ALL_TOPICS
from socialhub.contracts.topology import Env, Store
from socialhub_operator import gateway
from socialhub_operator.capacity import ReplicaBounds, replica_bounds
from socialhub_operator.spec import (
    API_VERSION,
    COMPONENTS,
    GATEWAY,
    KIND,
    SERVICE_PORTS,
    SERVICES,
    Component,
    SocialHubSpec,
)

Manifest = dict[str, Any]
FIELD_MANAGER = "socialhub-operator"
MANAGED_BY = "socialhub-operator"
HASH_ANNOTATION = "socialhub.dev/config-hash"
JOB_KIND_LABEL = "socialhub.dev/job"
# Services with PostgreSQL migrations (`python -m socialhub.<service> migrate`).
MIGRATING = tuple(service.name for service in topology.SERVICES if service.migrates)
GENERATED_JWT_KEY = "jwtSecret"
# The services image's user and group (Dockerfile): the group that may write the media volume.
SERVICES_GID = 10001
MEDIA_VOLUME = "media"
STORES: Mapping[str, frozenset[Store]] = {
    service.name: service.stores for service in topology.SERVICES
}
# A stopping pod first leaves the Services' endpoints; kube-proxy and the gateway take a moment
# to notice. Its containers keep serving this long (preStop) before they get SIGTERM, so no
# request goes to a process already gone. Both images have `sleep`.
DRAIN_SECONDS = 5
# From the first preStop second to SIGKILL: the drain, then the process's own shutdown (the
# services' SHUTDOWN_GRACE_SECONDS is 10; chat also closes its websockets).
TERMINATION_GRACE_SECONDS = {"chat": 60}
DEFAULT_TERMINATION_GRACE_SECONDS = 30
DEFAULT_RESOURCES: Mapping[str, Manifest] = {
    # Design document: 512 MB per instance, 1 GB for posts (media uploads).
    **{
        service: {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
        for service in SERVICES
    },
    "posts": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
    GATEWAY: {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
}


@dataclass(frozen=True)
class Instance:
    name: str
    namespace: str
    spec: SocialHubSpec

    def child(self, component: str) -> str:
        return f"{self.name}-{component}"

    @property
    def jwt_secret_name(self) -> str:
        return self.spec.jwt_secret.name if self.spec.jwt_secret else self.child("jwt")

    @property
    def jwt_secret_key(self) -> str:
        return self.spec.jwt_secret.key if self.spec.jwt_secret else GENERATED_JWT_KEY


@dataclass(frozen=True)
class ClusterFacts:
    """What rendering needs to know about the cluster (the operator looks it up)."""

    succeeded_jobs: frozenset[str] = frozenset()
    # False renders every Deployment at once (GitOps output: the sync order gates instead).
    gate_on_migrations: bool = True
    strimzi: bool = False
    # A digest of each Secret the pods read, by name (see `secrets_read`): rotating one rolls
    # the pods that read it. A Secret missing here counts as empty.
    secret_digests: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    apply: list[Manifest]
    # Deployments kept as they are until their migration Job succeeds.
    held: frozenset[tuple[str, str]]
    migration_jobs: Mapping[str, str]
    topic_job: str | None
    bounds: Mapping[str, ReplicaBounds]


def digest(value: object, length: int = 16) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def labels(instance: Instance, component: str) -> dict[str, str]:
    return {
        **selector(instance, component),
        "app.kubernetes.io/name": "socialhub",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": "socialhub",
        "app.kubernetes.io/version": instance.spec.version,
    }


def selector(instance: Instance, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": instance.name, "app.kubernetes.io/component": component}


def _metadata(instance: Instance, name: str, component: str) -> Manifest:
    return {"name": name, "namespace": instance.namespace, "labels": labels(instance, component)}


def _secret_env(name: str, secret: str, key: str) -> Manifest:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def service_env(instance: Instance, service: str) -> list[Manifest]:
    """The service's settings (pydantic-settings, no prefix) from the spec and Secret refs."""
    spec, stores = instance.spec, STORES[service]
    env: list[Manifest] = [
        {"name": Env.SOCIALHUB_ENV, "value": spec.environment},
        {"name": Env.SERVICE_HOST, "value": "0.0.0.0"},  # every interface of the pod
        {"name": Env.SERVICE_PORT, "value": str(SERVICE_PORTS[service])},
        {"name": Env.LOG_LEVEL, "value": spec.log_level},
    ]
    backing = spec.backing
    if Store.POSTGRES in stores:
        env.append(_secret_env(Env.DATABASE_URL, backing.postgres.secret_name, service))
    if Store.MONGO in stores:
        env += [
            _secret_env(Env.MONGO_URL, backing.mongo.secret_name, backing.mongo.key),
            {"name": Env.MONGO_DATABASE, "value": backing.mongo.database},
        ]
    if Store.REDIS in stores:
        # Pub/sub channels are global to a Redis server: SocialHubs sharing one stay apart.
        env += [
            _secret_env(Env.REDIS_URL, backing.redis.secret_name, backing.redis.key),
            {"name": Env.REDIS_CHANNEL_PREFIX, "value": f"{instance.namespace}.{instance.name}."},
        ]
    if Store.KAFKA in stores:
        env += _kafka_env(instance)
    if Store.JWT in stores:
        env.append(_secret_env(Env.JWT_SECRET, instance.jwt_secret_name, instance.jwt_secret_key))
    if Store.MAIL in stores:
        env += _mail_env(instance)
    if Store.AUTH in stores:
        host = gateway.upstream_host(instance.name, instance.namespace, "auth")
        env.append(
            {"name": Env.AUTH_SERVICE_URL, "value": f"http://{host}:{SERVICE_PORTS['auth']}"}
        )
    if Store.MEDIA in stores:
        env.append({"name": Env.MEDIA_BACKEND, "value": spec.media.backend})
        if spec.media.backend == "local":
            env += [
                {"name": Env.MEDIA_DIR, "value": gateway.MEDIA_DIR},
                {
                    "name": Env.MEDIA_BASE_URL,
                    "value": f"{spec.gateway.public_url.rstrip('/')}/media",
                },
            ]
        if spec.media.cloudinary_secret_name:
            env.append(
                _secret_env(Env.CLOUDINARY_URL, spec.media.cloudinary_secret_name, "cloudinaryUrl")
            )
    if Store.AI in stores and spec.ai.gemini_secret_name:
        env.append(_secret_env(Env.GEMINI_API_KEY, spec.ai.gemini_secret_name, "geminiApiKey"))
    return _with_overrides(env, spec.components.of(service))


def _kafka_env(instance: Instance) -> list[Manifest]:
    kafka = instance.spec.backing.kafka
    return [
        _secret_env(Env.KAFKA_BOOTSTRAP_SERVERS, kafka.secret_name, kafka.key),
        {"name": Env.KAFKA_TOPIC_PREFIX, "value": kafka.topic_prefix},
        {"name": Env.KAFKA_TOPIC_PARTITIONS, "value": str(kafka.partitions)},
        {"name": Env.KAFKA_TOPIC_REPLICATION, "value": str(kafka.replication_factor)},
        {"name": Env.KAFKA_RETENTION_DAYS, "value": str(kafka.retention_days)},
    ]


def _mail_env(instance: Instance) -> list[Manifest]:
    mail = instance.spec.mail
    if not mail.host:
        # The log backend refuses production (it would log reset codes): no reset mails there.
        production = instance.spec.environment == "production"
        return [] if production else [{"name": Env.MAIL_BACKEND, "value": "log"}]
    env: list[Manifest] = [
        {"name": Env.MAIL_BACKEND, "value": "smtp"},
        {"name": Env.SMTP_HOST, "value": mail.host},
        {"name": Env.SMTP_PORT, "value": str(mail.port)},
        {"name": Env.SMTP_STARTTLS, "value": str(mail.starttls).lower()},
        {"name": Env.MAIL_FROM, "value": mail.from_address},
    ]
    if mail.secret_name:
        env += [
            _secret_env(Env.SMTP_USERNAME, mail.secret_name, "username"),
            _secret_env(Env.SMTP_PASSWORD, mail.secret_name, "password"),
        ]
    return env


def _with_overrides(env: list[Manifest], component: Component) -> list[Manifest]:
    """Extra env replaces same-named entries (server-side apply refuses duplicate keys)."""
    extra = [item.model_dump(by_alias=True, exclude_none=True) for item in component.env]
    overridden = {item["name"] for item in extra}
    return [item for item in env if item["name"] not in overridden] + extra


def _resources(component: str, overrides: Component) -> Manifest:
    if overrides.resources is None:
        return dict(DEFAULT_RESOURCES[component])
    return {
        key: {name: str(value) for name, value in values.items()}
        for key, values in overrides.resources.model_dump().items()
        if values
    }


def _security_context() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_spec(
    instance: Instance,
    containers: list[Manifest],
    volumes: list[Manifest],
    *,
    restart_policy: str = "Always",
) -> Manifest:
    spec: Manifest = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": restart_policy,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {}}, *volumes],
    }
    if instance.spec.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in instance.spec.image_pull_secrets]
    return spec


def _media_volume(instance: Instance, *, read_only: bool) -> Manifest:
    media = instance.spec.media
    if media.on_claim:
        return {
            "name": MEDIA_VOLUME,
            "persistentVolumeClaim": {
                "claimName": media.claim_name,
                **({"readOnly": True} if read_only else {}),
            },
        }
    return {"name": MEDIA_VOLUME, "emptyDir": {}}


def _writes_local_media(instance: Instance, service: str) -> bool:
    return Store.MEDIA in STORES[service] and instance.spec.media.backend == "local"


def _service_container(instance: Instance, service: str, command: str) -> Manifest:
    port = SERVICE_PORTS[service]
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    if command == "serve" and _writes_local_media(instance, service):
        mounts.append({"name": MEDIA_VOLUME, "mountPath": gateway.MEDIA_DIR})
    container: Manifest = {
        "name": service,
        "image": instance.spec.service_image,
        "imagePullPolicy": instance.spec.image_pull_policy,
        "args": ["python", "-m", f"socialhub.{service}", command],
        "env": service_env(instance, service),
        "resources": _resources(service, instance.spec.components.of(service)),
        "securityContext": _security_context(),
        "volumeMounts": mounts,
    }
    if command == "serve":
        container["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        container["readinessProbe"] = {
            "httpGet": {"path": "/ready", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        }
        container["livenessProbe"] = {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        }
        container["startupProbe"] = {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 2,
            "failureThreshold": 60,
        }
    return container


def _pod_annotations(instance: Instance, component: str, config_hash: str) -> dict[str, str]:
    annotations = {HASH_ANNOTATION: config_hash}
    if component in SERVICES:
        annotations |= {
            "prometheus.io/scrape": "true",
            "prometheus.io/path": "/metrics",
            "prometheus.io/port": str(SERVICE_PORTS[component]),
        }
    return annotations | instance.spec.components.of(component).pod_annotations


def _draining(container: Manifest) -> Manifest:
    return {
        **container,
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(DRAIN_SECONDS)]}}},
    }


def _deployment(
    instance: Instance, component: str, pod_spec: Manifest, config_hash: str
) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(instance, instance.child(component), component),
        "spec": {
            # No replicas: the HPA owns them.
            "selector": {"matchLabels": selector(instance, component)},
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": instance.spec.progress_deadline_seconds,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": labels(instance, component),
                    "annotations": _pod_annotations(instance, component, config_hash),
                },
                "spec": {
                    **pod_spec,
                    "containers": [_draining(c) for c in pod_spec["containers"]],
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS.get(
                        component, DEFAULT_TERMINATION_GRACE_SECONDS
                    ),
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector(instance, component)},
                        }
                    ],
                },
            },
        },
    }


def _service(
    instance: Instance, component: str, ports: list[Manifest], service_type: str = "ClusterIP"
) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(instance, instance.child(component), component),
        "spec": {"type": service_type, "selector": selector(instance, component), "ports": ports},
    }


def _autoscaler(instance: Instance, component: str, bounds: ReplicaBounds) -> Manifest:
    overrides = instance.spec.components.of(component)
    spec: Manifest = {
        "scaleTargetRef": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": instance.child(component),
        },
        "minReplicas": bounds.minimum,
        "maxReplicas": bounds.maximum,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": overrides.target_cpu_utilization,
                    },
                },
            }
        ],
    }
    if overrides.scale_down_stabilization_seconds is not None:
        spec["behavior"] = {
            "scaleDown": {"stabilizationWindowSeconds": overrides.scale_down_stabilization_seconds}
        }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(instance, instance.child(component), component),
        "spec": spec,
    }


def _disruption_budget(instance: Instance, component: str) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(instance, instance.child(component), component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector(instance, component)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def _job(instance: Instance, component: str, purpose: str, container: Manifest) -> Manifest:
    """A run-once Job named after a digest of what it runs: new inputs, new Job.

    Its pods get their own component label (`auth-migrate`), outside every Deployment's,
    Service's and budget's selector: a budget that also counted finished Job pods would make
    the disruption controller fail and refuse every eviction.
    """
    spec = instance.spec
    pod_labels = {**labels(instance, f"{component}-{purpose}"), JOB_KIND_LABEL: purpose}
    annotations = (
        dict(spec.components.of(component).pod_annotations) if component in COMPONENTS else {}
    )
    pod_spec = _pod_spec(instance, [container], [], restart_policy="Never")
    name = f"{instance.child(component)}-{purpose}-{digest(pod_spec, 10)}"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {**_metadata(instance, name, component), "labels": pod_labels},
        "spec": {
            "backoffLimit": spec.migrations.backoff_limit,
            "activeDeadlineSeconds": spec.migrations.active_deadline_seconds,
            "template": {
                "metadata": {"labels": pod_labels, "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }


def migration_job(instance: Instance, service: str) -> Manifest:
    return _job(instance, service, "migrate", _service_container(instance, service, "migrate"))


def topics_job(instance: Instance) -> Manifest:
    container = {
        "name": "topics",
        "image": instance.spec.service_image,
        "imagePullPolicy": instance.spec.image_pull_policy,
        "args": ["python", "-m", "socialhub.kit.events.topics"],
        "env": _kafka_env(instance),  # all `socialhub.kit.events.topics` reads
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": _security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return _job(instance, "kafka", "topics", container)


def kafka_topics(instance: Instance) -> list[Manifest]:
    kafka = instance.spec.backing.kafka
    retention_ms = kafka.retention_days * 24 * 3600 * 1000
    topics = []
    for topic in ALL_TOPICS:
        full = f"{kafka.topic_prefix}{topic}"
        name = f"{instance.name}-{full.lower().replace('_', '-').replace('.', '-')}"
        metadata = _metadata(instance, name, "kafka")
        metadata["labels"]["strimzi.io/cluster"] = kafka.strimzi_cluster
        topics.append(
            {
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "KafkaTopic",
                "metadata": metadata,
                "spec": {
                    "topicName": full,
                    "partitions": kafka.partitions,
                    "replicas": kafka.replication_factor,
                    "config": {"retention.ms": str(retention_ms)},
                },
            }
        )
    return topics


def jwt_secret(instance: Instance, value: str) -> Manifest:
    """The generated signing key; created once by the operator, never rendered to YAML."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(instance, instance.jwt_secret_name, "auth"),
        "type": "Opaque",
        "stringData": {GENERATED_JWT_KEY: value},
    }


def _secret_names(pod_spec: Manifest) -> set[str]:
    """Secrets a pod reads: env `secretKeyRef`s, `envFrom` and secret volumes."""
    names = {
        volume["secret"]["secretName"]
        for volume in pod_spec.get("volumes", [])
        if "secret" in volume
    }
    for container in pod_spec.get("containers", []):
        names |= {
            item["valueFrom"]["secretKeyRef"]["name"]
            for item in container.get("env", [])
            if "secretKeyRef" in item.get("valueFrom", {})
        }
        names |= {
            source["secretRef"]["name"]
            for source in container.get("envFrom", [])
            if "secretRef" in source
        }
    return names


def secrets_read(manifests: Iterable[Manifest]) -> set[str]:
    """Every Secret the Deployments among `manifests` read: what the operator digests."""
    return {
        name
        for manifest in manifests
        if manifest["kind"] == "Deployment"
        for name in _secret_names(manifest["spec"]["template"]["spec"])
    }


def _config_hash(pod_spec: Manifest, facts: ClusterFacts, *config: object) -> str:
    read = {name: facts.secret_digests.get(name, "") for name in sorted(_secret_names(pod_spec))}
    return digest([pod_spec, read, *config])


def _service_deployment(instance: Instance, service: str, facts: ClusterFacts) -> Manifest:
    container = _service_container(instance, service, "serve")
    media = _writes_local_media(instance, service)
    pod_spec = _pod_spec(
        instance, [container], [_media_volume(instance, read_only=False)] if media else []
    )
    if media:
        # Writable by the services' group; the ownership is fixed once, not at every start.
        pod_spec["securityContext"] |= {
            "fsGroup": SERVICES_GID,
            "fsGroupChangePolicy": "OnRootMismatch",
        }
    return _deployment(instance, service, pod_spec, _config_hash(pod_spec, facts))


def gateway_config_map(instance: Instance) -> Manifest:
    conf = gateway.nginx_conf(instance.name, instance.namespace, instance.spec)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(instance, instance.child(GATEWAY), GATEWAY),
        "data": {gateway.CONFIG_FILE: conf},
    }


def _gateway_deployment(instance: Instance, config_map: Manifest, facts: ClusterFacts) -> Manifest:
    spec = instance.spec
    tls = bool(spec.gateway.tls_secret_name)
    ports = [{"name": "gateway", "containerPort": gateway.LISTEN_PORT, "protocol": "TCP"}]
    mounts = [
        {"name": "tmp", "mountPath": gateway.PREFIX},
        {"name": "config", "mountPath": gateway.CONFIG_DIR, "readOnly": True},
    ]
    volumes: list[Manifest] = [
        {"name": "config", "configMap": {"name": config_map["metadata"]["name"]}}
    ]
    if tls:
        mounts.append({"name": "tls", "mountPath": gateway.TLS_DIR, "readOnly": True})
        volumes.append({"name": "tls", "secret": {"secretName": spec.gateway.tls_secret_name}})
    if spec.media.on_claim:
        mounts.append({"name": MEDIA_VOLUME, "mountPath": gateway.MEDIA_DIR, "readOnly": True})
        volumes.append(_media_volume(instance, read_only=True))
    container = {
        "name": "nginx",
        "image": spec.gateway.image,
        "imagePullPolicy": spec.image_pull_policy,
        # -e: the error log before the configuration is read (the default path is read-only).
        "command": [
            "nginx",
            "-e",
            "stderr",
            "-p",
            gateway.PREFIX,
            "-c",
            f"{gateway.CONFIG_DIR}/{gateway.CONFIG_FILE}",
            "-g",
            "daemon off;",
        ],
        "ports": ports,
        "resources": _resources(GATEWAY, spec.components.gateway),
        "env": _with_overrides([], spec.components.gateway),
        "securityContext": _security_context(),
        "volumeMounts": mounts,
        "readinessProbe": {
            "httpGet": {"path": "/health", "port": "gateway", "scheme": "HTTPS" if tls else "HTTP"},
            "periodSeconds": 5,
        },
        "livenessProbe": {"tcpSocket": {"port": "gateway"}, "periodSeconds": 10},
    }
    pod_spec = _pod_spec(instance, [container], volumes)
    return _deployment(
        instance, GATEWAY, pod_spec, _config_hash(pod_spec, facts, config_map["data"])
    )


def _gateway_service(instance: Instance) -> Manifest:
    tls = bool(instance.spec.gateway.tls_secret_name)
    port: Manifest = {
        "name": "https" if tls else "http",
        "port": 443 if tls else 80,
        "targetPort": "gateway",
        "protocol": "TCP",
    }
    if instance.spec.gateway.node_port is not None:
        port["nodePort"] = instance.spec.gateway.node_port
    return _service(instance, GATEWAY, [port], instance.spec.gateway.service_type)


def _replica_cap(instance: Instance, component: str) -> int:
    """Media in a posts pod's own emptyDir exist in that pod only: one posts replica."""
    if component == "posts" and instance.spec.media.in_pod:
        return 1
    return instance.spec.max_replicas_per_component


def plan(instance: Instance, facts: ClusterFacts) -> Plan:
    """Every child in apply order: config, Services, Jobs, Deployments, autoscalers, budgets."""
    spec = instance.spec
    config_map = gateway_config_map(instance)
    apply: list[Manifest] = [config_map]
    held: set[tuple[str, str]] = set()
    jobs = {service: migration_job(instance, service) for service in MIGRATING}
    bounds = {
        component: replica_bounds(
            component,
            spec.capacity,
            spec.components.of(component),
            _replica_cap(instance, component),
        )
        for component in COMPONENTS
    }

    apply += [
        _service(
            instance,
            service,
            [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        )
        for service, port in SERVICE_PORTS.items()
    ]
    apply.append(_gateway_service(instance))

    topic_job: str | None = None
    if facts.strimzi and spec.backing.kafka.strimzi_cluster:
        apply += kafka_topics(instance)
    else:
        topics = topics_job(instance)
        topic_job = topics["metadata"]["name"]
        apply.append(topics)
    apply += jobs.values()

    deployments = []
    for service in SERVICES:
        migration = jobs.get(service)
        if (
            migration
            and facts.gate_on_migrations
            and migration["metadata"]["name"] not in facts.succeeded_jobs
        ):
            held.add(("Deployment", instance.child(service)))
            continue
        deployments.append(_service_deployment(instance, service, facts))
    deployments.append(_gateway_deployment(instance, config_map, facts))
    apply += deployments
    apply += [_autoscaler(instance, component, bounds[component]) for component in COMPONENTS]
    apply += [_disruption_budget(instance, component) for component in COMPONENTS]
    return Plan(
        apply=apply,
        held=frozenset(held),
        migration_jobs={service: job["metadata"]["name"] for service, job in jobs.items()},
        topic_job=topic_job,
        bounds=bounds,
    )


def owner_reference(name: str, uid: str) -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned(manifest: Manifest, owner: Manifest) -> Manifest:
    return {**manifest, "metadata": {**manifest["metadata"], "ownerReferences": [owner]}}
