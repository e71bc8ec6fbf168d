"""Users service configuration (environment variables)."""

from pydantic import Field

from socialhub.kit.settings import KafkaSettings, PostgresSettings, RedisSettings, ServiceSettings


class UsersSettings(ServiceSettings, PostgresSettings, RedisSettings, KafkaSettings):
    service_port: int = 5003
    database_url: str = "postgresql+asyncpg://socialhub:socialhub@127.0.0.1:21432/socialhub_users"
    # Connections beyond the pool are opened and closed per checkout (TLS attempt, SCRAM): the
    # pool covers the requests one instance really has in PostgreSQL at once under load.
    database_pool_size: int = Field(default=20, ge=1)

    # Profiles with their counts are cached this long; every change deletes the entry sooner.
    profile_cache_ttl_seconds: int = Field(default=300, ge=1)
    # Redis is an optimisation here: a slow or dead Redis must cost little, then be skipped for a
    # while (answers come from PostgreSQL meanwhile).
    redis_timeout_seconds: float = Field(default=0.25, gt=0)
    redis_retry_after_seconds: float = Field(default=1.0, ge=0)

    # How long a follow or block waits for a just-created account's `user.created` event
    # before answering 404 (0: not at all).
    new_user_wait_seconds: float = Field(default=2.0, ge=0, le=10)

    # Consumed event ids are remembered longer than Kafka keeps the events (7 days by default).
    processed_events_retention_days: int = Field(default=8, ge=1)
