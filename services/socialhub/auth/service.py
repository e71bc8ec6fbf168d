"""Account flows: signup, login, token checks, logout and password reset.

Redis holds what must be fast or short-lived: revoked token ids (until they would expire
anyway), each user's token version after a reset, one-time reset codes and rate-limit counters.

Without Redis (README: "When Redis is down") signup, login, the token check and `/auth/me` keep
working: the check answers from the token and the local denylist copy (`revocations`), the rate
limits from local counters (`socialhub.kit.ratelimit`). Logout and password reset need Redis and
answer 503 with Retry-After (`socialhub.kit.outages`).
"""

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import Uuid, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from socialhub.auth.mail import Mailer
from socialhub.auth.models import User
from socialhub.auth.passwords import PasswordHasher
from socialhub.auth.revocations import LocalDenylist
from socialhub.auth.schemas import ResetPasswordRequest, SignupRequest
from socialhub.auth.settings import AuthSettings
from socialhub.auth.tokens import InvalidTokenError, TokenClaims, TokenCodec
from socialhub.contracts.events import UserCreated
from socialhub.kit.database import Database
from socialhub.kit.errors import ApiError, conflict, unauthorized
from socialhub.kit.events.outbox import Outbox
from socialhub.kit.outages import REDIS_DOWN, Breaker, degraded
from socialhub.kit.ratelimit import Limit, RateLimiter
from socialhub.kit.sql import Record, Statement

INVALID_CREDENTIALS = "invalid credentials"
INVALID_RESET_CODE = "invalid or expired reset code"
ACCOUNT = Statement(
    select(User.id, User.email, User.username, User.name, User.created_at).where(
        User.id == bindparam("user_id", type_=Uuid)
    )
)
UNIQUE_FIELDS = {"idx_users_email": "email", "idx_users_username": "username"}


@dataclass(frozen=True)
class Limits:
    login_per_ip: Limit
    login_failures_per_account: Limit
    signup_per_ip: Limit
    reset_requests_per_email: Limit

    @classmethod
    def from_settings(cls, s: AuthSettings) -> "Limits":
        return cls(
            login_per_ip=Limit(
                "login_attempts", s.login_limit_per_ip, s.login_limit_per_ip_window_seconds
            ),
            login_failures_per_account=Limit(
                "failed_logins",
                s.login_failures_per_account,
                s.login_failures_per_account_window_seconds,
            ),
            signup_per_ip=Limit(
                "signups", s.signup_limit_per_ip, s.signup_limit_per_ip_window_seconds
            ),
            reset_requests_per_email=Limit(
                "password_reset_requests",
                s.reset_requests_per_email,
                s.reset_requests_per_email_window_seconds,
            ),
        )


