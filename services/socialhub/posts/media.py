"""Post media: what is accepted, and where it is stored.

Files are judged by their content (magic numbers, the `filetype` package), never by the name or
the Content-Type the client claims: only images and videos are accepted, within per-file and
per-post size limits. Storage is one interface (`MediaStorage`) with two implementations: the
local disk, served by the nginx gateway under /media/, and Cloudinary through its official SDK.
"""

import asyncio
import logging
import shutil
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import cloudinary.uploader
import filetype

from socialhub.kit.errors import ApiError
from socialhub.posts.settings import MB, MediaBackend, PostsSettings

log = logging.getLogger(__name__)

SNIFF_BYTES = 8192


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"


# What the content says -> (kind, the extension stored files get). The gateway serves exactly
# these extensions under /media/ (socialhub.gateway._MEDIA_TYPES).
ACCEPTED: dict[str, tuple[MediaKind, str]] = {
    "image/jpeg": (MediaKind.IMAGE, "jpg"),
    "image/png": (MediaKind.IMAGE, "png"),
    "image/apng": (MediaKind.IMAGE, "png"),
    "image/gif": (MediaKind.IMAGE, "gif"),
    "image/webp": (MediaKind.IMAGE, "webp"),
    "image/avif": (MediaKind.IMAGE, "avif"),
    "video/mp4": (MediaKind.VIDEO, "mp4"),
    "video/x-m4v": (MediaKind.VIDEO, "m4v"),
    "video/webm": (MediaKind.VIDEO, "webm"),
    "video/quicktime": (MediaKind.VIDEO, "mov"),
}
ACCEPTED_SUMMARY = "images (JPEG, PNG, GIF, WebP, AVIF) and videos (MP4, WebM, MOV)"
# The stored mime type of each extension (apng is served as png).
MIME_OF_EXTENSION = {ext: mime for mime, (_, ext) in ACCEPTED.items() if mime != "image/apng"}


@dataclass(frozen=True)
class Upload:
    """A file as received: its name (for messages only), size and readable content."""

    filename: str
    size: int
    file: BinaryIO


@dataclass(frozen=True)
class MediaFile:
    """An upload that passed the checks."""

    upload: Upload
    kind: MediaKind
    extension: str

    @property
    def mime_type(self) -> str:
        return MIME_OF_EXTENSION[self.extension]

    def read(self) -> bytes:
        self.upload.file.seek(0)
        return self.upload.file.read()


@dataclass(frozen=True)
class StoredMedia:
    url: str
    kind: MediaKind
    mime_type: str
    size: int
    key: str  # where the storage keeps it: a path under MEDIA_DIR, or a Cloudinary public id

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "type": self.kind.value,
            "mimeType": self.mime_type,
            "size": self.size,
            "key": self.key,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> "StoredMedia":
        return cls(
            url=value["url"],
            kind=MediaKind(value["type"]),
            mime_type=value["mimeType"],
            size=int(value["size"]),
            key=value["key"],
        )


