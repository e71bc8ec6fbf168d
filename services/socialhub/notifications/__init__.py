"""The notification service: Kafka events in, notifications in MongoDB, real-time push out."""
