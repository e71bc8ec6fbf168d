"""Path traversal in every path parameter of every service, through the test gateway: each
operation of each OpenAPI document, each parameter replaced by an escape attempt, sent over a
plain socket (an HTTP client would normalise the dots away). Every answer is a JSON 4xx."""

from typing import Any
from urllib.parse import urlsplit

import httpx

from devstack.platform import Platform
from socialhub.contracts.topology import SERVICE_NAMES
from tests.support import raw_http, sign_up

ESCAPES = (
    b"..",
    b"%2e%2e",
    b"..%2F..%2Fetc%2Fpasswd",
    b"%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    b"..%5c..%5cetc%5cpasswd",
    b"....%2F%2Fetc",
)
WRITES = {"post", "put", "patch", "delete"}


def requests(documents: dict[str, dict[str, Any]]) -> list[tuple[str, bytes]]:
    """(method, raw path) for every operation with a path parameter and every escape."""
    found = []
    for document in documents.values():
        for template, operations in document["paths"].items():
            if "{" not in template:
                continue
            for method in operations:
                for escape in ESCAPES:
                    path = template.encode()
                    while b"{" in path:
                        start, end = path.index(b"{"), path.index(b"}")
                        path = path[:start] + escape + path[end + 1 :]
                    found.append((method.upper(), path))
    return found


async def test_every_path_parameter_refuses_traversal_with_a_json_4xx(
    running_platform: Platform, gateway: httpx.AsyncClient
) -> None:
    documents = {
        service: (await gateway.get(f"/{service}/openapi.json")).json() for service in SERVICE_NAMES
    }
    _, token = await sign_up(gateway, "trav")
    url = urlsplit(running_platform.gateway_url)
    assert url.hostname is not None
    assert url.port is not None
    answers: dict[tuple[str, bytes], int] = {}
    for method, path in requests(documents):
        body = b"Content-Length: 0\r\n" if method.lower() in WRITES else b""
        request = (
            f"{method} ".encode()
            + path
            + b" HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + body
            + b"\r\n"
        )
        response = raw_http(url.port, request, host=url.hostname)
        status, content = response.status_code, response.content
        answers[(method, path)] = status
        assert 400 <= status < 500, (method, path, status, content[:200])
        assert response.headers["content-type"].startswith("application/json"), (method, path)
        assert b'"error"' in content, (method, path, content[:200])
    assert len(answers) >= 10 * len(ESCAPES), sorted(answers)
    print(f"\n{len(answers)} traversal attempts, statuses {sorted(set(answers.values()))}")


def test_every_parameter_of_a_path_is_replaced() -> None:
    document: dict[str, Any] = {
        "paths": {"/posts/{post_id}/comments/{comment_id}": {"delete": {}}, "/posts/": {"post": {}}}
    }
    assert requests({"posts": document}) == [
        ("DELETE", b"/posts/" + escape + b"/comments/" + escape) for escape in ESCAPES
    ]
