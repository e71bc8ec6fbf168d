from typing import Any

import httpx

from tests.support import PASSWORD, unique


async def signup(client: httpx.AsyncClient, **fields: str) -> dict[str, Any]:
    username = fields.pop("username", unique())
    body = {
        "name": "Test User",
        "email": f"{username}@example.com",
        "username": username,
        "password": PASSWORD,
        **fields,
    }
    response = await client.post("/auth/signup", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
