"""Redis pub/sub for one instance: channels are subscribed only while a local client needs them.

The design document's flow: an instance subscribes to `chat:room:<id>` while any of its clients
is in the room, and to `push:user:<id>` while the user has a socket on it. Redis then sends each
instance only the traffic of its own rooms and users, unlike one global channel that every
instance must decode (README: the measurement behind this choice).

All subscriptions share one connection. `acquire` returns once Redis has confirmed the
subscription, so a caller knows that everything published afterwards reaches it.
"""

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Handler = Callable[[str], Awaitable[None]]
SUBSCRIBE_TIMEOUT_SECONDS = 5.0
RECONNECT_DELAY_SECONDS = 1.0


class FanoutUnavailableError(Exception):
    pass


class Fanout:
    def __init__(self, redis: Redis, keepalive_channel: str) -> None:
        self._pubsub = redis.pubsub()
        # A channel nobody publishes on: it keeps the connection subscribed (and the listener
        # running) while no room or user needs one.
        self._keepalive_channel = keepalive_channel
        self._handlers: dict[str, Handler] = {}
        self._refs: dict[str, int] = {}
        self._ready: dict[str, asyncio.Future[None]] = {}
        # one future per SUBSCRIBE sent and not yet confirmed, in the order they were sent
        self._unconfirmed: dict[str, deque[asyncio.Future[None]]] = {}

    @property
    def channels(self) -> int:
        return len(self._refs)

    async def acquire(self, channel: str, handler: Handler) -> None:
        """Hold a subscription to `channel`, delivering its messages to `handler`."""
        count = self._refs.get(channel, 0)
        self._refs[channel] = count + 1
        if count == 0:
            self._handlers[channel] = handler
            confirmed = asyncio.get_running_loop().create_future()
            self._ready[channel] = confirmed
            self._unconfirmed.setdefault(channel, deque()).append(confirmed)
            try:
                await self._pubsub.subscribe(channel)
            except RedisError:
                await self.release(channel)
                raise FanoutUnavailableError("cannot reach Redis") from None
        try:
            await asyncio.wait_for(asyncio.shield(self._ready[channel]), SUBSCRIBE_TIMEOUT_SECONDS)
        except (TimeoutError, FanoutUnavailableError):
            await self.release(channel)
            raise FanoutUnavailableError("Redis did not confirm the subscription") from None

    async def release(self, channel: str) -> None:
        count = self._refs.get(channel, 0)
        if count > 1:
            self._refs[channel] = count - 1
            return
        if count == 1:
            del self._refs[channel], self._handlers[channel], self._ready[channel]
            try:
                await self._pubsub.unsubscribe(channel)
            except RedisError:
                # reconnecting resubscribes only what redis-py still tracks; it dropped this one
                log.warning("could not unsubscribe from %s", channel)

    async def run(self) -> None:
        """The listener: one task per instance, until cancelled."""
        await self._pubsub.subscribe(self._keepalive_channel)
        try:
            while True:
                try:
                    message = await self._pubsub.get_message(timeout=None)
                except (RedisError, OSError) as exc:
                    log.warning("Redis pub/sub connection lost (%s); reconnecting", exc)
                    self._fail_unconfirmed()
                    await asyncio.sleep(RECONNECT_DELAY_SECONDS)
                    continue
                if message is not None:
                    await self._dispatch(message)
        finally:
            self._fail_unconfirmed()
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        if kind == "message":
            handler = self._handlers.get(channel)
            if handler is None:  # arrived after we unsubscribed
                return
            try:
                await handler(message["data"])
            except Exception:
                log.exception("handling a message on %s failed", channel)
        elif kind == "subscribe":
            waiting = self._unconfirmed.get(channel)
            if waiting:
                future = waiting.popleft()
                if not future.done():
                    future.set_result(None)
                if not waiting:
                    del self._unconfirmed[channel]
            elif channel in self._ready and self._ready[channel].done():
                # redis-py resubscribed after a reconnect: the channel works again
                self._ready[channel] = asyncio.get_running_loop().create_future()
                self._ready[channel].set_result(None)

    def _fail_unconfirmed(self) -> None:
        for waiting in self._unconfirmed.values():
            for future in waiting:
                if not future.done():
                    future.set_exception(FanoutUnavailableError("Redis pub/sub connection lost"))
        self._unconfirmed.clear()


def decode_event(raw: str) -> tuple[str, Any, str | None] | None:
    """`{"event", "data", "skip"?}` as published on a channel; None if malformed.

    `skip`: a socket id that must not receive it (the typist of `user_typing`).
    """
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        return None
    skip = payload.get("skip")
    return payload["event"], payload.get("data"), skip if isinstance(skip, str) else None


def encode_event(event: str, data: Any, **extra: Any) -> str:
    return json.dumps({"event": event, "data": data, **extra}, separators=(",", ":"))
