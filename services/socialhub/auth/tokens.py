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
    """Issues and verifies tokens; a verified token is remembered (`VERIFIED_CACHE_SIZE`), since
    verifying one costs more CPU than the rest of a token check (PyJWT, about 0.3 ms)."""

    VERIFIED_CACHE_SIZE = 10_000

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        # The exact token string, signature included, maps to its claims: another string never
        # hits. Oldest first out; an expired entry is dropped when next asked for.
        self._verified: dict[str, TokenClaims] = {}

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
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at > time.time():
                return known
            del self._verified[token]
            raise InvalidTokenError("token expired")
        claims = self._verify(token)
        if len(self._verified) >= self.VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> TokenClaims:
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
