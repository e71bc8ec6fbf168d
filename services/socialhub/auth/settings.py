"""Auth service configuration (environment variables)."""

from enum import StrEnum

from pydantic import Field, SecretStr

from socialhub.kit.settings import JwtSettings, KafkaSettings, PostgresSettings, RedisSettings


class MailBackend(StrEnum):
    SMTP = "smtp"
    LOG = "log"  # development only: the reset code is written to the service log


class AuthSettings(JwtSettings, PostgresSettings, RedisSettings, KafkaSettings):
    service_port: int = 5000
    database_url: str = "postgresql+asyncpg://socialhub:socialhub@127.0.0.1:21432/socialhub_auth"

    jwt_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    bcrypt_rounds: int = Field(default=10, ge=4, le=15)

    # Redis (README: "When Redis is down"): each command's bound, so a frozen Redis costs a
    # request this long, not a hang; the stream of revocations an instance reads at start; and
    # how often each instance copies new revocations into memory.
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    revocation_memory_seconds: int = Field(default=900, ge=10)
    revocation_sync_seconds: float = Field(default=2.0, gt=0)

    reset_code_ttl_seconds: int = Field(default=600, ge=60)
    reset_code_max_attempts: int = Field(default=5, ge=1)

    login_limit_per_ip: int = Field(default=50, ge=1)
    login_limit_per_ip_window_seconds: int = Field(default=300, ge=1)
    login_failures_per_account: int = Field(default=10, ge=1)
    login_failures_per_account_window_seconds: int = Field(default=900, ge=1)
    signup_limit_per_ip: int = Field(default=20, ge=1)
    signup_limit_per_ip_window_seconds: int = Field(default=3600, ge=1)
    reset_requests_per_email: int = Field(default=5, ge=1)
    reset_requests_per_email_window_seconds: int = Field(default=1800, ge=1)

    mail_backend: MailBackend = MailBackend.SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 21025
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "SocialHub <no-reply@socialhub.local>"
