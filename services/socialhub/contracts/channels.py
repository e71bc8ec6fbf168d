"""Redis pub/sub channels between services (docs/events.md, "Real-time push").

Names here are unprefixed: a deployment adds its `REDIS_CHANNEL_PREFIX` through
`RedisSettings.channel`, since pub/sub channels are global to a Redis server.
"""

import uuid

# Anything published here as `{"event": <socket.io event>, "data": ...}` reaches every
# Socket.IO client of that user (the chat service delivers it).
USER_PUSH_PREFIX = "push:user:"


def user_push(user_id: uuid.UUID | str) -> str:
    return f"{USER_PUSH_PREFIX}{user_id}"
