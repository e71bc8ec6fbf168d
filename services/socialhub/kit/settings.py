"""One settings pattern for every service: environment variables read by pydantic-settings.

A service composes the mixins for the stores it uses. Secrets that are missing, short or look
like placeholders are refused outside development, so a production deploy cannot start with a
default secret.
"""

from enum import StrEnum
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "secret",
        "changeme",
        "change-me",
        "dev",
        "development",
        "your-secret-key",
        "jwt-secret",
        "test",
    }
)
MIN_SECRET_LENGTH = 32
DEVELOPMENT_JWT_SECRET = "development-only-secret-do-not-deploy-0000"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    socialhub_env: Environment = Environment.DEVELOPMENT
    service_host: str = "127.0.0.1"
    service_port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    access_log: bool = True
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)

    def require_secret(self, name: str, value: SecretStr) -> None:
        if self.socialhub_env is Environment.DEVELOPMENT:
            return
        raw = value.get_secret_value()
        if raw.lower() in PLACEHOLDER_SECRETS or raw == DEVELOPMENT_JWT_SECRET:
            raise ValueError(f"{name} is a placeholder; set a real secret outside development")
        if len(raw) < MIN_SECRET_LENGTH:
            raise ValueError(f"{name} must be at least {MIN_SECRET_LENGTH} characters")


class PostgresSettings(BaseSettings):
    database_url: str = "postgresql+asyncpg://socialhub:socialhub@127.0.0.1:21432/socialhub"
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0)


class RedisSettings(BaseSettings):
    redis_url: str = "redis://127.0.0.1:21379/0"
    # Pub/sub channels are global to a Redis server, unlike keys (per database): a prefix keeps
    # deployments sharing one server apart.
    redis_channel_prefix: str = ""
    redis_max_connections: int = Field(default=50, ge=2)
    redis_pool_wait_seconds: float = Field(default=10.0, gt=0)

    def channel(self, name: str) -> str:
        return f"{self.redis_channel_prefix}{name}"


class MongoSettings(BaseSettings):
    mongo_url: str = "mongodb://127.0.0.1:21017/"
    mongo_database: str = "socialhub"
    mongo_timeout_ms: int = Field(default=5000, ge=100)
    mongo_max_pool_size: int = Field(default=50, ge=1)


class KafkaSettings(BaseSettings):
    kafka_bootstrap_servers: str = "127.0.0.1:21092"
    kafka_topic_prefix: str = ""
    kafka_topic_partitions: int = Field(default=3, ge=1)
    kafka_topic_replication: int = Field(default=1, ge=1)
    kafka_retention_days: int = Field(default=7, ge=1)

    def topic(self, name: str) -> str:
        return f"{self.kafka_topic_prefix}{name}"

    def group(self, name: str) -> str:
        return f"{self.kafka_topic_prefix}{name}"


class JwtSettings(ServiceSettings):
    jwt_secret: SecretStr = SecretStr(DEVELOPMENT_JWT_SECRET)

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Self:
        self.require_secret("JWT_SECRET", self.jwt_secret)
        return self
