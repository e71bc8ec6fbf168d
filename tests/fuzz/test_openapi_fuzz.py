"""Schemathesis over every service's OpenAPI document, through the test gateway, as a signed-in
user: no input may answer a 5xx, and every answer must be what the document says (`--checks all`:
status code, content type, response schema and headers conform; invalid input is refused). The
documents are the contract clients build on, so a route that drifts from its document fails here.

Each operation gets valid and invalid examples. Bounded and deterministic by default (make test,
CI): SOCIALHUB_FUZZ_EXAMPLES of each per operation (default 8), derandomized, so a run never
flakes and takes about two minutes. Locally, SOCIALHUB_FUZZ_RANDOM=1 draws fresh examples each
run, and more of them search longer, e.g.
`SOCIALHUB_FUZZ_RANDOM=1 SOCIALHUB_FUZZ_EXAMPLES=200 pytest tests/fuzz`.
"""

import base64
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import CHECKS, CheckFunction, load_all_checks
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from devstack.platform import Platform
from socialhub.contracts.topology import SERVICE_NAMES
from socialhub.gateway import api_documents
from tests.support import PASSWORD, unique

EXAMPLES = int(os.environ.get("SOCIALHUB_FUZZ_EXAMPLES", "8"))
RANDOM = os.environ.get("SOCIALHUB_FUZZ_RANDOM", "") not in ("", "0")

load_all_checks()
# `--checks all` but ignored_auth: its probes can only drop credentials schemathesis made, not
# the account's token sent with each request, so they report the authenticated answer as one
# without authentication. tests/test_openapi.py and tests/gateway check that every route needs a
# valid token.
ALL_CHECKS: list[CheckFunction] = [
    check for check in CHECKS.get_all() if not isinstance(check, type) and check is not ignored_auth
]
EMAILS = st.from_regex(r"\A[a-z0-9]{1,20}@example\.com\Z")

# A 1x1 GIF and PNG: uploads are sniffed, so only real images or videos are accepted (415)
MEDIA = st.sampled_from(
    [
        base64.b64decode("R0lGODlhAQABAAAAACwAAAAAAQABAAACAA=="),
        base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgAB"
            "SK+kcQAAAABJRU5ErkJggg=="
        ),
    ]
)

# Formats as the services accept them: a deliverable email (no reserved domain such as `.test`)
schemathesis.openapi.format("email", EMAILS)
schemathesis.openapi.format("binary", MEDIA)


class Account:
    """A fresh account on the gateway, signed in."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.username = unique("fuzz")
        response = client.post(
            "/auth/signup",
            json={
                "name": "Fuzz",
                "email": f"{self.username}@example.com",
                "username": self.username,
                "password": PASSWORD,
            },
        )
        assert response.status_code == 201, response.text
        self.token: str = response.json()["token"]

    def token_for(self, case: Case[Any]) -> str:
        """Logout gets a token of its own, so it never revokes the one the others use."""
        if case.operation.path != "/auth/logout":
            return self.token
        response = self.client.post(
            "/auth/login", json={"identifier": self.username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        fresh: str = response.json()["token"]
        return fresh


@pytest.fixture(scope="module")
def account(running_platform: Platform) -> Iterator[Account]:
    with httpx.Client(base_url=running_platform.gateway_url, timeout=15) as client:
        yield Account(client)


def check(case: Case[Any], account: Account) -> None:
    """Send one example and run every check on the answer."""
    headers = {"Authorization": f"Bearer {account.token_for(case)}"}
    for _ in range(30):
        response = case.call(headers=headers)
        wait = float(response.headers.get("retry-after", ["0"])[0])
        # the gateway's per-IP limit clears within a second or two: wait, so every example is
        # tried; an account's or email's limit (auth) lasts minutes: its 429 is the answer
        if response.status_code != 429 or wait > 2:
            break
        time.sleep(wait)
    excluded: list[CheckFunction] = (
        [positive_data_acceptance] if refused_by_design(response) else []
    )
    case.validate_response(response, checks=ALL_CHECKS, headers=headers, excluded_checks=excluded)


def refused_by_design(response: schemathesis.Response) -> bool:
    """A well-formed value that no generator can make acceptable: one only the API hands out,
    a cursor (`nextCursor`), a reset code (mailed), a DM room id (two different user ids in the
    API's order); or an Idempotency-Key a previous example used for another post (the IETF draft's
    422). Refusing a generated one is right, so it is no valid input rejected."""
    if response.status_code not in (400, 422):
        return False
    error = response.json()["error"]
    return bool(
        error["code"] in ("invalid_cursor", "invalid_reset_code", "idempotency_key_reused")
        or error["message"].startswith(
            ("use the canonical id dm:", "a direct-message room needs two different")
        )
    )


def fuzz(
    operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode, account: Account
) -> str | None:
    """What went wrong with `operation` in `mode`, or None."""

    @settings(
        max_examples=EXAMPLES,
        derandomize=not RANDOM,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=RANDOM,
    )
    @given(case=operation.as_strategy(mode))
    def examples(case: Case[Any]) -> None:
        check(case, account)

    try:
        examples()
    except (AssertionError, BaseExceptionGroup) as failure:  # schemathesis' FailureGroup
        return f"{operation.label} ({mode.value}): {failure}"
    return None


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_operation_keeps_its_contract(
    running_platform: Platform, account: Account, service: str
) -> None:
    api = schemathesis.openapi.from_url(running_platform.gateway_url + api_documents(service)[0])
    api.config.update(base_url=running_platform.gateway_url, request_timeout=15)
    # Text is Unicode: no lone surrogates (JSON escapes allow them, the services refuse them
    # with 422 like the gateway's other rules, and tests/test_bad_input.py sends them); no
    # parameters the document does not name (they are ignored, as HTTP APIs do)
    api.config.generation.update(codec="utf-8", allow_extra_parameters=False)
    # 413 refuses a body over the documented cap (a list of a thousand ids, long enough)
    rejection = api.config.checks.negative_data_rejection
    api.config.checks.negative_data_rejection = type(rejection)(
        expected_statuses=[*rejection.expected_statuses, "413"]
    )
    failures = []
    for result in api.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the document itself must be valid
        failures += [
            found for mode in GenerationMode if (found := fuzz(result.ok(), mode, account))
        ]
    assert not failures, "\n\n".join(failures)
