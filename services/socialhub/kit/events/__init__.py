"""Events between services: one envelope, a transactional outbox to publish, a batch consumer.

Delivery is at-least-once end to end: the outbox relay may publish an event twice after a crash,
so every consumer is idempotent on `eventId`.
"""
