"""The service kit: what every SocialHub service uses the same way, and nothing domain-specific.

settings (pydantic-settings), database (async SQLAlchemy, request-owned transactions),
events (envelope, transactional outbox, batch consumer), identity (the gateway's verified user),
errors (one JSON envelope), openapi (the documents' error answers), inputs (the text rule,
the body cap), telemetry (JSON logs, request ids, Prometheus metrics), health, and the app/CLI
factory that wires them together.
"""
