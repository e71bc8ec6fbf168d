"""The one event envelope every service publishes and consumes.

{"eventId": "…uuid…", "eventType": "post.created", "occurredAt": "2026-…Z",
 "producer": "posts", "data": {...}}
"""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from socialhub.contracts.events import EventData


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )

    event_type: str = Field(min_length=1, max_length=100)
    producer: str = Field(min_length=1, max_length=50)
    data: dict[str, Any]
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=100)
    occurred_at: datetime = Field(default_factory=_now)

    @classmethod
    def of(cls, data: EventData, **envelope: Any) -> "Event":
        """The envelope of a contract event (`envelope`: eventId or occurredAt to set)."""
        return cls(
            event_type=data.event_type, producer=data.producer, data=data.to_data(), **envelope
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> "Event":
        """Parse a Kafka message value; raises ValueError for anything that is not an envelope."""
        if raw is None:
            raise ValueError("empty message")
        return cls.model_validate_json(raw)
