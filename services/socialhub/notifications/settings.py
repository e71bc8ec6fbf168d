"""Notification service configuration (environment variables)."""

from pydantic import Field

from socialhub.kit.settings import KafkaSettings, MongoSettings, RedisSettings, ServiceSettings


class NotificationSettings(ServiceSettings, MongoSettings, RedisSettings, KafkaSettings):
    service_port: int = 5002

    # Old notifications expire: a TTL index on MongoDB, a periodic sweep where the server has no
    # TTL indexes (FerretDB).
    notification_ttl_days: int = Field(default=90, ge=1)
    expiry_sweep_interval_seconds: float = Field(default=3600.0, gt=0)

    consumer_batch_size: int = Field(default=1000, ge=1, le=10_000)
