"""The devstack Kafka is a real broker: admin, idempotent producers, groups, persistence."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import UnknownTopicOrPartitionError

from devstack.config import PROFILES
from devstack.servers.kafka import Kafka
from devstack.waiting import free_port

PARTITIONS = 3


def unique(kind: str) -> str:
    return f"{PROFILES['test'].topic_prefix}devstack-{kind}-{uuid.uuid4().hex[:8]}"


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
        assert [(topic, code) for topic, code, _ in response.topic_errors] == [(name, 0)]
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=value)
    finally:
        await producer.stop()


async def consume(consumer: AIOKafkaConsumer, count: int) -> list[bytes]:
    """Read until `count` records arrived (more may come in the same fetch)."""
    values: list[bytes] = []
    async with asyncio.timeout(60):
        while len(values) < count:
            batches = await consumer.getmany(timeout_ms=1000)
            values += [record.value for records in batches.values() for record in records]
    return values


def group_consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )


@pytest.fixture
async def topic(kafka: str) -> AsyncIterator[str]:
    name = unique("topic")
    await create_topic(kafka, name)
    yield name
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()


async def test_broker_reports_its_cluster(kafka: str) -> None:
    server = Kafka()
    assert server.ready()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert cluster["cluster_id"] == (server.root / "cluster-id").read_text().strip()
    assert [(b["host"], b["port"]) for b in cluster["brokers"]] == [("127.0.0.1", server.port)]


async def test_committed_offsets_resume_after_consumer_restart(kafka: str, topic: str) -> None:
    first = [f"first-{i}".encode() for i in range(12)]
    second = [f"second-{i}".encode() for i in range(6)]
    group = unique("group")
    await produce(kafka, topic, first)

    consumer = group_consumer(kafka, topic, group)
    await consumer.start()
    try:
        assert sorted(await consume(consumer, len(first))) == sorted(first)
        await consumer.commit()
    finally:
        await consumer.stop()

    await produce(kafka, topic, second)
    restarted = group_consumer(kafka, topic, group)
    await restarted.start()
    try:
        committed = [await restarted.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)]
        assert sum(offset or 0 for offset in committed) == len(first)
        assert sorted(await consume(restarted, len(second))) == sorted(second)
    finally:
        await restarted.stop()


async def test_topics_are_not_created_on_first_use(kafka: str) -> None:
    missing = unique("missing")
    producer = AIOKafkaProducer(bootstrap_servers=kafka, request_timeout_ms=2000)
    await producer.start()
    try:
        with pytest.raises(UnknownTopicOrPartitionError):
            await producer.send_and_wait(missing, b"lost")
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        assert missing not in await admin.list_topics()
    finally:
        await admin.close()


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[Kafka]:
    """A second broker with its own ports and state, so restarting it disturbs nobody."""
    server = Kafka(
        port=free_port(), controller_port=free_port(), state_dir=tmp_path, node_port=None
    )
    yield server
    server.stop()


@pytest.mark.slow
async def test_data_survives_a_broker_restart(private_kafka: Kafka) -> None:
    server = private_kafka
    await asyncio.to_thread(server.start)
    cluster_id = (server.root / "cluster-id").read_text()
    name = unique("durable")
    values = [f"kept-{i}".encode() for i in range(5)]
    await create_topic(server.address, name)
    await produce(server.address, name, values)

    assert await asyncio.to_thread(server.stop)
    assert not server.ready()
    await asyncio.to_thread(server.start)

    assert (server.root / "cluster-id").read_text() == cluster_id
    consumer = group_consumer(server.address, name, unique("group"))
    await consumer.start()
    try:
        assert sorted(await consume(consumer, len(values))) == sorted(values)
    finally:
        await consumer.stop()
