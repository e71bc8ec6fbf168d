"""Locust: the posts service, next to the design document's numbers.

- `TextPostUser`: `POST /posts/` with JSON text (design: p95 30 ms; goal 1,000/s per instance).
- `MediaPostUser`: `POST /posts/` multipart with one image (BENCH_IMAGE_KB, default 64 KB;
  design: p95 500 ms, 200/s with Cloudinary; here the local disk unless configured otherwise).
- `ReactionUser`: `POST /posts/{id}/like` or `/dislike` on a shared pool of posts, so users
  contend on the same posts (design: p95 15 ms, 2,000/s).
- `FeedUser`: `GET /posts/feed` after following BENCH_FOLLOWS other bench accounts and posting
  BENCH_FEED_POSTS posts each (design: "post feed < 50 ms").

    locust -f loadtests/posts.py --host http://127.0.0.1:18080 --headless -u 32 -r 32 -t 60s \\
        TextPostUser
"""

import os
import random

from common import DIRECT, AccountPool, SignedInUser, Target, report_against
from locust import task

IMAGE_KB = int(os.environ.get("BENCH_IMAGE_KB", "64"))
FOLLOWS = int(os.environ.get("BENCH_FOLLOWS", "10"))
FEED_POSTS = int(os.environ.get("BENCH_FEED_POSTS", "3"))
KNOWN_USERS: dict[str, str] = {}  # bench accounts seen so far (FeedUser follows them)
POST_POOL: list[str] = []  # posts ReactionUsers react to

report_against(
    {
        "create text post": Target(p95_ms=30, per_second=1000),
        "create post with media": Target(p95_ms=500, per_second=200),
        "like/dislike": Target(p95_ms=15, per_second=2000),
        "home feed": Target(p95_ms=50),
    }
)

# A JPEG by its signature (the service checks content, not names), padded to the wanted size.
IMAGE = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(
    random.Random(7).getrandbits(8) for _ in range(IMAGE_KB * 1024)
)
BOUNDARY = "socialhubbench7b1f"


def multipart(content: str) -> bytes:
    """`-F content=... -F visibility=public -F files=@photo.jpg` as one body."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="content"\r\n\r\n{content}\r\n',
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="visibility"\r\n\r\npublic\r\n',
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="photo.jpg"'
        "\r\nContent-Type: image/jpeg\r\n\r\n",
    ]
    return "".join(parts).encode() + IMAGE + f"\r\n--{BOUNDARY}--\r\n".encode()


MEDIA_BODY = multipart("a photo from the benchmark")


class _PostsUser(SignedInUser):
    abstract = True
    accounts = AccountPool("bench_posts", 50)

    def prepare(self) -> None:
        super().prepare()
        KNOWN_USERS[self.username] = self.user_id

    def create_text_post(self, name: str) -> str | None:
        body = self.expect(
            "POST",
            "/posts/",
            name,
            status=201,
            json={"content": f"bench post by {self.username}", "visibility": "public"},
        )
        return str(body["id"]) if body else None


class TextPostUser(_PostsUser):
    @task
    def text_post(self) -> None:
        self.create_text_post("create text post")


class MediaPostUser(_PostsUser):
    @task
    def media_post(self) -> None:
        headers = {**self.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        self.expect(
            "POST",
            "/posts/",
            "create post with media",
            status=201,
            headers=headers,
            data=MEDIA_BODY,
        )


class ReactionUser(_PostsUser):
    def prepare(self) -> None:
        super().prepare()
        if post_id := self.create_text_post("setup: create post"):
            POST_POOL.append(post_id)

    @task
    def react(self) -> None:
        if POST_POOL:
            kind = random.choice(("like", "dislike"))
            self.expect("POST", f"/posts/{random.choice(POST_POOL)}/{kind}", "like/dislike")


class FeedUser(_PostsUser):
    def prepare(self) -> None:
        super().prepare()
        for _ in range(FEED_POSTS):
            self.create_text_post("setup: create post")
        if DIRECT:
            return
        others = [
            user_id
            for name, user_id in list(KNOWN_USERS.items())
            if name != self.username and user_id
        ]
        for user_id in random.sample(others, min(FOLLOWS, len(others))):
            self.expect("POST", f"/users/follow/{user_id}", "setup: follow")

    @task
    def feed(self) -> None:
        self.expect("GET", "/posts/feed", "home feed")
