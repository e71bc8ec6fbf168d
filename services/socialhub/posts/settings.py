"""Posts service configuration (environment variables)."""

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

from socialhub.kit.settings import KafkaSettings, PostgresSettings, RedisSettings, ServiceSettings

MB = 1024 * 1024


class MediaBackend(StrEnum):
    LOCAL = "local"
    CLOUDINARY = "cloudinary"


class PostsSettings(ServiceSettings, PostgresSettings, RedisSettings, KafkaSettings):
    service_port: int = 5001
    database_url: str = "postgresql+asyncpg://socialhub:socialhub@127.0.0.1:21432/socialhub_posts"

    # Media: local disk unless CLOUDINARY_URL is set (or MEDIA_BACKEND says otherwise).
    media_backend: MediaBackend | None = None
    media_dir: Path = Path("media")
    # Public URL of MEDIA_DIR; the nginx gateway serves that directory under /media/.
    media_base_url: str = "http://127.0.0.1:8080/media"
    # cloudinary://<api_key>:<api_secret>@<cloud_name>[?upload_prefix=<api base URL>]
    cloudinary_url: SecretStr | None = None
    cloudinary_folder: str = "socialhub/posts"
    cloudinary_timeout_seconds: float = Field(default=60.0, gt=0)
    max_files_per_post: int = Field(default=10, ge=1, le=50)
    max_image_bytes: int = Field(default=10 * MB, ge=1)
    max_video_bytes: int = Field(default=50 * MB, ge=1)
    # All files of one post together; the gateway accepts 60 MB bodies on /posts/.
    max_post_media_bytes: int = Field(default=50 * MB, ge=1)
    # Files of deleted posts are removed from the storage this long after the delete, by a
    # sweep every `media_purge_interval_seconds` (socialhub.posts.purge).
    media_purge_grace_seconds: int = Field(default=3600, ge=0)
    media_purge_interval_seconds: float = Field(default=300.0, gt=0)
    media_purge_batch_size: int = Field(default=100, ge=1, le=10_000)

    # Home feeds: Redis sorted sets of post ids, newest `feed_cache_size` per user; feeds not
    # read for `feed_cache_ttl_seconds` expire and are rebuilt from PostgreSQL when next read.
    feed_cache_size: int = Field(default=800, ge=10)
    feed_cache_ttl_seconds: int = Field(default=3 * 24 * 3600, ge=60)
    # Authors with at least this many followers are not fanned out on write: their posts are
    # merged into their followers' feeds at read time.
    fanout_read_threshold: int = Field(default=10_000, ge=1)
    # Redis only makes reads faster: past this it is skipped and PostgreSQL answers.
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    # false: serve the API only, and leave the outbox relay and the consumers to other
    # instances (API and worker pods can then be scaled apart)
    run_workers: bool = True

    comment_max_depth: int = Field(default=3, ge=1, le=10)
    # Replies shown under each comment of a page; the rest are paged with ?parentId=.
    comment_replies_preview: int = Field(default=20, ge=1, le=100)

    # AI assist: Gemini when GEMINI_API_KEY is set, otherwise the offline engine.
    gemini_api_key: SecretStr | None = None
    gemini_model: str = "gemini-2.0-flash"
    gemini_api_endpoint: str = "generativelanguage.googleapis.com"
    gemini_timeout_seconds: float = Field(default=15.0, gt=0)
    ai_suggest_limit_per_minute: int = Field(default=30, ge=1)

    @property
    def media(self) -> MediaBackend:
        if self.media_backend is not None:
            return self.media_backend
        return MediaBackend.CLOUDINARY if self.cloudinary_url else MediaBackend.LOCAL

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.media is MediaBackend.CLOUDINARY and not self.cloudinary_url:
            raise ValueError("MEDIA_BACKEND=cloudinary needs CLOUDINARY_URL")
        return self