class AuthService:
    def __init__(
        self,
        settings: AuthSettings,
        database: Database,
        redis: Redis,
        outbox: Outbox,
        mailer: Mailer,
    ) -> None:
        self.settings = settings
        self.database = database
        self.redis = redis
        self.outbox = outbox
        self.mailer = mailer
        self.tokens = TokenCodec(settings.jwt_secret.get_secret_value(), settings.jwt_ttl_seconds)
        self.passwords = PasswordHasher(settings.bcrypt_rounds)
        self.breaker = Breaker()
        self.limiter = RateLimiter(redis, "auth", self.breaker)
        self.denylist = LocalDenylist(
            redis,
            memory_seconds=settings.revocation_memory_seconds,
            version_ttl_seconds=settings.jwt_ttl_seconds,
        )
        self.limits = Limits.from_settings(settings)
        self._code_key = settings.jwt_secret.get_secret_value().encode()

    async def account(self, user_id: uuid.UUID) -> Record | None:
        """The account a token names (`GET /auth/me`: one statement, no session)."""
        async with self.database.connection() as connection:
            return await ACCOUNT.fetchrow(connection, {"user_id": user_id})

    async def signup(
        self, session: AsyncSession, request: SignupRequest, client_ip: str
    ) -> tuple[User, str]:
        await self.limiter.hit(self.limits.signup_per_ip, client_ip)
        taken = (
            await session.execute(
                select(User.email, User.username).where(
                    or_(User.email == request.email, User.username == request.username)
                )
            )
        ).first()
        if taken is not None:
            raise _taken("email" if taken.email == request.email else "username")
        user = User(
            id=uuid.uuid4(),
            email=request.email,
            username=request.username,
            name=request.name,
            password_hash=await self.passwords.hash(request.password),
            token_version=0,
        )
        session.add(user)
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent signup won the race
            constraint = getattr(getattr(exc.orig, "__cause__", None), "constraint_name", "")
            raise _taken(UNIQUE_FIELDS.get(constraint or "", "username")) from exc
        await session.refresh(user)
        await self.outbox.emit(
            session,
            UserCreated(
                user_id=user.id, username=user.username, name=user.name, created_at=user.created_at
            ),
        )
        return user, self._issue(user)

    async def login(
        self, session: AsyncSession, identifier: str, password: str, client_ip: str
    ) -> tuple[User, str]:
        await self.limiter.hit(self.limits.login_per_ip, client_ip)
        await self.limiter.ensure_below(self.limits.login_failures_per_account, identifier)
        column = User.email if "@" in identifier else User.username
        user = (await session.execute(select(User).where(column == identifier))).scalar()
        if not await self.passwords.verify(password, user.password_hash if user else None):
            await self.limiter.hit(self.limits.login_failures_per_account, identifier)
            raise unauthorized(INVALID_CREDENTIALS)
        assert user is not None
        await self.limiter.reset(self.limits.login_failures_per_account, identifier)
        return user, self._issue(user)

    async def verify(self, token: str) -> TokenClaims:
        """Signature, expiry, logout and password-reset revocation, in one Redis round trip;
        without Redis, from the local denylist copy."""
        try:
            claims = self.tokens.decode(token)
        except InvalidTokenError as exc:
            raise unauthorized(str(exc)) from exc
        try:
            if not self.breaker.closed:
                raise RedisConnectionError("skipped: redis failed moments ago")
            revoked, current_version = await self.redis.mget(
                _revoked_key(claims.token_id), _version_key(claims.user_id)
            )
        except REDIS_DOWN as exc:
            if "skipped:" not in str(exc):
                self.breaker.failed()
            degraded("redis", "token check", exc)
            reason = self.denylist.revoked(claims)
            if reason is not None:
                raise unauthorized(reason) from None
            return claims
        if revoked is not None:
            self.denylist.remember_token(claims.token_id, claims.expires_at)
            raise unauthorized("token revoked")
        if current_version is not None and claims.version < int(current_version):
            self.denylist.remember_version(claims.user_id, int(current_version))
            raise unauthorized("token revoked by a password reset")
        return claims

    async def sync_denylist(self) -> None:
        """Copy new revocations into memory (periodic); quiet while Redis is down."""
        try:
            await self.denylist.sync()
        except REDIS_DOWN as exc:
            degraded("redis", "revocation sync", exc)

    async def logout(self, claims: TokenClaims) -> None:
        remaining = max(claims.expires_at - int(time.time()), 1)
        await self.redis.set(_revoked_key(claims.token_id), "1", ex=remaining)
        await self.denylist.publish_token(claims.token_id, claims.expires_at)

    async def request_reset(self, session: AsyncSession, email: str) -> tuple[str, str] | None:
        """Store a fresh one-time code; returns (email, code) to mail if the account exists."""
        await self.limiter.hit(self.limits.reset_requests_per_email, email)
        # The code lives in Redis: without it, answer 503 for every email alike, so an outage
        # does not tell which addresses have accounts.
        await self.redis.ping()
        exists = (await session.execute(select(User.id).where(User.email == email))).first()
        if exists is None:
            return None
        code = f"{secrets.randbelow(1_000_000):06d}"
        key = _reset_key(email)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"code": self._digest(email, code), "attempts": 0})
            pipe.expire(key, self.settings.reset_code_ttl_seconds)
            await pipe.execute()
        return email, code

    async def send_reset_code(self, email: str, code: str) -> None:
        minutes = self.settings.reset_code_ttl_seconds // 60
        await self.mailer.send(
            email,
            "Your SocialHub password reset code",
            f"Your password reset code is {code}.\nIt expires in {minutes} minutes and works "
            "once. If you did not ask for it, ignore this message.\n",
        )

    async def reset_password(self, session: AsyncSession, request: ResetPasswordRequest) -> None:
        key = _reset_key(request.email)
        attempts = await self.redis.hincrby(key, "attempts", 1)
        stored = await self.redis.hget(key, "code")
        if stored is None:
            await self.redis.delete(key)  # HINCRBY created a stray hash: no code was issued
            raise ApiError(400, "invalid_reset_code", INVALID_RESET_CODE)
        if attempts > self.settings.reset_code_max_attempts:
            await self.redis.delete(key)
            raise ApiError(400, "invalid_reset_code", INVALID_RESET_CODE)
        if not hmac.compare_digest(str(stored), self._digest(request.email, request.code)):
            raise ApiError(
                400, "invalid_reset_code", INVALID_RESET_CODE, fields={"code": "does not match"}
            )
        if not await self.redis.delete(key):  # used concurrently: single use
            raise ApiError(400, "invalid_reset_code", INVALID_RESET_CODE)
        new_hash = await self.passwords.hash(request.new_password)
        row = (
            await session.execute(
                update(User)
                .where(User.email == request.email)
                .values(password_hash=new_hash, token_version=User.token_version + 1)
                .returning(User.id, User.token_version)
            )
        ).one()
        await self.redis.set(
            _version_key(row.id), row.token_version, ex=self.settings.jwt_ttl_seconds
        )
        await self.denylist.publish_version(row.id, row.token_version)

    def _issue(self, user: User) -> str:
        return self.tokens.issue(user.id, user.username, user.token_version)

    def _digest(self, email: str, code: str) -> str:
        return hmac.new(self._code_key, f"{email}:{code}".encode(), hashlib.sha256).hexdigest()


def _taken(field: str) -> ApiError:
    return conflict(f"that {field} is already registered", **{field: "already taken"})


def _reset_key(email: str) -> str:
    return f"auth:reset:{email}"


def _revoked_key(token_id: str) -> str:
    return f"auth:revoked:{token_id}"


def _version_key(user_id: uuid.UUID) -> str:
    return f"auth:token-version:{user_id}"
