"""The gateway through real nginx, in front of the real auth service and echoing stand-ins."""

import asyncio
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.sync.client import connect

from devstack.waiting import free_port, wait_until
from socialhub.gateway import api_documents
from tests.gateway.conftest import MEDIA_BYTES, MEDIA_FILE, Gateway, start_gateway
from tests.support import PASSWORD, raw_http

SPOOFED = '{"id":"00000000-0000-0000-0000-000000000000","username":"admin"}'


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The services' envelope: {"error": {"status", "code", "message"}, "requestId"}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["requestId"] == response.headers["x-request-id"]
    return body


def seen_by_upstream(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    seen: dict[str, Any] = response.json()
    return seen


def access_log_entry(gateway: Gateway, request_id: str) -> dict[str, Any]:
    """The gateway's JSON access-log line for one request (written just after the response)."""
    found: dict[str, Any] = {}

    def logged() -> bool:
        for line in gateway.access_log.read_text().splitlines():
            entry = json.loads(line)
            if entry["requestId"] == request_id:
                found.update(entry)
                return True
        return False

    wait_until(logged, timeout=5, what=f"access log line for {request_id}")
    return found


@pytest.fixture(scope="module")
def client(gateway: Gateway) -> httpx.Client:
    return httpx.Client(base_url=gateway.url, timeout=10)


@pytest.fixture(scope="module")
def account(client: httpx.Client) -> dict[str, Any]:
    """A user signed up through the gateway: {"token", "user"}."""
    username = f"gw_{uuid.uuid4().hex[:12]}"
    response = client.post(
        "/auth/signup",
        json={
            "name": "Gateway Test",
            "email": f"{username}@example.com",
            "username": username,
            "password": PASSWORD,
        },
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def login(client: httpx.Client, username: str) -> str:
    response = client.post("/auth/login", json={"identifier": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def test_health_is_the_gateways_own(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "gateway"}


@pytest.mark.parametrize("path", ["/users/me", "/posts/", "/chat/rooms/r1/messages"])
def test_protected_routes_refuse_a_missing_token(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    body = assert_error(response, 401, "unauthorized")
    assert body["error"]["message"] == "missing bearer token"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_forged_token_is_refused(client: httpx.Client, account: dict[str, Any]) -> None:
    claims = jwt.decode(account["token"], options={"verify_signature": False})
    forged = jwt.encode({**claims, "username": "admin"}, "not-the-secret-" * 4, algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    for token in (forged, unsigned, "not-a-jwt"):
        response = client.get("/users/me", headers=bearer(token))
        assert_error(response, 401, "unauthorized")


def test_a_spoofed_user_payload_is_replaced_by_the_verified_one(
    client: httpx.Client, account: dict[str, Any], gateway: Gateway
) -> None:
    """Checked twice: the second check is served from the token-check cache, where the payload
    must come from the cached response headers (README: the cache)."""
    user = account["user"]
    token = login(client, user["username"])  # a fresh token: the first check cannot be cached
    cache_states = []
    for attempt in range(2):
        request_id = f"spoof-{attempt}-{uuid.uuid4().hex}"
        response = client.get(
            "/users/me",
            headers={**bearer(token), "X-User-Payload": SPOOFED, "X-Request-ID": request_id},
        )
        headers = seen_by_upstream(response)["headers"]
        assert headers["x-user-payload"] == [
            json.dumps({"id": user["id"], "username": user["username"]}, separators=(",", ":"))
        ]
        cache_states.append(access_log_entry(gateway, request_id)["authCache"])
    assert cache_states == ["MISS", "HIT"]


def test_every_request_carries_a_request_id_and_the_real_client_address(
    client: httpx.Client, account: dict[str, Any]
) -> None:
    response = client.get(
        "/users/me",
        headers={
            **bearer(account["token"]),
            "X-Request-ID": "trace-42",
            "X-Forwarded-For": "6.6.6.6",
        },
    )
    headers = seen_by_upstream(response)["headers"]
    assert headers["x-request-id"] == ["trace-42"]
    assert response.headers["x-request-id"] == "trace-42"
    # Overwritten, never appended: the auth service rate-limits by this address.
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-real-ip"] == ["127.0.0.1"]

    generated = client.get("/users/me", headers=bearer(account["token"]))
    assert len(seen_by_upstream(generated)["headers"]["x-request-id"][0]) == 32

    hostile = client.get(
        "/users/me", headers={**bearer(account["token"]), "X-Request-ID": 'x","admin":true,"y":"'}
    )
    replaced = seen_by_upstream(hostile)["headers"]["x-request-id"][0]
    assert '"' not in replaced
    assert len(replaced) == 32


def test_public_auth_routes_pass_without_a_token(
    client: httpx.Client, account: dict[str, Any]
) -> None:
    assert login(client, account["user"]["username"])
    wrong = client.post(
        "/auth/login", json={"identifier": account["user"]["username"], "password": "WrongPass123!"}
    )
    assert_error(wrong, 401, "unauthorized")  # the auth service's own answer, passed through
    # a new address each run: the auth service allows 5 requests per address in 30 minutes
    forgot = client.post(
        "/auth/password/forgot", json={"email": f"nobody-{uuid.uuid4().hex[:12]}@example.com"}
    )
    assert forgot.status_code == 202
    me = client.get("/auth/me", headers=bearer(account["token"]))
    assert me.json()["username"] == account["user"]["username"]


def test_the_token_check_endpoint_is_not_reachable_from_outside(
    client: httpx.Client, account: dict[str, Any]
) -> None:
    for path in ("/api/v1/auth/verify-user", "/_gateway/verify-user"):
        assert_error(client.get(path, headers=bearer(account["token"])), 404, "not_found")


@pytest.mark.parametrize("service", ["users", "posts", "chat"])
def test_api_documents_pass_without_a_token(client: httpx.Client, service: str) -> None:
    for path in api_documents(service):
        seen = seen_by_upstream(client.get(path, headers={"X-User-Payload": SPOOFED}))
        assert (seen["service"], seen["path"]) == (service, path)
        assert "x-user-payload" not in seen["headers"]


def test_the_auth_services_document_lists_only_routed_paths(client: httpx.Client) -> None:
    document_path, docs_path = api_documents("auth")
    document = client.get(document_path).json()
    assert "/auth/login" in document["paths"]
    assert "/api/v1/auth/verify-user" not in document["paths"]  # the gateway answers it 404
    docs = client.get(docs_path)
    assert docs.status_code == 200
    assert document_path in docs.text
    # The fixture runs no notifications service.
    assert_error(client.get(api_documents("notifications")[0]), 503, "service_unavailable")


def test_unknown_routes_and_absent_services_answer_json(
    client: httpx.Client, account: dict[str, Any]
) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    # The fixture runs no notifications service.
    assert_error(
        client.get("/notify/notifications", headers=bearer(account["token"])),
        503,
        "service_unavailable",
    )


def test_a_logged_out_token_stops_working_within_the_cache_time(
    client: httpx.Client, account: dict[str, Any], gateway: Gateway
) -> None:
    token = login(client, account["user"]["username"])
    assert client.get("/users/me", headers=bearer(token)).status_code == 200  # now cached
    assert client.post("/auth/logout", headers=bearer(token)).status_code == 204
    # nginx keeps a cached answer for auth_cache_seconds, counted in whole seconds.
    deadline = time.monotonic() + gateway.config.auth_cache_seconds + 3
    while client.get("/users/me", headers=bearer(token)).status_code == 200:
        assert time.monotonic() < deadline, "revoked token still accepted"
        time.sleep(0.2)
    assert_error(client.get("/users/me", headers=bearer(token)), 401, "unauthorized")


def test_large_bodies_only_for_posts(client: httpx.Client, account: dict[str, Any]) -> None:
    five_mb = b"x" * (5 * 1024 * 1024)
    too_large = client.post("/users/me", content=five_mb, headers=bearer(account["token"]))
    assert_error(too_large, 413, "payload_too_large")
    upload = client.post("/posts/", content=five_mb, headers=bearer(account["token"]))
    assert seen_by_upstream(upload)["method"] == "POST"


def test_bodies_do_not_confuse_the_token_check(
    client: httpx.Client, account: dict[str, Any]
) -> None:
    """The check carries no body, so it must announce none: a stray Content-Length made the auth
    service read the next check on that keepalive connection as the missing body."""
    claims = jwt.decode(account["token"], options={"verify_signature": False})
    for attempt in range(6):  # distinct tokens: every check reaches the auth service
        forged = jwt.encode(
            {**claims, "jti": f"forged-{attempt}"}, "wrong-secret-" * 4, algorithm="HS256"
        )
        response = client.post("/posts/", content=b"x" * 70_000, headers=bearer(forged))
        assert_error(response, 401, "unauthorized")
    fresh = login(client, account["user"]["username"])
    assert seen_by_upstream(client.get("/users/me", headers=bearer(fresh)))["service"] == "users"


def test_media_is_public_and_cacheable(client: httpx.Client) -> None:
    response = client.get(f"/media/{MEDIA_FILE}")
    assert response.status_code == 200
    assert response.content == MEDIA_BYTES
    assert response.headers["content-type"] == "image/jpeg"
    assert "immutable" in response.headers["cache-control"]
    assert response.headers["x-content-type-options"] == "nosniff"
    for path in ("/media/", "/media/2026/", "/media/missing.jpg", "/media/../nginx.conf"):
        assert_error(client.get(path), 404, "not_found")
    refused = client.post(f"/media/{MEDIA_FILE}")
    assert_error(refused, 405, "method_not_allowed")
    assert refused.headers["allow"] == "GET, HEAD"


CLOSE = b"Host: gateway\r\nConnection: close\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /posts/abc%00 HTTP/1.1\r\n" + CLOSE, 400, "bad_request"),
        (b"GET /media/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\n" + CLOSE, 400, "bad_request"),
        (b"GET /media/..%2f..%2fetc/passwd HTTP/1.1\r\n" + CLOSE, 400, "bad_request"),
        (b"GET /../etc/passwd HTTP/1.1\r\n" + CLOSE, 400, "bad_request"),
        (b"G@T /posts/ HTTP/1.1\r\n" + CLOSE, 400, "bad_request"),
        (b"GET /posts/a b HTTP/1.1\r\n" + CLOSE, 400, "bad_request"),
        (b"GET /\x01 HTTP/1.1\r\n" + CLOSE, 400, "bad_request"),
        (b"OPTIONS * HTTP/1.1\r\n" + CLOSE, 400, "bad_request"),
        (b"GET / HTTP/1.1x\r\n" + CLOSE, 400, "bad_request"),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n", 400, "bad_request"),  # no Host
        (b"GET /posts/" + b"a" * 20_000 + b" HTTP/1.1\r\n" + CLOSE, 414, "uri_too_long"),
        (
            b"GET /posts/ HTTP/1.1\r\n" + CLOSE + b"X-Big: " + b"a" * 20_000 + b"\r\n",
            431,
            "request_header_fields_too_large",
        ),
        (
            b"GET /posts/ HTTP/1.1\r\n"
            + CLOSE
            + b"".join(b"X-%d: %s\r\n" % (n, b"a" * 7_000) for n in range(6)),
            431,
            "request_header_fields_too_large",
        ),
        (b"GET / HTTP/2.0\r\n" + CLOSE, 505, "http_version_not_supported"),
        (
            b"POST /auth/login HTTP/1.1\r\n" + CLOSE + b"Transfer-Encoding: gzip\r\n",
            501,
            "not_implemented",
        ),
        (b"TRACE /posts/ HTTP/1.1\r\n" + CLOSE, 405, "method_not_allowed"),
        (
            f"GET /media/{MEDIA_FILE} HTTP/1.1\r\n".encode() + CLOSE + b"Range: bytes=9999-\r\n",
            416,
            "range_not_satisfiable",
        ),
        (
            f"GET /media/{MEDIA_FILE} HTTP/1.1\r\n".encode() + CLOSE + b'If-Match: "other"\r\n',
            412,
            "precondition_failed",
        ),
    ],
    ids=[
        "nul",
        "dot-dot-encoded",
        "dot-dot-slash-encoded",
        "above-the-root",
        "bad-method",
        "space-in-path",
        "control-character",
        "asterisk",
        "bad-version",
        "no-host",
        "20kB-uri",
        "long-header",
        "many-headers",
        "http-2.0-in-plain-text",
        "unknown-transfer-encoding",
        "trace",
        "unsatisfiable-range",
        "failed-precondition",
    ],
)
def test_malformed_requests_answer_the_json_envelope(
    gateway: Gateway, request_bytes: bytes, status: int, code: str
) -> None:
    """Even a request line nginx cannot parse, which gives its error page no URI to start from."""
    assert_error(raw_http(gateway.config.listen_port, request_bytes + b"\r\n"), status, code)


def test_socketio_upgrade_reaches_chat_without_a_gateway_token_check(gateway: Gateway) -> None:
    """The chat service checks the token itself at connect; the gateway strips the payload."""
    url = gateway.url.replace("http", "ws") + "/chat/socket.io/?EIO=4&transport=websocket"
    with connect(url, additional_headers={"X-User-Payload": SPOOFED}) as socket:
        seen = json.loads(socket.recv(timeout=5))
        assert seen["service"] == "chat"
        assert seen["path"] == "/chat/socket.io/"
        assert "x-user-payload" not in seen["headers"]
        assert seen["headers"]["x-forwarded-for"] == ["127.0.0.1"]
        socket.send("2probe")
        assert socket.recv(timeout=5) == "2probe"


def test_socketio_polling_passes_without_the_spoofed_payload(client: httpx.Client) -> None:
    response = client.get(
        "/chat/socket.io/",
        params={"EIO": "4", "transport": "polling"},
        headers={"X-User-Payload": SPOOFED},
    )
    seen = seen_by_upstream(response)
    assert seen["service"] == "chat"
    assert "x-user-payload" not in seen["headers"]


def test_chat_http_routes_are_protected(client: httpx.Client, account: dict[str, Any]) -> None:
    response = client.get("/chat/rooms/room-1/messages", headers=bearer(account["token"]))
    seen = seen_by_upstream(response)
    assert seen["service"] == "chat"
    assert json.loads(seen["headers"]["x-user-payload"][0])["id"] == account["user"]["id"]


def test_access_log_is_json_with_upstream_timing(
    client: httpx.Client, account: dict[str, Any], gateway: Gateway
) -> None:
    request_id = f"log-{uuid.uuid4().hex}"
    client.get(
        "/users/me",
        params={"token": "secret-in-query"},
        headers={**bearer(account["token"]), "X-Request-ID": request_id},
    )
    entry = access_log_entry(gateway, request_id)
    assert entry["status"] == 200
    assert entry["path"] == "/users/me"  # the query string (tokens) is never logged
    assert entry["upstreamAddr"] == gateway.config.upstreams["users"][0]
    assert float(entry["upstreamResponseTime"]) >= 0
    assert entry["authCache"] in ("HIT", "MISS")


def test_auth_service_down_is_a_json_503(
    tmp_path: Path, upstreams: dict[str, list[str]], account: dict[str, Any]
) -> None:
    dead_auth = {**upstreams, "auth": [f"127.0.0.1:{free_port()}"]}
    down = start_gateway(tmp_path, dead_auth)
    try:
        response = httpx.get(f"{down.url}/users/me", headers=bearer(account["token"]))
        assert_error(response, 503, "service_unavailable")
        assert response.headers["retry-after"] == "1"
        assert_error(httpx.post(f"{down.url}/auth/login", json={}), 502, "bad_gateway")
    finally:
        down.stop()


def test_tls_termination(tmp_path: Path, upstreams: dict[str, list[str]]) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    secure = start_gateway(
        tmp_path / "tls", upstreams, tls_certificate=str(cert), tls_certificate_key=str(key)
    )
    try:
        response = httpx.get(f"{secure.url}/users/me", verify=secure.verify)
        assert_error(response, 401, "unauthorized")
        assert response.http_version == "HTTP/1.1"
        plain = httpx.get(secure.url.replace("https", "http") + "/health")
        assert_error(plain, 400, "bad_request")
    finally:
        secure.stop()


async def test_a_burst_from_one_address_is_rate_limited(
    gateway: Gateway, account: dict[str, Any]
) -> None:
    """Last in this module: it spends the address's burst allowance."""
    burst = gateway.config.rate_limit_burst
    limits = httpx.Limits(max_connections=burst * 3)
    async with httpx.AsyncClient(base_url=gateway.url, limits=limits, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.get("/users/me", headers=bearer(account["token"])) for _ in range(burst * 3))
        )
        limited = [r for r in responses if r.status_code == 429]
        assert limited, "no request was rate limited"
        assert all(r.status_code in (200, 429) for r in responses)
        assert_error(limited[0], 429, "rate_limited")
        assert limited[0].headers["retry-after"] == "1"

        async def recovered() -> bool:
            response = await client.get("/users/me", headers=bearer(account["token"]))
            return response.status_code == 200

        for _ in range(100):  # leave the allowance refilled for whatever runs next
            if await recovered():
                break
            await asyncio.sleep(0.1)