@dataclass(frozen=True)
class MediaPolicy:
    max_files: int
    max_image_bytes: int
    max_video_bytes: int
    max_total_bytes: int

    @classmethod
    def from_settings(cls, settings: PostsSettings) -> "MediaPolicy":
        return cls(
            settings.max_files_per_post,
            settings.max_image_bytes,
            settings.max_video_bytes,
            settings.max_post_media_bytes,
        )

    def check_count(self, count: int) -> None:
        if count > self.max_files:
            raise self.too_many_files(str(count))

    def too_many_files(self, got: str) -> ApiError:
        return ApiError(
            422,
            "too_many_files",
            f"a post takes at most {self.max_files} files (got {got})",
            fields={"files": f"at most {self.max_files} files"},
        )

    def inspect(self, uploads: Sequence[Upload]) -> list[MediaFile]:
        """Accepted files, or a 413/415/422 naming the first file that is refused and why."""
        self.check_count(len(uploads))
        accepted = [self._inspect_one(index, upload) for index, upload in enumerate(uploads)]
        total = sum(upload.size for upload in uploads)
        if total > self.max_total_bytes:
            raise ApiError(
                413,
                "payload_too_large",
                f"a post's files may total at most {_mb(self.max_total_bytes)} "
                f"(these total {_mb(total)})",
                fields={"files": "too large in total"},
            )
        return accepted

    def _inspect_one(self, index: int, upload: Upload) -> MediaFile:
        label = f"files[{index}] ({upload.filename})" if upload.filename else f"files[{index}]"
        field = f"files.{index}"
        if upload.size == 0:
            raise ApiError(422, "empty_file", f"{label} is empty", fields={field: "empty file"})
        upload.file.seek(0)
        head = upload.file.read(SNIFF_BYTES)
        upload.file.seek(0)
        detected = filetype.guess_mime(head)
        if detected not in ACCEPTED:
            found = f"its content is {detected}" if detected else "its content is not recognised"
            raise ApiError(
                415,
                "unsupported_media_type",
                f"{label}: only {ACCEPTED_SUMMARY} are accepted; {found}",
                fields={field: "not an accepted image or video"},
            )
        kind, extension = ACCEPTED[detected]
        limit = self.max_image_bytes if kind is MediaKind.IMAGE else self.max_video_bytes
        if upload.size > limit:
            raise ApiError(
                413,
                "payload_too_large",
                f"{label}: {kind.value}s may be at most {_mb(limit)} "
                f"(this one is {_mb(upload.size)})",
                fields={field: "too large"},
            )
        return MediaFile(upload, kind, extension)


def _mb(size: int) -> str:
    """A size as people read it: 10.0 MB, 1.5 KB, 999 bytes."""
    if size >= MB:
        return f"{size / MB:.1f} MB"
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} bytes"


class MediaStorage(Protocol):
    """Where post media live. `store` is all-or-nothing: on failure nothing stays stored."""

    name: str

    async def store(self, files: Sequence[MediaFile]) -> list[StoredMedia]: ...

    async def remove(self, media: Sequence[StoredMedia]) -> list[StoredMedia]:
        """Best effort, never raises: returns (and logs) what could not be removed now."""

    async def close(self) -> None: ...


def storage_unavailable() -> ApiError:
    return ApiError(
        502,
        "media_storage_unavailable",
        "the media storage did not accept the files; try again shortly",
    )


