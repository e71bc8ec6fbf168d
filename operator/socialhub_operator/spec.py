"""The SocialHub resource's spec as typed models: one source for the CRD schema and defaults.

`crd.py` turns these models into the CRD's OpenAPI schema (defaults, bounds, CEL rules), so the
API server defaults and validates exactly what the operator and `socialhub render` parse here.
"""

import ipaddress
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from socialhub.contracts import topology

GROUP = "socialhub.dev"
VERSION = "v1alpha1"
KIND = "SocialHub"
PLURAL = "socialhubs"
API_VERSION = f"{GROUP}/{VERSION}"

# The services with their documented ports (socialhub.contracts.topology); the gateway fronts
# them.
SERVICE_PORTS: dict[str, int] = {service.name: service.port for service in topology.SERVICES}
SERVICES = topology.SERVICE_NAMES
GATEWAY = topology.GATEWAY
COMPONENTS = (*SERVICES, GATEWAY)
MAX_REPLICAS = 1000  # per component: far above one cluster's needs, far below int32
# Any capacity target: far above one platform's load, and small enough that the sizing
# arithmetic (targets x burst factor) stays exact.
MAX_TARGET = 100_000_000


class CelRule(BaseModel):
    rule: str
    message: str


class SpecModel(BaseModel):
    """camelCase in YAML, snake_case in Python; unknown fields are refused like the API server."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )
    cel: ClassVar[tuple[CelRule, ...]] = ()


Quantity = Annotated[str | int, Field(json_schema_extra={"x-kubernetes-int-or-string": True})]


class Resources(SpecModel):
    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)


class EnvVar(SpecModel):
    """A container environment variable (`valueFrom` as in a Pod spec)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str | None = None
    value_from: dict[str, object] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )

    cel = (
        CelRule(
            rule="!(has(self.value) && has(self.valueFrom))",
            message="set value or valueFrom, not both",
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.value is not None and self.value_from is not None:
            raise ValueError("set value or valueFrom, not both")
        return self


class Component(SpecModel):
    """Per-component overrides; unset replica bounds come from the capacity targets."""

    min_replicas: int | None = Field(default=None, ge=1, le=MAX_REPLICAS)
    max_replicas: int | None = Field(default=None, ge=1, le=MAX_REPLICAS)
    target_cpu_utilization: int = Field(default=70, ge=10, le=100)
    scale_down_stabilization_seconds: int | None = Field(
        default=None,
        ge=0,
        le=3600,
        description="how long the autoscaler waits for lower "
        "load to last before it removes replicas; unset: Kubernetes' 300",
    )
    resources: Resources | None = None
    env: list[EnvVar] = Field(default_factory=list, max_length=100)
    pod_annotations: dict[str, str] = Field(default_factory=dict)

    cel = (
        CelRule(
            rule="!has(self.minReplicas) || !has(self.maxReplicas) || "
            "self.minReplicas <= self.maxReplicas",
            message="minReplicas must not exceed maxReplicas",
        ),
    )

    @model_validator(mode="after")
    def _min_at_most_max(self) -> Self:
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and self.min_replicas > self.max_replicas
        ):
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class Components(SpecModel):
    auth: Component = Field(default_factory=Component)
    posts: Component = Field(default_factory=Component)
    notifications: Component = Field(default_factory=Component)
    users: Component = Field(default_factory=Component)
    chat: Component = Field(default_factory=Component)
    gateway: Component = Field(default_factory=Component)

    def of(self, component: str) -> Component:
        value = getattr(self, component)
        assert isinstance(value, Component)
        return value


class Capacity(SpecModel):
    """What the platform must carry; replicas follow from the per-instance capacity table."""

    concurrent_users: int = Field(default=1000, ge=0, le=MAX_TARGET)
    logins_per_second: int = Field(default=50, ge=0, le=MAX_TARGET)
    token_checks_per_second: int = Field(default=500, ge=0, le=MAX_TARGET)
    posts_per_second: int = Field(default=50, ge=0, le=MAX_TARGET)
    follows_per_second: int = Field(default=100, ge=0, le=MAX_TARGET)
    chat_connections: int = Field(default=1000, ge=0, le=MAX_TARGET)
    chat_messages_per_second: int = Field(default=1000, ge=0, le=MAX_TARGET)
    notification_events_per_second: int = Field(default=1000, ge=0, le=MAX_TARGET)
    burst_factor: int = Field(
        default=3, ge=1, le=20, description="maxReplicas = minReplicas needed x burstFactor"
    )


Name = Annotated[
    str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
]


class Postgres(SpecModel):
    secret_name: Name = Field(
        description="Secret with one DATABASE_URL per service, keyed "
        "auth, users and posts (postgresql+asyncpg://...)"
    )


class Mongo(SpecModel):
    secret_name: Name = Field(description="Secret holding the MongoDB URL")
    key: str = "url"
    database: str = Field(default="socialhub", min_length=1)


class Redis(SpecModel):
    secret_name: Name = Field(description="Secret holding the Redis URL")
    key: str = "url"


class Kafka(SpecModel):
    secret_name: Name = Field(description="Secret holding the bootstrap servers")
    key: str = "bootstrapServers"
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    partitions: int = Field(default=3, ge=1, le=1000)
    replication_factor: int = Field(default=1, ge=1, le=10)
    retention_days: int = Field(default=7, ge=1, le=3650)
    strimzi_cluster: str = Field(
        default="",
        description="Kafka cluster label for Strimzi "
        "KafkaTopics; used when the KafkaTopic CRD is installed",
    )


class Backing(SpecModel):
    postgres: Postgres
    mongo: Mongo
    redis: Redis
    kafka: Kafka


def _network(value: str) -> str:
    """An address or a CIDR without address bits below its prefix, as nginx takes them."""
    ipaddress.ip_network(value)
    return value


# The nginx of the default gateway image.
DEFAULT_NGINX_VERSION = "1.27.4"
TrustedProxy = Annotated[
    str, Field(max_length=64, pattern=r"^[0-9a-fA-F.:]+(/[0-9]{1,3})?$"), AfterValidator(_network)
]


class Gateway(SpecModel):
    image: str = f"nginxinc/nginx-unprivileged:{DEFAULT_NGINX_VERSION}-alpine"
    nginx_version: str = Field(
        default=DEFAULT_NGINX_VERSION,
        pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$",
        description="the version of the image's nginx: from 1.25.1 "
        "HTTP/2 is configured with `http2 on;`, before as a listen "
        "parameter",
    )
    host: str = Field(default="", description="server_name; empty accepts any host")
    public_url: str = Field(
        default="",
        pattern=r"^(https?://[^\s/?#]+(/[^\s?#]*)?)?$",
        description="scheme://host[/path] where clients reach the gateway; local media URLs "
        "start with it (empty: relative /media/... URLs)",
    )
    tls_secret_name: str = Field(
        default="", description="kubernetes.io/tls Secret; enables HTTPS on port 443"
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    node_port: int | None = Field(
        default=None,
        ge=30000,
        le=32767,
        description="the Service's node port (NodePort or "
        "LoadBalancer); unset: Kubernetes picks one",
    )
    rate_limit_per_second: int = Field(default=20, ge=1, le=100000, description="per client IP")
    rate_limit_burst: int = Field(default=40, ge=0, le=100000)
    auth_cache_seconds: int = Field(
        default=5,
        ge=0,
        le=300,
        description="how long a token check is reused; bounds how "
        "long a logged-out token keeps working",
    )
    upload_max_body_mb: int = Field(default=60, ge=1, le=1024)
    trusted_proxies: list[TrustedProxy] = Field(
        default_factory=list,
        max_length=100,
        description="addresses or CIDRs of load balancers "
        "whose X-Forwarded-For is believed (rate limits then see the real client)",
    )
    worker_processes: int = Field(default=2, ge=1, le=64)

    cel = (
        CelRule(
            rule="self.tlsSecretName == '' || self.host != ''", message="TLS needs a host name"
        ),
        # An empty list has no default in the schema: absent, not [], when unset.
        CelRule(
            rule="!has(self.trustedProxies) || self.trustedProxies.all(p, isIP(p) || "
            "(isCIDR(p) && cidr(p).masked() == cidr(p)))",
            message="trustedProxies takes addresses and CIDRs without host bits",
        ),
        CelRule(
            rule="!has(self.nodePort) || self.serviceType != 'ClusterIP'",
            message="nodePort needs serviceType NodePort or LoadBalancer",
        ),
    )

    @model_validator(mode="after")
    def _tls_needs_host(self) -> Self:
        if self.tls_secret_name and not self.host:
            raise ValueError("TLS needs a host name")
        return self

    @model_validator(mode="after")
    def _node_port_needs_a_node_service(self) -> Self:
        if self.node_port is not None and self.service_type == "ClusterIP":
            raise ValueError("nodePort needs serviceType NodePort or LoadBalancer")
        return self


class Media(SpecModel):
    backend: Literal["local", "cloudinary"] = "local"
    claim_name: str = Field(
        default="",
        max_length=253,
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$",
        description="PersistentVolumeClaim of the local backend, mounted read-write by every "
        "posts pod and read-only by every gateway pod (which serves it under /media/): it must "
        "be ReadWriteMany unless all of them run on one node. Empty: an emptyDir of one posts "
        "pod (posts is capped at one replica, uploads go with the pod and the gateway cannot "
        "serve them): for trying the operator out only",
    )
    cloudinary_secret_name: str = Field(default="", description="Secret with key cloudinaryUrl")

    @property
    def on_claim(self) -> bool:
        """Local media on the shared claim: posts and the gateway mount it."""
        return self.backend == "local" and bool(self.claim_name)

    @property
    def in_pod(self) -> bool:
        """Local media in the posts pod's own emptyDir: one posts replica at most."""
        return self.backend == "local" and not self.claim_name

    cel = (
        CelRule(
            rule="self.backend != 'cloudinary' || self.cloudinarySecretName != ''",
            message="the cloudinary backend needs cloudinarySecretName",
        ),
    )

    @model_validator(mode="after")
    def _cloudinary_needs_secret(self) -> Self:
        if self.backend == "cloudinary" and not self.cloudinary_secret_name:
            raise ValueError("the cloudinary backend needs cloudinarySecretName")
        return self


class Mail(SpecModel):
    """SMTP for the auth service's password-reset mails."""

    host: str = Field(
        default="",
        max_length=253,
        pattern=r"^([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)?$",
        description="SMTP server; empty: outside production reset codes go to the "
        "auth service's log, in production no reset mail can be sent",
    )
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    from_address: str = Field(
        default="SocialHub <no-reply@socialhub.local>",
        min_length=3,
        max_length=320,
        pattern=r"^[^\r\n]+$",
        description="the From header of reset mails",
    )
    secret_name: str = Field(
        default="",
        max_length=253,
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$",
        description="Secret with keys username and password for SMTP AUTH; empty: no login",
    )


class Ai(SpecModel):
    gemini_secret_name: str = Field(
        default="", description="Secret with key geminiApiKey; AI features are off without it"
    )


class SecretKeyRef(SpecModel):
    name: Name
    key: str = Field(min_length=1)


class Migrations(SpecModel):
    backoff_limit: int = Field(default=3, ge=0, le=20)
    active_deadline_seconds: int = Field(default=600, ge=30, le=86400)


class SocialHubSpec(SpecModel):
    image: str = Field(
        default="ghcr.io/socialhub/socialhub",
        min_length=1,
        description="services image repository, tagged with version",
    )
    version: str = Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        description="image tag of the services to run",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    image_pull_secrets: list[Name] = Field(default_factory=list)
    environment: Literal["production", "test", "development"] = "production"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    progress_deadline_seconds: int = Field(default=600, ge=30, le=86400)
    max_replicas_per_component: int = Field(
        default=100,
        ge=1,
        le=MAX_REPLICAS,
        description="no component runs more replicas, whatever the capacity targets and "
        "overrides ask; the Ready condition's message names the components held back",
    )
    jwt_secret: SecretKeyRef | None = Field(default=None, description="generated when unset")
    capacity: Capacity = Field(default_factory=Capacity)
    components: Components = Field(default_factory=Components)
    backing: Backing
    gateway: Gateway = Field(default_factory=Gateway)
    media: Media = Field(default_factory=Media)
    mail: Mail = Field(default_factory=Mail)
    ai: Ai = Field(default_factory=Ai)
    migrations: Migrations = Field(default_factory=Migrations)

    @property
    def service_image(self) -> str:
        return f"{self.image}:{self.version}"
