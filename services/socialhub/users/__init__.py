"""Users service (port 5003): profiles, the follow graph, blocks, and counts served from Redis."""
