"""Liveness (`/health`: the process answers) and readiness (`/ready`: its stores answer)."""

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[object]]
CHECK_TIMEOUT_SECONDS = 2.0

router = APIRouter(include_in_schema=False)


@router.get("/health")
async def health(request: Request) -> dict[str, str]:
    return {"status": "ok", "service": request.app.state.service}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    checks: dict[str, Check] = request.app.state.readiness_checks
    names = list(checks)
    results = await asyncio.gather(
        *(asyncio.wait_for(checks[name](), CHECK_TIMEOUT_SECONDS) for name in names),
        return_exceptions=True,
    )
    report = {
        name: "ok" if not isinstance(result, BaseException) else f"failed: {result!r}"
        for name, result in zip(names, results, strict=True)
    }
    ok = all(value == "ok" for value in report.values())
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": report}, status_code=200 if ok else 503
    )
