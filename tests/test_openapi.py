"""The services' OpenAPI documents, read through the real gateway as a client would: public, every
error documented as the envelope, and nothing listed that the gateway does not route."""

import asyncio
import json
import re
import uuid
from typing import Any

import httpx
import pytest

from socialhub.contracts.topology import SERVICE_NAMES
from socialhub.gateway import GATEWAY_ERRORS, api_documents
from tests.support import sign_up

ENVELOPE = {"$ref": "#/components/schemas/ErrorResponse"}
NO_ROUTE = next(error.message for error in GATEWAY_ERRORS if error.status == 404)


async def send(gateway: httpx.AsyncClient, method: str, url: str) -> httpx.Response:
    """One request, waiting out the gateway's per-IP rate limit (the whole suite comes from
    127.0.0.1, and these tests send a request per documented route)."""
    for _ in range(30):
        response = await gateway.request(method, url)
        if response.status_code != 429:
            break
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
    return response


async def document(gateway: httpx.AsyncClient, service: str) -> dict[str, Any]:
    response = await send(gateway, "GET", api_documents(service)[0])  # no token
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, by_method in doc["paths"].items()
        for method, operation in by_method.items()
    ]


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_the_documents_are_public(gateway: httpx.AsyncClient, service: str) -> None:
    doc = await document(gateway, service)
    assert doc["paths"]
    page = await send(gateway, "GET", api_documents(service)[1])
    assert page.status_code == 200
    assert api_documents(service)[0] in page.text


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_every_error_is_documented_as_the_envelope(
    gateway: httpx.AsyncClient, service: str
) -> None:
    doc = await document(gateway, service)
    assert "HTTPValidationError" not in json.dumps(doc)  # FastAPI's, which the kit never sends
    for method, path, operation in operations(doc):
        responses = operation["responses"]
        assert "429" in responses, (method, path)  # the gateway rate-limits every route
        if "security" in operation:
            assert "401" in responses, (method, path)
        if "requestBody" in operation:
            assert {"413", "422"} <= set(responses), (method, path)
        for status, response in responses.items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == ENVELOPE
                assert response["description"]


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_every_documented_path_is_routed_by_the_gateway(
    gateway: httpx.AsyncClient, service: str
) -> None:
    """Without a token, nothing documented gets the gateway's own 404 (the token check's
    `/api/v1/auth/verify-user` would)."""
    for method, path, _ in operations(await document(gateway, service)):
        concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = await send(gateway, method.upper(), concrete)
        assert response.json()["error"]["message"] != NO_ROUTE, (method, path)


async def test_405_names_every_allowed_method(gateway: httpx.AsyncClient) -> None:
    """Starlette names only the first route's methods; the path has three routes."""
    _, token = await sign_up(gateway, "allow")
    response = await gateway.put(
        f"/posts/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PATCH"
    assert response.json()["error"]["code"] == "method_not_allowed"
