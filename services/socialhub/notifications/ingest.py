"""From Kafka batches to stored notifications and real-time pushes.

`handle` is the kit's `BatchConsumer` handler: it stores a whole batch with one `insert_many`
(the consumer commits the offsets only after it returns), then publishes each newly stored
notification to the recipient's Redis push channel, where the chat service delivers it to the
user's sockets. A push is best effort: a failed publish is logged and counted, never retried,
because the notification itself is stored and the client sees it on its next fetch.

A batch's publishes go to Redis as one script call (a PUBLISH per notification on the server):
a pipeline of a thousand PUBLISH commands costs more CPU here parsing a thousand replies than
storing the batch does.
"""

import logging
from collections import Counter as Tally
from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError

from socialhub.contracts.channels import user_push
from socialhub.kit.events.consumer import Rejected
from socialhub.kit.events.envelope import Event
from socialhub.kit.settings import RedisSettings
from socialhub.notifications.models import Notification
from socialhub.notifications.rules import UnprocessableEventError, notification_for
from socialhub.notifications.store import NotificationStore

log = logging.getLogger(__name__)

STORED = Counter("notifications_stored_total", "Notifications stored", ["type"])
DUPLICATES = Counter(
    "notifications_duplicates_total",
    "Redelivered events whose notification was already stored (or deleted)",
)
EXPIRED_ON_ARRIVAL = Counter(
    "notifications_expired_on_arrival_total",
    "Events older than the notification TTL, so not stored",
)
PUSH_FAILURES = Counter(
    "notification_push_failures_total",
    "Batches whose real-time push failed (the notifications are stored)",
)
EVENT_TO_STORED = Histogram(
    "notification_event_to_stored_seconds",
    "From an event's occurredAt to its notification stored",
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


# ARGV: channel, message, channel, message, ...
PUBLISH_ALL = """
for i = 1, #ARGV, 2 do
    redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
"""


def push_channel(settings: RedisSettings, user_id: str) -> str:
    return settings.channel(user_push(user_id))


class NotificationIngest:
    def __init__(self, store: NotificationStore, redis: Redis, settings: RedisSettings) -> None:
        self.store = store
        self.redis = redis
        self.settings = settings
        self.publish_all = redis.register_script(PUBLISH_ALL)

    async def handle(self, events: Sequence[Event]) -> list[Rejected]:
        rejected: list[Rejected] = []
        fresh: list[Notification] = []
        for event in events:
            try:
                notification = notification_for(event)
            except UnprocessableEventError as exc:
                rejected.append(Rejected(event, str(exc)))
                continue
            if notification is not None:
                fresh.append(notification)
        inserted = await self.store.insert(fresh)
        stored_at = datetime.now(UTC)
        for notification in inserted.stored:
            EVENT_TO_STORED.observe((stored_at - notification.created_at).total_seconds())
        for kind, count in Tally(n.type.value for n in inserted.stored).items():
            STORED.labels(kind).inc(count)
        DUPLICATES.inc(inserted.duplicates)
        EXPIRED_ON_ARRIVAL.inc(inserted.expired)
        await self.push(inserted.stored)
        return rejected

    async def push(self, notifications: Sequence[Notification]) -> None:
        if not notifications:
            return
        args: list[str] = []
        for notification in notifications:
            args.append(push_channel(self.settings, notification.user_id))
            # {"event": "notification", "data": <the notification as the API returns it>}
            args.append(
                f'{{"event":"notification","data":{notification.model_dump_json(by_alias=True)}}}'
            )
        try:
            await self.publish_all(keys=[], args=args)
        except RedisError as exc:
            PUSH_FAILURES.inc()
            log.warning("push of %d notifications failed: %r", len(notifications), exc)
