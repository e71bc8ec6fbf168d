"""Idempotent creation of the Kafka topics (their names: socialhub.contracts.events).

Run `python -m socialhub.kit.events.topics` to create them; the local platform and the
operator's topic Job both do.
"""

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from socialhub.contracts.events import ALL_TOPICS
from socialhub.kit.settings import KafkaSettings

log = logging.getLogger(__name__)


async def ensure_topics(settings: KafkaSettings, names: tuple[str, ...] = ALL_TOPICS) -> list[str]:
    """Create the missing topics; returns the names that were created."""
    retention_ms = settings.kafka_retention_days * 24 * 3600 * 1000
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [settings.topic(name) for name in names]
        missing = [name for name in wanted if name not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            name,
                            num_partitions=settings.kafka_topic_partitions,
                            replication_factor=settings.kafka_topic_replication,
                            topic_configs={"retention.ms": str(retention_ms)},
                        )
                        for name in missing
                    ]
                )
            except TopicAlreadyExistsError:
                log.info("topics created concurrently by another process")
        return missing
    finally:
        await admin.close()


def main() -> None:
    logging.basicConfig(level="INFO")
    created = asyncio.run(ensure_topics(KafkaSettings()))
    print(f"created topics: {', '.join(created) or 'none (all exist)'}")


if __name__ == "__main__":
    main()
