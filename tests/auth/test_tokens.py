"""The gateway's token check: what it accepts, what it refuses, and revocation."""

import base64
import json
import time
import uuid

import httpx
import jwt

from socialhub.auth.settings import AuthSettings
from tests.auth.helpers import bearer, signup
from tests.support import PASSWORD

VERIFY = "/api/v1/auth/verify-user"


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return decoded


def _unsigned(claims: dict[str, object]) -> str:
    """An `alg: none` token: the classic forgery a verifier must refuse."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_token_is_hs256_for_24_hours_with_the_documented_claims(
    auth: httpx.AsyncClient,
) -> None:
    result = await signup(auth)
    token = result["token"]
    header = jwt.get_unverified_header(token)
    claims = _claims(token)
    assert header["alg"] == "HS256"
    assert {"sub", "username", "iat", "exp", "jti"} <= set(claims)
    assert claims["sub"] == result["user"]["id"]
    assert claims["username"] == result["user"]["username"]
    assert claims["exp"] - claims["iat"] == 24 * 3600  # type: ignore[operator]


async def test_verify_answers_the_user_payload_header(auth: httpx.AsyncClient) -> None:
    result = await signup(auth)
    response = await auth.get(VERIFY, headers=bearer(result["token"]))
    assert response.status_code == 200
    payload = json.loads(response.headers["x-user-payload"])
    assert payload == {"id": result["user"]["id"], "username": result["user"]["username"]}


async def test_missing_and_malformed_tokens_are_401(auth: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        bearer("not.a.jwt"),
        bearer(""),
    ):
        response = await auth.get(VERIFY, headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "unauthorized"
        assert "x-user-payload" not in response.headers


async def test_forged_expired_and_foreign_algorithm_tokens_are_refused(
    auth: httpx.AsyncClient, auth_settings: AuthSettings
) -> None:
    secret = auth_settings.jwt_secret.get_secret_value()
    now = int(time.time())
    base = {
        "sub": str(uuid.uuid4()),
        "username": "mallory",
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "ver": 0,
    }
    forged = jwt.encode(base, "some-other-secret-of-enough-length-000000", algorithm="HS256")
    expired = jwt.encode({**base, "iat": now - 7200, "exp": now - 3600}, secret, algorithm="HS256")
    hs512 = jwt.encode(base, secret, algorithm="HS512")
    unsigned = _unsigned(base)
    missing_jti = jwt.encode(
        {k: v for k, v in base.items() if k != "jti"}, secret, algorithm="HS256"
    )
    valid = jwt.encode(base, secret, algorithm="HS256")
    for token in (forged, expired, hs512, unsigned, missing_jti):
        assert (await auth.get(VERIFY, headers=bearer(token))).status_code == 401
    expired_answer = await auth.get(VERIFY, headers=bearer(expired))
    assert expired_answer.json()["error"]["message"] == "token expired"
    # The same claims correctly signed pass, so the refusals above are about the token.
    assert (await auth.get(VERIFY, headers=bearer(valid))).status_code == 200


async def test_logout_revokes_only_that_token(auth: httpx.AsyncClient) -> None:
    result = await signup(auth)
    other = await auth.post(
        "/auth/login", json={"identifier": result["user"]["username"], "password": PASSWORD}
    )
    assert (await auth.post("/auth/logout", headers=bearer(result["token"]))).status_code == 204
    revoked = await auth.get(VERIFY, headers=bearer(result["token"]))
    assert revoked.status_code == 401
    assert revoked.json()["error"]["message"] == "token revoked"
    assert (await auth.get("/auth/me", headers=bearer(result["token"]))).status_code == 401
    assert (await auth.get(VERIFY, headers=bearer(other.json()["token"]))).status_code == 200
