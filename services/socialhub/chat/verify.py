"""The token check at connect, done by the auth service (design document: "validates JWT with
Auth Service"), so revocation (logout, password reset) takes effect for new connections at once.

No local cache: a connect costs one keep-alive HTTP request to the auth service (~1-2 ms), and a
cache would keep a revoked token usable for its lifetime.
"""

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import httpx

from socialhub.kit.identity import USER_PAYLOAD_HEADER, Principal, parse_user_payload

VERIFY_PATH = "/api/v1/auth/verify-user"
TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{1,4096}")


class TokenRejectedError(Exception):
    """The token is missing, malformed, forged, expired or revoked."""


class AuthUnavailableError(Exception):
    """The auth service could not give an answer."""


def token_from(environ: Mapping[str, Any], auth: object) -> str:
    """The bearer token from the `auth` payload, the Authorization header or `?token=`."""
    candidates: list[object] = []
    if isinstance(auth, dict):
        candidates.append(auth.get("token"))
    candidates.append(environ.get("HTTP_AUTHORIZATION"))
    candidates.extend(parse_qs(environ.get("QUERY_STRING", "")).get("token", [])[:1])
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            token = candidate.strip()
            if token[:7].lower() == "bearer ":
                token = token[7:].strip()
            if not TOKEN.fullmatch(token):
                raise TokenRejectedError("malformed token")
            return token
    raise TokenRejectedError(
        "missing token: send it in the auth payload {token}, an "
        "Authorization: Bearer header or the token query parameter"
    )


class TokenVerifier:
    def __init__(self, auth_service_url: str, timeout_seconds: float) -> None:
        # A small pool: httpcore scans every pooled connection for each request, which costs
        # more than queueing for one of a few (a check takes a few milliseconds).
        self._client = httpx.AsyncClient(
            base_url=auth_service_url,
            timeout=timeout_seconds,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        )

    async def verify(self, token: str) -> Principal:
        try:
            response = await self._client.get(
                VERIFY_PATH, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            raise AuthUnavailableError(str(exc) or type(exc).__name__) from exc
        if response.status_code == 401:
            raise TokenRejectedError(_reason(response))
        if response.status_code != 200:
            raise AuthUnavailableError(f"auth service answered {response.status_code}")
        principal = parse_user_payload(response.headers.get(USER_PAYLOAD_HEADER))
        if principal is None:
            raise AuthUnavailableError("auth service sent no user")
        return principal

    async def aclose(self) -> None:
        await self._client.aclose()


def _reason(response: httpx.Response) -> str:
    """The auth service's own words (token expired, revoked, ...), from its error envelope."""
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return "invalid, expired or revoked token"
    return str(message)
