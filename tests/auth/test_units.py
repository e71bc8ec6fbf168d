"""Pure logic of the auth service: token codec and input rules (no servers)."""

import uuid

import pytest
from pydantic import ValidationError

from socialhub.auth.schemas import SignupRequest
from socialhub.auth.tokens import InvalidTokenError, TokenCodec

SECRET = "unit-test-secret-that-is-long-enough-0000"


def test_codec_round_trip_and_expiry() -> None:
    codec = TokenCodec(SECRET, ttl_seconds=60)
    user_id = uuid.uuid4()
    claims = codec.decode(codec.issue(user_id, "alice", 3))
    assert (claims.user_id, claims.username, claims.version) == (user_id, "alice", 3)
    assert claims.expires_at - claims.issued_at == 60
    stale = codec.issue(user_id, "alice", 0, now=1_000_000)
    with pytest.raises(InvalidTokenError, match="expired"):
        codec.decode(stale)


def test_codec_refuses_another_secret() -> None:
    token = TokenCodec(SECRET, 60).issue(uuid.uuid4(), "alice", 0)
    with pytest.raises(InvalidTokenError):
        TokenCodec(SECRET + "x", 60).decode(token)


def test_usernames_are_normalised_to_lowercase() -> None:
    request = SignupRequest(
        name=" Ann ", email="Ann@Example.COM", username="Ann_1", password="Secret123"
    )
    assert (request.username, request.email, request.name) == ("ann_1", "ann@example.com", "Ann")


@pytest.mark.parametrize("password", ["", "1234567", "abcdefgh", "12345678", "é" * 37 + "1"])
def test_weak_or_oversized_passwords_are_refused(password: str) -> None:
    with pytest.raises(ValidationError):
        SignupRequest(name="A", email="a@example.com", username="abc", password=password)
