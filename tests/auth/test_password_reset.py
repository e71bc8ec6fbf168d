"""Password reset by one-time code, delivered through the real SMTP sink."""

import asyncio
import re

import httpx

from devstack.servers.mailsink import MailSink
from tests.auth.helpers import bearer, signup
from tests.support import PASSWORD

NEW_PASSWORD = "EvenBetter456?"


async def _mailed_code(mailsink: MailSink, email: str, seen: int = 0) -> str:
    """The reset code in the (seen+1)-th message to `email`."""
    async with asyncio.timeout(10):
        while True:
            mails = [m for m in mailsink.messages() if m["To"] == email]
            if len(mails) > seen:
                body = mails[seen].get_payload(decode=True)
                assert isinstance(body, bytes)
                match = re.search(r"code is (\d{6})", body.decode())
                assert match, body
                return match.group(1)
            await asyncio.sleep(0.05)


async def _forgot(auth: httpx.AsyncClient, email: str) -> httpx.Response:
    return await auth.post("/auth/password/forgot", json={"email": email})


async def _reset(
    auth: httpx.AsyncClient, email: str, code: str, password: str = NEW_PASSWORD
) -> httpx.Response:
    return await auth.post(
        "/auth/password/reset", json={"email": email, "code": code, "newPassword": password}
    )


async def test_reset_flow_changes_the_password_and_revokes_old_tokens(
    auth: httpx.AsyncClient, mailsink: MailSink
) -> None:
    account = await signup(auth)
    email, old_token = account["user"]["email"], account["token"]
    assert (await _forgot(auth, email)).status_code == 202
    code = await _mailed_code(mailsink, email)

    response = await _reset(auth, email, code)
    assert response.status_code == 200, response.text

    assert (await auth.get("/auth/me", headers=bearer(old_token))).status_code == 401
    old = await auth.post("/auth/login", json={"identifier": email, "password": PASSWORD})
    assert old.status_code == 401
    new = await auth.post("/auth/login", json={"identifier": email, "password": NEW_PASSWORD})
    assert new.status_code == 200
    assert (await auth.get("/auth/me", headers=bearer(new.json()["token"]))).status_code == 200
    # single use
    assert (await _reset(auth, email, code, "Another789!")).status_code == 400


async def test_unknown_email_gets_the_same_202_and_no_mail(
    auth: httpx.AsyncClient, mailsink: MailSink
) -> None:
    email = "nobody-" + (await signup(auth))["user"]["email"]
    response = await _forgot(auth, email)
    assert response.status_code == 202
    known = await _forgot(auth, (await signup(auth))["user"]["email"])
    assert response.json() == known.json()
    await asyncio.sleep(0.5)
    assert not [m for m in mailsink.messages() if m["To"] == email]


async def test_wrong_codes_are_refused_and_the_code_dies_after_five_attempts(
    auth: httpx.AsyncClient, mailsink: MailSink
) -> None:
    email = (await signup(auth))["user"]["email"]
    await _forgot(auth, email)
    code = await _mailed_code(mailsink, email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        answer = await _reset(auth, email, wrong)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_reset_code"
    # the fifth attempt is still allowed, and it is right
    assert (await _reset(auth, email, code)).status_code == 200

    await _forgot(auth, email)
    code = await _mailed_code(mailsink, email, seen=1)
    for _ in range(5):
        await _reset(auth, email, wrong, "Another789!")
    assert (await _reset(auth, email, code, "Another789!")).status_code == 400


async def test_reset_input_is_validated(auth: httpx.AsyncClient) -> None:
    response = await auth.post(
        "/auth/password/reset",
        json={"email": "a@example.com", "code": "12ab", "newPassword": "weak"},
    )
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"code", "newPassword"}
    no_code = await _reset(auth, (await signup(auth))["user"]["email"], "123456")
    assert no_code.status_code == 400
