"""The agreements between SocialHub's parts, each written once: which services exist and what
they need (`topology`), what they tell each other over Kafka (`events`) and over Redis pub/sub
(`channels`).

Domain-free and dependency-light (stdlib and pydantic only): the services, the kit, devstack,
the gateway template, the operator and the load tests all import it, and it imports none of
them (an import-linter contract keeps it so).
"""
