"""Chat service configuration (environment variables)."""

from typing import Self

from pydantic import Field, model_validator

from socialhub.kit.settings import KafkaSettings, RedisSettings, ServiceSettings


class ChatSettings(ServiceSettings, RedisSettings, KafkaSettings):
    service_port: int = 5004
    # USER_TOPIC's blocks close direct-message rooms (blocks.py); events per batch.
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    # The token check at connect: the auth service's verify endpoint (what the gateway calls).
    auth_service_url: str = "http://127.0.0.1:5000"
    auth_timeout_seconds: float = Field(default=3.0, gt=0)
    # How long a revoked or expired token keeps an already open connection at most.
    chat_token_recheck_seconds: float = Field(default=300.0, ge=1)

    # Commands in flight to Redis at once; more wait for a free connection.
    # a burst of joins queues for Redis connections rather than failing
    redis_pool_wait_seconds: float = Field(default=30.0, gt=0)

    # Socket.IO is served under this path, directly and behind the gateway's /chat/ route.
    chat_socketio_path: str = "/chat/socket.io"
    # Comma-separated origins browsers may connect from; "*" is safe by default because
    # connections authenticate with a bearer token, never with cookies.
    chat_allowed_origins: str = "*"

    chat_message_max_bytes: int = Field(default=4096, ge=1)
    chat_send_limit: int = Field(default=20, ge=1)
    chat_send_window_seconds: float = Field(default=5.0, gt=0)
    # One typing broadcast per connection and room per interval; extra typing events are dropped.
    chat_typing_interval_seconds: float = Field(default=1.0, ge=0)

    chat_history_on_join: int = Field(default=50, ge=0, le=500)
    # Messages kept per room (approximately: streams are trimmed in whole nodes).
    chat_history_max_per_room: int = Field(default=10_000, ge=100)

    chat_group_max_members: int = Field(default=500, ge=2)

    # Presence of an instance that stops heartbeating for chat_instance_ttl_seconds is removed
    # by the surviving instances.
    chat_heartbeat_seconds: float = Field(default=5.0, gt=0)
    chat_instance_ttl_seconds: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _ttl_spans_heartbeats(self) -> Self:
        if self.chat_instance_ttl_seconds < 2 * self.chat_heartbeat_seconds:
            raise ValueError(
                "CHAT_INSTANCE_TTL_SECONDS must be at least two heartbeats, or "
                "live instances get taken for dead"
            )
        return self

    @property
    def allowed_origins(self) -> str | list[str]:
        origins = [o.strip() for o in self.chat_allowed_origins.split(",") if o.strip()]
        return "*" if origins == ["*"] else origins
