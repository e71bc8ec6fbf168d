"""The platform's shape: its services, their documented ports, what each one needs.

devstack (`make up`), the gateway template, the operator and the load tests all wire the
services from this table, so adding a service or giving one a new store is one edit here (plus
the code that uses it). The environment variable names are the services' settings fields
(pydantic-settings, no prefix); tests/contracts checks each name against the settings class of
every service that is given it.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Store(StrEnum):
    """Something a service is wired to besides its own code."""

    POSTGRES = "postgres"
    MONGO = "mongo"
    REDIS = "redis"
    KAFKA = "kafka"
    JWT = "jwt"  # the token signing secret
    MAIL = "mail"  # an SMTP server (reset codes)
    MEDIA = "media"  # uploaded files, served by the gateway at /media/
    AI = "ai"  # Gemini, for drafting posts
    AUTH = "auth"  # the auth service's token check, called directly


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    stores: frozenset[Store]
    # The public prefix the gateway routes to this service behind its token check; auth's
    # public routes are listed in the gateway template itself.
    protected_route: str | None

    @property
    def migrates(self) -> bool:
        """PostgreSQL services run `python -m socialhub.<name> migrate` before they serve."""
        return Store.POSTGRES in self.stores

    @property
    def module(self) -> str:
        return f"socialhub.{self.name}"

    def uses(self, store: Store) -> bool:
        return store in self.stores


# The design document's services and ports, in its order.
SERVICES: tuple[Service, ...] = (
    Service(
        "auth",
        5000,
        frozenset({Store.POSTGRES, Store.REDIS, Store.KAFKA, Store.JWT, Store.MAIL}),
        protected_route=None,
    ),
    Service(
        "posts",
        5001,
        frozenset({Store.POSTGRES, Store.REDIS, Store.KAFKA, Store.MEDIA, Store.AI}),
        protected_route="/posts/",
    ),
    Service(
        "notifications",
        5002,
        frozenset({Store.MONGO, Store.REDIS, Store.KAFKA}),
        protected_route="/notify/",
    ),
    Service(
        "users",
        5003,
        frozenset({Store.POSTGRES, Store.REDIS, Store.KAFKA}),
        protected_route="/users/",
    ),
    # kafka: blocks close direct messages (user.blocked)
    Service(
        "chat", 5004, frozenset({Store.REDIS, Store.KAFKA, Store.AUTH}), protected_route="/chat/"
    ),
)
SERVICE_NAMES: tuple[str, ...] = tuple(service.name for service in SERVICES)
GATEWAY = "gateway"


def service(name: str) -> Service:
    for candidate in SERVICES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no SocialHub service is called {name!r}")


class Env:
    """Settings every deployment wires (a service reads each as its settings field).

    Plain strings, not an enum: they go into manifests that are dumped as YAML.
    """

    SOCIALHUB_ENV: Final = "SOCIALHUB_ENV"
    SERVICE_HOST: Final = "SERVICE_HOST"
    SERVICE_PORT: Final = "SERVICE_PORT"
    LOG_LEVEL: Final = "LOG_LEVEL"
    DATABASE_URL: Final = "DATABASE_URL"
    MONGO_URL: Final = "MONGO_URL"
    MONGO_DATABASE: Final = "MONGO_DATABASE"
    REDIS_URL: Final = "REDIS_URL"
    REDIS_CHANNEL_PREFIX: Final = "REDIS_CHANNEL_PREFIX"
    KAFKA_BOOTSTRAP_SERVERS: Final = "KAFKA_BOOTSTRAP_SERVERS"
    KAFKA_TOPIC_PREFIX: Final = "KAFKA_TOPIC_PREFIX"
    KAFKA_TOPIC_PARTITIONS: Final = "KAFKA_TOPIC_PARTITIONS"
    KAFKA_TOPIC_REPLICATION: Final = "KAFKA_TOPIC_REPLICATION"
    KAFKA_RETENTION_DAYS: Final = "KAFKA_RETENTION_DAYS"
    JWT_SECRET: Final = "JWT_SECRET"
    MAIL_BACKEND: Final = "MAIL_BACKEND"
    MAIL_FROM: Final = "MAIL_FROM"
    SMTP_HOST: Final = "SMTP_HOST"
    SMTP_PORT: Final = "SMTP_PORT"
    SMTP_STARTTLS: Final = "SMTP_STARTTLS"
    SMTP_USERNAME: Final = "SMTP_USERNAME"
    SMTP_PASSWORD: Final = "SMTP_PASSWORD"
    MEDIA_BACKEND: Final = "MEDIA_BACKEND"
    MEDIA_DIR: Final = "MEDIA_DIR"
    MEDIA_BASE_URL: Final = "MEDIA_BASE_URL"
    CLOUDINARY_URL: Final = "CLOUDINARY_URL"
    GEMINI_API_KEY: Final = "GEMINI_API_KEY"
    AUTH_SERVICE_URL: Final = "AUTH_SERVICE_URL"


# What every service reads, and what each store adds.
COMMON_ENV = (Env.SOCIALHUB_ENV, Env.SERVICE_HOST, Env.SERVICE_PORT, Env.LOG_LEVEL)
STORE_ENV: dict[Store, tuple[str, ...]] = {
    Store.POSTGRES: (Env.DATABASE_URL,),
    Store.MONGO: (Env.MONGO_URL, Env.MONGO_DATABASE),
    Store.REDIS: (Env.REDIS_URL, Env.REDIS_CHANNEL_PREFIX),
    Store.KAFKA: (
        Env.KAFKA_BOOTSTRAP_SERVERS,
        Env.KAFKA_TOPIC_PREFIX,
        Env.KAFKA_TOPIC_PARTITIONS,
        Env.KAFKA_TOPIC_REPLICATION,
        Env.KAFKA_RETENTION_DAYS,
    ),
    Store.JWT: (Env.JWT_SECRET,),
    Store.MAIL: (
        Env.MAIL_BACKEND,
        Env.MAIL_FROM,
        Env.SMTP_HOST,
        Env.SMTP_PORT,
        Env.SMTP_STARTTLS,
        Env.SMTP_USERNAME,
        Env.SMTP_PASSWORD,
    ),
    Store.MEDIA: (Env.MEDIA_BACKEND, Env.MEDIA_DIR, Env.MEDIA_BASE_URL, Env.CLOUDINARY_URL),
    Store.AI: (Env.GEMINI_API_KEY,),
    Store.AUTH: (Env.AUTH_SERVICE_URL,),
}


def env_names(service: Service) -> frozenset[str]:
    """Every setting a deployment may give this service."""
    return frozenset(COMMON_ENV).union(*(STORE_ENV[store] for store in service.stores))


ALL_ENV: frozenset[str] = frozenset(value for name, value in vars(Env).items() if name.isupper())
