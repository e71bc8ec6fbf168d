"""JWTs: HS256 only, 24 h by default, revocable by id (`jti`) and by a password reset (`ver`)."""

import time
import uuid
from dataclasses import dataclass

import jwt

from socialhub.kit.identity import Principal

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "username", "iat", "exp", "jti", "ver")


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    username: str
    issued_at: int
    expires_at: int
    token_id: str
    version: int

    @property
    def principal(self) -> Principal:
        return Principal(id=self.user_id, username=self.username)


class InvalidTokenError(Exception):
    pass


class TokenCodec:
    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(
        self, user_id: uuid.UUID, username: str, version: int, *, now: float | None = None
    ) -> str:
        issued = int(now if now is not None else time.time())
        return jwt.encode(
            {
                "sub": str(user_id),
                "username": username,
                "iat": issued,
                "exp": issued + self.ttl_seconds,
                "jti": uuid.uuid4().hex,
                "ver": version,
            },
            self._secret,
            algorithm=ALGORITHM,
        )

    def decode(self, token: str) -> TokenClaims:
        """Verify signature, algorithm and expiry; raises InvalidTokenError with the reason."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": list(REQUIRED_CLAIMS)},
            )
            return TokenClaims(
                user_id=uuid.UUID(claims["sub"]),
                username=str(claims["username"]),
                issued_at=int(claims["iat"]),
                expires_at=int(claims["exp"]),
                token_id=str(claims["jti"]),
                version=int(claims["ver"]),
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidTokenError("token expired") from exc
        except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
            raise InvalidTokenError("invalid token") from exc
