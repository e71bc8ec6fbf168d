"""The kit's input rules: one text rule for every text field, and the body cap."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, StringConstraints

from socialhub.kit.app import create_app
from socialhub.kit.inputs import (
    MAX_BODY_BYTES,
    MULTILINE,
    NONBLANK_LINE,
    NONBLANK_TEXT,
    SINGLE_LINE,
    TextRule,
    check_line,
    check_text,
)
from socialhub.kit.settings import ServiceSettings
from tests.kit.test_http import exchange, served

FORBIDDEN_EVERYWHERE = ["a\x00b", "\x07", "\x1b[31m", "\x7f", "\x85", "\ud800", "x\udfffy"]


@pytest.mark.parametrize("value", FORBIDDEN_EVERYWHERE)
def test_control_characters_and_lone_surrogates_are_no_text(value: str) -> None:
    with pytest.raises(ValueError, match="control characters"):
        check_text(value)
    with pytest.raises(ValueError, match="control characters"):
        check_line(value)


@pytest.mark.parametrize("value", ["a\tb", "two\nlines", "windows\r\n"])
def test_text_keeps_tabs_and_line_breaks_but_a_line_does_not(value: str) -> None:
    assert check_text(value) == value
    with pytest.raises(ValueError, match="control characters"):
        check_line(value)


def test_other_unicode_is_text() -> None:
    for value in ["", "héllo wörld", "日本語", "emoji 😀", "\u200bzero width", "\U0001f600"]:
        assert check_line(value) == value


def accepts(rule: TextRule, value: str) -> bool:
    try:
        rule.func(value)  # type: ignore[call-arg]
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("rule", [MULTILINE, SINGLE_LINE, NONBLANK_TEXT, NONBLANK_LINE])
def test_the_documented_pattern_is_the_rule(rule: TextRule) -> None:
    """The OpenAPI documents give clients (and the fuzzer) the pattern: it must accept exactly
    what the check does, for every character but the surrogates (no valid UTF-8 has them)."""
    for code in [*range(0xD800), *range(0xE000, 0x10000, 7), 0x1F600, 0x10FFFF]:
        value = f"a{chr(code)}b"
        assert bool(re.fullmatch(rule.pattern, value)) == accepts(rule, value), hex(code)


@pytest.mark.parametrize("rule", [NONBLANK_TEXT, NONBLANK_LINE])
def test_nonblank_text_documents_that_whitespace_alone_is_none(rule: TextRule) -> None:
    """For stripped fields with a minimum length of 1: spaces alone end up empty."""
    for blank in ["", " ", "\u00a0 \u2003"]:
        assert not re.fullmatch(rule.pattern, blank)
    assert re.fullmatch(rule.pattern, " x ")


router = APIRouter()


class Note(BaseModel):
    title: Annotated[str, StringConstraints(max_length=100), SINGLE_LINE]
    body: Annotated[str, StringConstraints(max_length=MAX_BODY_BYTES), MULTILINE] = ""


@router.post("/notes")
async def add_note(note: Note) -> dict[str, int]:
    return {"bodyLength": len(note.body)}


@asynccontextmanager
async def _no_resources(_: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.fixture(scope="module")
async def notes() -> AsyncIterator[httpx.AsyncClient]:
    """A kit app on a real uvicorn server: chunked bodies reach it as they do behind nginx."""
    app = create_app("kit-inputs", ServiceSettings(), lifespan=_no_resources, routers=[router])
    async with (
        served(app) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        yield client


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "a\x00b"),
        ("title", "two\nlines"),
        ("title", "\ud83d"),
        ("body", "nul\x00"),
        ("body", "lone \udc00 surrogate"),
    ],
)
async def test_a_field_breaking_the_rule_is_a_422_naming_it(
    notes: httpx.AsyncClient, field: str, value: str
) -> None:
    note = {"title": "fine", "body": "fine", field: value}
    response = await notes.post(
        "/notes",
        content=json.dumps(note),  # "\ud83d" stays escaped
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert set(response.json()["error"]["fields"]) == {field}
    assert response.json()["requestId"] == response.headers["x-request-id"]


async def test_bodies_up_to_the_cap_are_served_chunked_or_not(notes: httpx.AsyncClient) -> None:
    body = "x" * (MAX_BODY_BYTES - 100)
    encoded = json.dumps({"title": "big", "body": body}).encode()
    assert len(encoded) <= MAX_BODY_BYTES
    sized = await notes.post(
        "/notes", content=encoded, headers={"content-type": "application/json"}
    )
    assert sized.json() == {"bodyLength": len(body)}
    chunked = await notes.post(
        "/notes", content=_chunks(encoded), headers={"content-type": "application/json"}
    )
    assert chunked.json() == {"bodyLength": len(body)}


async def test_bodies_over_the_cap_are_413_chunked_or_not(notes: httpx.AsyncClient) -> None:
    encoded = json.dumps({"title": "big", "body": "x" * MAX_BODY_BYTES}).encode()
    for content in (encoded, _chunks(encoded)):
        response = await notes.post(
            "/notes", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "payload_too_large"
        assert response.json()["requestId"] == response.headers["x-request-id"]
    assert (await notes.post("/notes", json={"title": "after"})).status_code == 200


async def test_a_20_mb_body_is_refused_from_its_length_before_it_is_sent() -> None:
    """The answer comes from the headers alone: the server reads none of the body."""
    app = create_app("kit-inputs", ServiceSettings(), lifespan=_no_resources, routers=[router])
    async with served(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"POST /notes HTTP/1.1\r\nHost: kit\r\nContent-Type: application/json"
                b"\r\nContent-Length: 20000000\r\n\r\n{"
            )
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        finally:
            writer.close()
    assert status_line.split()[1] == b"413"


async def test_a_refused_body_leaves_the_keep_alive_connection_usable() -> None:
    app = create_app("kit-inputs", ServiceSettings(), lifespan=_no_resources, routers=[router])
    async with served(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(3):
                status, _, refused = await exchange(
                    reader,
                    writer,
                    "POST",
                    "/notes",
                    {"title": "big", "body": "x" * 100_000},
                    request_id="too-big",
                )
                assert (status, refused["requestId"]) == (413, "too-big")
                status, _, served_note = await exchange(
                    reader, writer, "POST", "/notes", {"title": "small", "body": "fine"}
                )
                assert (status, served_note) == (200, {"bodyLength": 4})
        finally:
            writer.close()


async def _chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
