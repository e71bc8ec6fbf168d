"""Pure logic of the posts service: cursors, times, media checks, Cloudinary URLs (no servers)."""

import io
import uuid
from datetime import UTC, datetime

import pytest

from socialhub.kit.errors import ApiError
from socialhub.kit.pagination import encode_cursor
from socialhub.posts.media import MediaKind, MediaPolicy, Upload, cloudinary_options
from socialhub.posts.pagination import Position, from_ms, now_ms_precision, to_ms
from tests.posts.helpers import GIF, MP4, PDF, png


def test_cursor_round_trip_and_order() -> None:
    position = Position(1_764_061_200_123, uuid.uuid4())
    assert Position.decode(position.encode()) == position
    assert "=" not in position.encode()
    older = Position(position.ms - 1, uuid.UUID(int=2**128 - 1))
    assert older < position
    same_ms = Position(position.ms, uuid.UUID(int=0))
    assert same_ms < position


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "bm9wZQ",
        "LTEuMDA=",
        "MTIzLm5vdC1hLXV1aWQ",  # an old-style cursor
        encode_cursor("123", "not-a-uuid"),
        encode_cursor("-1", uuid.UUID(int=0).hex),
        encode_cursor("123"),
        encode_cursor("123", uuid.UUID(int=0).hex, "extra"),
        # 10^20 ms and 253402300800000 ms: past year 9999
        encode_cursor(10**20, uuid.UUID(int=0).hex),
        encode_cursor(253402300800000, uuid.UUID(int=0).hex),
    ],
)
def test_foreign_cursors_are_400_invalid_cursor(cursor: str) -> None:
    with pytest.raises(ApiError) as refused:
        Position.decode(cursor)
    assert (refused.value.status, refused.value.code) == (400, "invalid_cursor")


def test_milliseconds_are_exact() -> None:
    moment = datetime(2026, 11, 25, 9, 0, 0, 999_000, tzinfo=UTC)
    assert to_ms(moment) == 1_795_597_200_999
    assert from_ms(to_ms(moment)) == moment
    assert now_ms_precision().microsecond % 1000 == 0


POLICY = MediaPolicy(max_files=2, max_image_bytes=100, max_video_bytes=400, max_total_bytes=500)


def upload(data: bytes, name: str = "f") -> Upload:
    return Upload(filename=name, size=len(data), file=io.BytesIO(data))


def test_media_kinds_come_from_content() -> None:
    accepted = POLICY.inspect([upload(GIF[:90], "x.mp4"), upload(MP4, "y.gif")])
    assert [(m.kind, m.extension, m.mime_type) for m in accepted] == [
        (MediaKind.IMAGE, "gif", "image/gif"),
        (MediaKind.VIDEO, "mp4", "video/mp4"),
    ]


@pytest.mark.parametrize(
    ("files", "status", "code"),
    [
        ([upload(PDF[:50])], 415, "unsupported_media_type"),
        ([upload(b"")], 422, "empty_file"),
        ([upload(png() + bytes(100))], 413, "payload_too_large"),
        ([upload(MP4), upload(MP4 + bytes(200))], 413, "payload_too_large"),
        ([upload(GIF[:50])] * 3, 422, "too_many_files"),
    ],
)
def test_media_refusals(files: list[Upload], status: int, code: str) -> None:
    with pytest.raises(ApiError) as refused:
        POLICY.inspect(files)
    assert (refused.value.status, refused.value.code) == (status, code)


def test_cloudinary_url_becomes_sdk_options() -> None:
    options = cloudinary_options(
        "cloudinary://1234:s%40cret@my-cloud?upload_prefix=http://127.0.0.1:9999&secure=true"
    )
    assert options == {
        "cloud_name": "my-cloud",
        "api_key": "1234",
        "api_secret": "s@cret",
        "upload_prefix": "http://127.0.0.1:9999",
        "secure": "true",
    }
    for bad in ("https://a:b@c", "cloudinary://c", "cloudinary://key@cloud"):
        with pytest.raises(ValueError, match="CLOUDINARY_URL"):
            cloudinary_options(bad)
