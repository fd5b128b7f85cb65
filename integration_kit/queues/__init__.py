"""Message queues: confirmed publishing, a transactional outbox, consumers with delayed retry, dead letters and
inbox deduplication, on RabbitMQ and NATS JetStream."""

__all__: list[str] = []
