"""bcrypt hashing, always in a worker thread: one check costs ~70 ms of CPU at cost 10."""

import asyncio

import bcrypt


class PasswordHasher:
    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        # Compared against when an account does not exist, so a miss costs as long as a hit.
        self._decoy = bcrypt.hashpw(b"decoy-password", bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        hashed = await asyncio.to_thread(
            bcrypt.hashpw, password.encode(), bcrypt.gensalt(self.rounds)
        )
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        target = hashed.encode() if hashed else self._decoy
        matches = await asyncio.to_thread(bcrypt.checkpw, password.encode(), target)
        return matches and hashed is not None
