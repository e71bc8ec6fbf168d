"""Locust: logins and token checks through the gateway, next to the design document's numbers.

- `LoginUser`: `POST /auth/login`, one bcrypt cost-10 check per request. Compare with the bcrypt
  ceiling of the same cores (`bcrypt_ceiling.py`; `make bench` prints login as a share of it,
  goal: at least 90%).
- `VerifyUser`: a protected GET (BENCH_VERIFY_PATH, default `/users/me`): the gateway's
  `auth_request` token check (answers cached for a few seconds, see
  services/socialhub/gateway/README.md) plus the users service answering.
- `MeUser`: `GET /auth/me`, the auth service checking the token itself (JWT, Redis, one SELECT):
  every token check's cost without the gateway's cache.

    locust -f loadtests/auth.py --host http://127.0.0.1:18080 --headless -u 64 -r 64 -t 60s \\
        VerifyUser
"""

import os

from common import AccountPool, SignedInUser, Target, report_against
from locust import task

VERIFY_PATH = os.environ.get("BENCH_VERIFY_PATH", "/users/me")

report_against(
    {
        "login": Target(p95_ms=150, per_second=500),
        "token check": Target(p95_ms=5, per_second=5000),
        "auth/me": Target(p95_ms=5, per_second=5000),
    }
)


class _AuthUser(SignedInUser):
    abstract = True
    accounts = AccountPool("bench", 50)


class LoginUser(_AuthUser):
    @task
    def login_again(self) -> None:
        self.login("login")


class VerifyUser(_AuthUser):
    @task
    def token_check(self) -> None:
        self.expect("GET", VERIFY_PATH, "token check")


class MeUser(_AuthUser):
    @task
    def me(self) -> None:
        self.expect("GET", "/auth/me", "auth/me")
