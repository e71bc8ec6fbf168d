"""A local copy of the token denylist, so the token check keeps working while Redis is down.

Redis stays the truth: `auth:revoked:<jti>` (logout) and `auth:token-version:<user>` (password
reset), read with one MGET per check. Every revocation is also appended to the stream
`auth:revocations` (trimmed to `revocation_memory_seconds`), and each auth instance reads that
stream every `revocation_sync_seconds` into memory, together with the revocations it writes or
reads itself. An entry stays in memory until the token it revokes would have expired anyway
(bounded to `LOCAL_MAX_ENTRIES`, oldest dropped first).

While Redis is unreachable the check answers from the signature, the expiry and this copy: a
token revoked before the outage is still refused if this instance saw the revocation (written,
read, or in the stream's window when the instance started); one revoked through another instance
during the outage cannot be, because logout and reset need Redis and answer 503 then.
"""

import logging
import time
import uuid
from collections import OrderedDict

from redis.asyncio import Redis

from socialhub.auth.tokens import TokenClaims

log = logging.getLogger(__name__)

STREAM = "auth:revocations"
LOCAL_MAX_ENTRIES = 200_000
SYNC_BATCH = 1000


class LocalDenylist:
    def __init__(self, redis: Redis, *, memory_seconds: int, version_ttl_seconds: int) -> None:
        self.redis = redis
        self.memory_seconds = memory_seconds
        self.version_ttl_seconds = version_ttl_seconds
        # jti -> expiry (epoch s); user id -> (minimum valid version, expiry)
        self._tokens: OrderedDict[str, float] = OrderedDict()
        self._versions: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._last_id: str | None = None

    # -- what this instance knows -----------------------------------------------------------

    def revoked(self, claims: TokenClaims) -> str | None:
        """Why the local copy refuses these claims, or None."""
        now = time.time()
        expires = self._tokens.get(claims.token_id)
        if expires is not None and expires > now:
            return "token revoked"
        version = self._versions.get(str(claims.user_id))
        if version is not None and version[1] > now and claims.version < version[0]:
            return "token revoked by a password reset"
        return None

    def remember_token(self, token_id: str, expires_at: float) -> None:
        self._tokens[token_id] = expires_at
        self._tokens.move_to_end(token_id)
        self._bound()

    def remember_version(
        self, user_id: uuid.UUID | str, version: int, expires_at: float | None = None
    ) -> None:
        key = str(user_id)
        current = self._versions.get(key)
        if current is None or current[0] <= version:
            self._versions[key] = (version, expires_at or time.time() + self.version_ttl_seconds)
            self._versions.move_to_end(key)
        self._bound()

    def __len__(self) -> int:
        return len(self._tokens) + len(self._versions)

    # -- the shared stream ------------------------------------------------------------------

    async def publish_token(self, token_id: str, expires_at: float) -> None:
        self.remember_token(token_id, expires_at)
        await self._append({"kind": "token", "id": token_id, "exp": str(int(expires_at))})

    async def publish_version(self, user_id: uuid.UUID, version: int) -> None:
        expires = time.time() + self.version_ttl_seconds
        self.remember_version(user_id, version, expires)
        await self._append(
            {
                "kind": "version",
                "id": str(user_id),
                "version": str(version),
                "exp": str(int(expires)),
            }
        )

    async def _append(self, fields: dict[str, str]) -> None:
        oldest_ms = int((time.time() - self.memory_seconds) * 1000)
        await self.redis.xadd(
            STREAM,
            fields,  # type: ignore[arg-type]
            minid=str(oldest_ms),
            approximate=True,
        )

    async def sync(self) -> int:
        """Read the stream's new entries (on the first run, its whole window); their count."""
        start = (
            f"({self._last_id}"
            if self._last_id
            else str(int((time.time() - self.memory_seconds) * 1000))
        )
        seen = 0
        while True:
            entries = await self.redis.xrange(STREAM, min=start, count=SYNC_BATCH) or []
            for entry_id, fields in entries:
                self._apply({str(k): str(v) for k, v in (fields or {}).items()})
                self._last_id = str(entry_id)
            seen += len(entries)
            if len(entries) < SYNC_BATCH:
                return seen
            start = f"({self._last_id}"

    def _apply(self, fields: dict[str, str]) -> None:
        try:
            if fields.get("kind") == "token":
                self.remember_token(fields["id"], float(fields["exp"]))
            elif fields.get("kind") == "version":
                self.remember_version(fields["id"], int(fields["version"]), float(fields["exp"]))
        except (KeyError, ValueError):
            log.warning("ignoring a malformed revocation entry: %r", fields)

    def _bound(self) -> None:
        now = time.time()
        for table in (self._tokens, self._versions):
            while len(table) > LOCAL_MAX_ENTRIES:
                table.popitem(last=False)
            # drop expired entries from the old end, a few at a time
            for _ in range(8):
                if not table:
                    break
                key = next(iter(table))
                value = table[key]
                expires = value[1] if isinstance(value, tuple) else value
                if expires > now:
                    break
                del table[key]
