"""docs/events.md says what the event models say, and the models survive the wire."""

import re
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pydantic import ValidationError

from socialhub.contracts.events import ALL_TOPICS, BY_TYPE, EVENTS, EventData, PostLiked
from socialhub.kit.events.envelope import Event

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"
_ROW = re.compile(
    r"^\| `(?P<type>[a-z]+\.[a-z]+)` \| (?P<producer>\w+) \| (?P<key>\w+) \| "
    r"(?P<data>.*) \|$"
)


class DocumentedEvent(NamedTuple):
    topic: str
    producer: str
    key: str
    fields: frozenset[str]


def documented() -> dict[str, DocumentedEvent]:
    """The event tables of docs/events.md: every backticked field list in a row's data cell
    (`a, b` and "plus `c, d`") counts; prose in parentheses does not."""
    found: dict[str, DocumentedEvent] = {}
    topic = ""
    for line in DOCS.read_text().splitlines():
        if line.startswith("## "):
            topic = line[3:].strip()
        if (row := _ROW.match(line)) is None:
            continue
        cell = re.sub(r"\([^)]*\)", "", row["data"])
        fields = frozenset(
            name.strip() for group in re.findall(r"`([^`]+)`", cell) for name in group.split(",")
        )
        found[row["type"]] = DocumentedEvent(topic, row["producer"], row["key"], fields)
    return found


def wire_fields(model: type[EventData]) -> frozenset[str]:
    return frozenset(field.alias or name for name, field in model.model_fields.items())


def test_the_documentation_lists_exactly_the_contracts_events() -> None:
    assert sorted(documented()) == sorted(BY_TYPE)


@pytest.mark.parametrize("model", EVENTS, ids=lambda m: m.event_type)
def test_each_event_is_documented_as_modelled(model: type[EventData]) -> None:
    doc = documented()[model.event_type]
    assert doc.topic == model.topic
    assert model.topic in ALL_TOPICS
    assert doc.producer == model.producer
    assert doc.key == model.model_fields[model.key_field].alias
    assert doc.fields == wire_fields(model)


def sample(model: type[EventData]) -> dict[str, Any]:
    """Valid wire data for any event model, built from its field types."""
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = str(field.annotation)
        if "UUID" in annotation:
            value: Any = str(uuid.uuid4())
        elif "datetime" in annotation:
            value = "2026-12-04T09:00:00Z"
        elif "Literal" in annotation:
            value = "public"
        elif annotation == "<class 'int'>":
            value = 1764061200000 if name == "timestamp" else 2
        else:
            value = f"{name} text"
        values[field.alias or name] = value
    return values


@pytest.mark.parametrize("model", EVENTS, ids=lambda m: m.event_type)
def test_an_envelope_round_trips_through_the_wire(model: type[EventData]) -> None:
    data = model.of(sample(model))
    event = Event.from_bytes(Event.of(data).to_bytes())
    assert (event.event_type, event.producer) == (model.event_type, model.producer)
    assert BY_TYPE[event.event_type].of(event.data) == data
    assert data.key == str(getattr(data, model.key_field))


def test_a_broken_event_is_refused_by_its_model() -> None:
    broken = sample(PostLiked) | {"postAuthorId": "not-a-uuid"}
    with pytest.raises(ValidationError, match="postAuthorId"):
        PostLiked.of(broken)
