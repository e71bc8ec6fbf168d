"""The kit's HTTP behaviour shared by every service: errors, request ids, metrics, health."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from devstack.waiting import free_port
from socialhub.kit.app import create_app, resources
from socialhub.kit.errors import conflict
from socialhub.kit.identity import CurrentUser
from socialhub.kit.settings import ServiceSettings
from tests.support import app_client
from tests.unit import unit_fixture

router = APIRouter()


class Item(BaseModel):
    name: str = Field(min_length=2)
    size: int = Field(ge=1)


@router.post("/items/{item_id}")
async def create_item(item_id: int, item: Item) -> dict[str, object]:
    if item.name == "taken":
        raise conflict("that name is taken", name="already taken")
    return {"id": item_id, "name": item.name}


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internal detail")


@router.post("/boom")
async def boom_after_reading(item: Item) -> None:
    raise RuntimeError(f"secret internal detail about {item.name}")


@router.get("/whoami")
async def whoami(user: CurrentUser) -> dict[str, str]:
    return {"id": str(user.id), "username": user.username}


def build(failing_check: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with resources(app):

            async def ok() -> None:
                return None

            async def down() -> None:
                raise ConnectionError("store unreachable")

            app.state.readiness_checks["store"] = down if failing_check else ok
            yield

    return create_app("kit-test", ServiceSettings(), lifespan=lifespan, routers=[router])


@pytest.fixture(scope="module")
@unit_fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(build()) as http:
        yield http


async def test_validation_errors_name_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/items/abc", json={"name": "x", "size": 0})
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert set(body["error"]["fields"]) == {"item_id", "name", "size"}
    assert body["requestId"] == response.headers["x-request-id"]


async def test_domain_errors_use_the_same_envelope(client: httpx.AsyncClient) -> None:
    response = await client.post("/items/1", json={"name": "taken", "size": 1})
    assert response.status_code == 409
    assert response.json()["error"] == {
        "status": 409,
        "code": "conflict",
        "message": "that name is taken",
        "fields": {"name": "already taken"},
    }


async def test_unknown_routes_and_methods_answer_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong_method = await client.delete("/items/1")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["status"] == 405


async def test_unexpected_errors_are_a_generic_500(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom", headers={"x-request-id": "req-boom"})
    assert response.status_code == 500
    assert response.json()["error"]["message"] == "internal server error"
    assert response.json()["requestId"] == "req-boom"
    assert "secret" not in response.text


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[int]:
    """The app on a real uvicorn server (the services' own), on a free port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        await task


async def exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    request_id: str = "",
) -> tuple[int, dict[str, str], Any]:
    """One request and its response on an open HTTP/1.1 connection, which stays open."""
    payload = json.dumps(body).encode() if body is not None else b""
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: kit\r\nX-Request-ID: {request_id}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        "\r\n".encode()
        + payload
    )
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    fields = (line.partition(":") for line in head[1:] if line)
    headers = {name.lower(): value.strip() for name, _, value in fields}
    content = await reader.readexactly(int(headers["content-length"]))
    return status, headers, json.loads(content)


async def test_a_500_leaves_the_keep_alive_connection_usable() -> None:
    """The gateway pools connections: after a failed request the next one on the same
    connection (maybe another user's) must be served, not find it closed."""
    async with served(build()) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for round_ in range(5):
                status, headers, failed = await exchange(
                    reader,
                    writer,
                    "POST",
                    "/boom",
                    {"name": "x" * 10, "size": 1},
                    request_id=f"boom-{round_}",
                )
                assert status == 500
                assert failed["requestId"] == headers["x-request-id"] == f"boom-{round_}"
                assert "secret" not in json.dumps(failed)
                assert headers.get("connection") != "close"
                status, _, created = await exchange(
                    reader, writer, "POST", f"/items/{round_}", {"name": "fine", "size": 1}
                )
                assert (status, created) == (200, {"id": round_, "name": "fine"})
        finally:
            writer.close()


async def test_identity_comes_from_the_gateway_header(client: httpx.AsyncClient) -> None:
    assert (await client.get("/whoami")).status_code == 401
    forged = await client.get("/whoami", headers={"x-user-payload": "{not json"})
    assert forged.status_code == 401
    payload = '{"id": "5b0c3f0e-6d7a-4a53-9d0e-0c7b1b1b1b1b", "username": "ann"}'
    response = await client.get("/whoami", headers={"x-user-payload": payload})
    assert response.json() == {"id": "5b0c3f0e-6d7a-4a53-9d0e-0c7b1b1b1b1b", "username": "ann"}


async def test_request_id_is_propagated_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/health", headers={"x-request-id": "req-123"})
    assert given.headers["x-request-id"] == "req-123"
    generated = await client.get("/health")
    assert len(generated.headers["x-request-id"]) == 32


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.post("/items/7", json={"name": "ok", "size": 1})
    metrics = (await client.get("/metrics")).text
    assert (
        'http_requests_total{method="POST",route="/items/{item_id}",service="kit-test",'
        'status="200"}'
    ) in metrics
    assert "http_request_duration_seconds_bucket" in metrics


async def test_health_and_readiness() -> None:
    async with app_client(build()) as healthy:
        assert (await healthy.get("/health")).json() == {"status": "ok", "service": "kit-test"}
        ready = await healthy.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"store": "ok"}
    async with app_client(build(failing_check=True)) as degraded:
        assert (await degraded.get("/health")).status_code == 200
        not_ready = await degraded.get("/ready")
        assert not_ready.status_code == 503
        assert "store unreachable" in not_ready.json()["checks"]["store"]
