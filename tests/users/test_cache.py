"""Profiles and counts from Redis: hits, invalidation on every change, and life without Redis."""

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from devstack.platform import Platform
from devstack.waiting import free_port, wait_until
from socialhub.contracts.events import POST_TOPIC
from socialhub.kit.events.envelope import Event
from socialhub.kit.identity import Principal
from socialhub.kit.redis_client import connect_redis
from socialhub.users.app import create_app
from socialhub.users.cache import ProfileCache
from socialhub.users.settings import UsersSettings
from tests.support import app_client, eventually
from tests.users.helpers import (
    UsersDb,
    as_user,
    block,
    counts,
    follow,
    new_user,
    profile,
    publish,
    unfollow,
)

DEAD_PORT = "127.0.0.1:9"  # discard port: nothing listens, connections are refused
BEHIND = "written behind the cache's back"
PAUSE_SECONDS = 2.0


class OwnRedis:
    """A redis-server of this test alone, so it can be stopped and paused (never the shared one)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10, what="test redis-server")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    async def get(self, key: str) -> str | None:
        """Through a new connection: the server may have restarted since the last call."""
        value = await self.command("GET", key)
        return None if value is None else str(value)

    async def command(self, *args: str) -> object:
        client: Redis = Redis.from_url(self.url, decode_responses=True)
        try:
            return await client.execute_command(*args)  # type: ignore[no-untyped-call]
        finally:
            await client.aclose()

    def _answers(self) -> bool:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True, check=False
        )
        return result.stdout.strip() == "PONG"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@asynccontextmanager
async def instance(
    settings: UsersSettings, **overrides: object
) -> AsyncIterator[httpx.AsyncClient]:
    """Another instance of the service on the same database, with its own Redis and Kafka.

    Its Kafka is unreachable: it must not join the consumer group of the main instance; its
    outbox rows are published by the main instance's relay (same database).
    """
    changed = settings.model_copy(update={"kafka_bootstrap_servers": DEAD_PORT, **overrides})
    async with app_client(create_app(changed)) as client:
        yield client


async def sneak_bio(users_db: UsersDb, user: Principal) -> None:
    await users_db.execute("UPDATE profiles SET bio = :bio WHERE id = :id", bio=BEHIND, id=user.id)


async def test_profiles_come_from_the_cache_with_a_5_minute_ttl(
    users: httpx.AsyncClient, users_db: UsersDb, cache_redis: Redis
) -> None:
    viewer, star = await new_user(users), await new_user(users)
    cached = await profile(users, viewer, star)
    assert 0 < await cache_redis.ttl(f"users:profile:{star.id}") <= 300
    await sneak_bio(users_db, star)
    assert await profile(users, viewer, star) == cached  # a hit: PostgreSQL was not asked
    me = await users.get("/users/me", headers=as_user(star))
    assert me.json() == cached


Change = Callable[[httpx.AsyncClient, Principal, Principal], Awaitable[httpx.Response]]


async def _patch_name(users: httpx.AsyncClient, _: Principal, star: Principal) -> httpx.Response:
    return await users.patch("/users/me", headers=as_user(star), json={"name": "Renamed"})


async def _follow_other_way(
    users: httpx.AsyncClient, fan: Principal, star: Principal
) -> httpx.Response:
    return await follow(users, star, fan)


@pytest.mark.parametrize("change", [_patch_name, block, unfollow, _follow_other_way])
async def test_every_change_invalidates_both_profiles(
    users: httpx.AsyncClient, users_db: UsersDb, change: Change
) -> None:
    fan, star = await new_user(users), await new_user(users)
    await follow(users, fan, star)
    await profile(users, fan, fan)
    await profile(users, fan, star)
    for user in (fan, star):
        await sneak_bio(users_db, user)
    assert (await profile(users, fan, star))["bio"] != BEHIND  # still cached
    assert (await change(users, fan, star)).status_code == 200
    assert (await profile(users, fan, star))["bio"] == BEHIND  # re-read from PostgreSQL
    fan_bio = (await profile(users, star, fan))["bio"]
    assert fan_bio == (BEHIND if change is not _patch_name else "")  # a rename: one profile


async def test_consumed_post_events_invalidate_the_authors_profile(
    users: httpx.AsyncClient, platform: Platform
) -> None:
    author = await new_user(users)
    assert await counts(users, author, author) == (0, 0, 0)  # cached now
    post_id = str(uuid.uuid4())
    await publish(
        platform.infra.kafka.address,
        platform.profile.topic_prefix + POST_TOPIC,
        [
            Event(
                event_type="post.created",
                producer="posts",
                data={
                    "postId": post_id,
                    "userId": str(author.id),
                    "username": author.username,
                    "content": "hello",
                    "timestamp": 1,
                    "visibility": "public",
                    "mediaCount": 0,
                },
            )
        ],
        key=post_id,
    )

    async def counted() -> bool:
        return await counts(users, author, author) == (0, 0, 1)

    await eventually(counted, what="post count through the cache")


async def test_a_slow_reader_cannot_put_back_what_a_write_replaced(
    users_settings: UsersSettings,
) -> None:
    """Versioned fills: a value read before a write is not cached after it."""
    redis = connect_redis(users_settings, fail_fast_seconds=users_settings.redis_timeout_seconds)
    cache = ProfileCache(redis, users_settings, prefix=f"test-{uuid.uuid4().hex[:8]}")
    user_id = uuid.uuid4()
    try:
        missing, version = await cache.get(user_id)
        assert missing is None
        await cache.invalidate([user_id])  # a write committed after our database read
        await cache.fill(user_id, version, '{"stale": true}')
        assert (await cache.get(user_id))[0] is None
        _, fresh_version = await cache.get(user_id)
        await cache.fill(user_id, fresh_version, '{"fresh": true}')
        assert (await cache.get(user_id))[0] == '{"fresh": true}'
    finally:
        await redis.aclose()


async def test_without_redis_everything_answers_from_postgresql(
    users_settings: UsersSettings,
) -> None:
    async with instance(users_settings, redis_url=f"redis://{DEAD_PORT}/1") as offline:
        alice, bob = await new_user(offline), await new_user(offline)
        assert (await follow(offline, alice, bob)).status_code == 200
        assert await counts(offline, alice, bob) == (1, 0, 0)
        assert await counts(offline, alice, alice) == (0, 1, 0)
        patched = await offline.patch("/users/me", headers=as_user(bob), json={"bio": "hi"})
        assert patched.status_code == 200
        assert (await profile(offline, alice, bob))["bio"] == "hi"
        followers = await offline.get(f"/users/{bob.id}/followers", headers=as_user(bob))
        assert [item["id"] for item in followers.json()["items"]] == [str(alice.id)]
        by_name = await offline.get(f"/users/by-username/{bob.username}", headers=as_user(alice))
        assert by_name.json()["followersCount"] == 1
        assert (await unfollow(offline, alice, bob)).status_code == 200
        assert await counts(offline, alice, bob) == (0, 0, 0)
        ready = await offline.get("/ready")
        assert ready.status_code == 200, ready.text  # Redis is optional for this service


async def test_redis_stopping_and_coming_back_mid_flight(
    users_settings: UsersSettings, own_redis: OwnRedis
) -> None:
    async with instance(
        users_settings, redis_url=own_redis.url, redis_retry_after_seconds=0.1
    ) as service:
        alice, bob = await new_user(service), await new_user(service)
        assert await counts(service, alice, bob) == (0, 0, 0)
        assert await own_redis.get(f"users:profile:{bob.id}")

        own_redis.stop()
        assert (await follow(service, alice, bob)).status_code == 200
        assert await counts(service, alice, bob) == (1, 0, 0)
        assert await counts(service, bob, alice) == (0, 1, 0)
        assert (await service.get(f"/users/{bob.id}/followers", headers=as_user(bob))).json()[
            "items"
        ][0]["id"] == str(alice.id)

        own_redis.start()  # empty: it kept nothing

        async def cached_again() -> bool:
            await counts(service, alice, bob)
            return await own_redis.get(f"users:profile:{bob.id}") is not None

        await eventually(cached_again, what="cache in use again")
        assert await counts(service, alice, bob) == (1, 0, 0)


async def test_invalidations_missed_during_an_outage_are_sent_when_redis_answers(
    users_settings: UsersSettings, own_redis: OwnRedis
) -> None:
    """Redis unreachable but keeping its data (paused): the stale entry must not come back."""
    async with instance(
        users_settings, redis_url=own_redis.url, redis_retry_after_seconds=0.1
    ) as service:
        alice, bob = await new_user(service), await new_user(service)
        assert await counts(service, alice, bob) == (0, 0, 0)  # cached: no followers
        # Every command (even CLIENT UNPAUSE) waits out the pause: let it expire instead.
        resumes = asyncio.get_running_loop().time() + PAUSE_SECONDS
        await own_redis.command("CLIENT", "PAUSE", str(int(PAUSE_SECONDS * 1000)), "ALL")
        assert (await follow(service, alice, bob)).status_code == 200
        assert await counts(service, alice, bob) == (1, 0, 0)  # from PostgreSQL
        await asyncio.sleep(resumes - asyncio.get_running_loop().time() + 0.2)
        assert await counts(service, alice, bob) == (1, 0, 0)
        assert '"followersCount":1' in str(await own_redis.get(f"users:profile:{bob.id}"))