class LocalMediaStorage:
    """Files under MEDIA_DIR/<yyyy>/<mm>/<random>.<ext>, public under MEDIA_BASE_URL.

    Names are random (128 bits) and never reused, so the gateway may let clients cache them
    forever. Writes go to a temporary name first, so nginx never serves a half-written file.
    """

    name = "local"

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self.base_url = base_url.rstrip("/")

    async def store(self, files: Sequence[MediaFile]) -> list[StoredMedia]:
        month = datetime.now(UTC).strftime("%Y/%m")
        keys = [f"{month}/{uuid.uuid4().hex}.{f.extension}" for f in files]
        results = await asyncio.gather(
            *(asyncio.to_thread(self._write, f, key) for f, key in zip(files, keys, strict=True)),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            log.error("storing media on disk failed: %r", failures[0])
            await self.remove([r for r in results if isinstance(r, StoredMedia)])
            raise storage_unavailable()
        return [r for r in results if isinstance(r, StoredMedia)]

    def _write(self, media: MediaFile, key: str) -> StoredMedia:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")
        media.upload.file.seek(0)
        with partial.open("wb") as out:
            shutil.copyfileobj(media.upload.file, out, 1024 * 1024)
        partial.chmod(0o644)  # nginx workers need not be the service's user
        partial.replace(path)
        return StoredMedia(
            url=f"{self.base_url}/{key}",
            kind=media.kind,
            mime_type=media.mime_type,
            size=media.upload.size,
            key=key,
        )

    async def remove(self, media: Sequence[StoredMedia]) -> list[StoredMedia]:
        left = []
        for item in media:
            try:
                await asyncio.to_thread((self.root / item.key).unlink, missing_ok=True)
            except OSError as exc:
                log.warning("could not remove media file %s: %r", item.key, exc)
                left.append(item)
        return left

    async def close(self) -> None:
        return None


def cloudinary_options(url: str) -> dict[str, Any]:
    """The SDK's options from a CLOUDINARY_URL, as `cloudinary.config` reads the variable:
    `cloudinary://<api_key>:<api_secret>@<cloud_name>?<option>=<value>` (e.g. upload_prefix).

    Passed with every call instead of through the SDK's global configuration, so the service's
    settings (not whatever the process environment holds) decide where uploads go.
    """
    parts = urlsplit(url)
    if (
        parts.scheme != "cloudinary"
        or not parts.hostname
        or not parts.username
        or not parts.password
    ):
        raise ValueError("CLOUDINARY_URL must look like cloudinary://<key>:<secret>@<cloud>")
    options: dict[str, Any] = {
        "cloud_name": parts.hostname,
        "api_key": unquote(parts.username),
        "api_secret": unquote(parts.password),
    }
    options.update(parse_qsl(parts.query))
    return options


class CloudinaryMediaStorage:
    """Cloudinary's Upload API through the official SDK, a post's files in parallel.

    The SDK is synchronous: each upload runs in a thread of this storage's own pool (so ten
    files really go at once, whatever the default executor is busy with).
    """

    name = "cloudinary"

    def __init__(self, url: str, *, folder: str, timeout_seconds: float, max_parallel: int) -> None:
        self.options = cloudinary_options(url)
        self.folder = folder
        self.timeout = timeout_seconds
        self._pool = ThreadPoolExecutor(
            max_workers=max_parallel, thread_name_prefix="cloudinary-upload"
        )

    async def store(self, files: Sequence[MediaFile]) -> list[StoredMedia]:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(self._pool, self._upload, f) for f in files),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            log.error("Cloudinary upload failed: %r", failures[0])
            await self.remove([r for r in results if isinstance(r, StoredMedia)])
            raise storage_unavailable()
        return [r for r in results if isinstance(r, StoredMedia)]

    def _upload(self, media: MediaFile) -> StoredMedia:
        name = uuid.uuid4().hex
        result = cloudinary.uploader.upload(
            (f"{name}.{media.extension}", media.read()),
            resource_type=media.kind.value,
            folder=self.folder,
            public_id=name,
            overwrite=False,
            timeout=self.timeout,
            **self.options,
        )
        return StoredMedia(
            url=str(result["secure_url"]),
            kind=media.kind,
            mime_type=media.mime_type,
            size=media.upload.size,
            key=str(result["public_id"]),
        )

    async def remove(self, media: Sequence[StoredMedia]) -> list[StoredMedia]:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(self._pool, self._destroy, item) for item in media),
            return_exceptions=True,
        )
        left = []
        for item, result in zip(media, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("could not remove Cloudinary asset %s: %r", item.key, result)
                left.append(item)
        return left

    def _destroy(self, media: StoredMedia) -> None:
        cloudinary.uploader.destroy(
            media.key,
            resource_type=media.kind.value,
            invalidate=True,
            timeout=self.timeout,
            **self.options,
        )

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def create_storage(settings: PostsSettings) -> MediaStorage:
    if settings.media is MediaBackend.CLOUDINARY:
        assert settings.cloudinary_url is not None  # enforced by the settings
        return CloudinaryMediaStorage(
            settings.cloudinary_url.get_secret_value(),
            folder=settings.cloudinary_folder,
            timeout_seconds=settings.cloudinary_timeout_seconds,
            max_parallel=2 * settings.max_files_per_post,
        )
    return LocalMediaStorage(settings.media_dir, settings.media_base_url)
