"""The OpenAPI documents describe the answers the services really give, errors included.

Every error is the kit's envelope (`socialhub.kit.errors`). A route names the errors its own
code answers, `responses=errors(404, (409, "that username is taken"))`; `describe` adds to every
operation those that come from the kit or the gateway rather than from the route:

- 422 where there is documented input to validate, and 400 where a JSON body may not parse, in
  place of FastAPI's own validation schema, which the kit never sends;
- 413 where there is a request body (the gateway's and the kit's body caps);
- 401 where the route needs the verified caller (`CurrentUser`) or checks a bearer token itself,
  with the bearer scheme, which the gateway checks;
- 429 everywhere: the gateway rate-limits every route.
"""

from collections.abc import Callable, Iterator
from typing import Any, get_args

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field

from socialhub.kit.identity import CurrentUser

Responses = dict[int | str, dict[str, Any]]

BEARER = "HTTPBearer"  # the name FastAPI's HTTPBearer gives the scheme (the auth service's own)
# Dependencies that identify the caller: an operation using one answers 401 without a token.
_CALLERS: set[Any] = {get_args(CurrentUser)[1].dependency}


def identifies_caller(dependency: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a dependency as the caller's identity check (the auth service's own token check):
    its operations are documented with the bearer scheme and a 401."""
    _CALLERS.add(dependency)
    return dependency


_REF = "#/components/schemas/{model}"

_WHY = {
    400: "bad request: the message says what is wrong",
    401: "missing, invalid, expired or revoked bearer token (`WWW-Authenticate: Bearer`)",
    403: "not allowed to the caller",
    404: "not found, or not visible to the caller",
    409: "conflicts with the current state",
    413: "request body too large",
    415: "unsupported content type",
    422: "invalid input: `fields` names each offending field",
    429: "too many requests: `Retry-After` says when to retry",
}
_NOT_JSON = "the body is not valid JSON (`invalid_json`)"


class ErrorDetail(BaseModel):
    status: int = Field(description="the HTTP status again")
    code: str = Field(description="stable and machine-readable, e.g. `not_found`")
    message: str = Field(description="for people")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="the offending input fields, each with what is wrong (absent when none)",
    )


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer of every service and of the gateway."""

    error: ErrorDetail
    request_id: str = Field(
        alias="requestId", description="also in the `X-Request-ID` response header"
    )


def errors(*answers: int | tuple[int, str]) -> Responses:
    """`responses=` for a route: each status answers the envelope; `(status, why)` says when."""
    documented: Responses = {}
    for answer in answers:
        status, why = answer if isinstance(answer, tuple) else (answer, _WHY[answer])
        documented[status] = {"model": ErrorResponse, "description": why}
    return documented


def describe(app: FastAPI) -> None:
    """`app.openapi()` adds the errors every route shares (see the module's docstring)."""
    generate = app.openapi  # FastAPI's: cached until the routes change
    described: list[dict[str, Any]] = []

    def document() -> dict[str, Any]:
        schema = generate()
        if not any(schema is done for done in described):
            _add_shared_errors(schema, app)
            described[:] = [schema]
        return schema

    app.openapi = document  # type: ignore[method-assign]


def _add_shared_errors(schema: dict[str, Any], app: FastAPI) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for fastapis_own in ("HTTPValidationError", "ValidationError"):
        schemas.pop(fastapis_own, None)
    envelope = ErrorResponse.model_json_schema(ref_template=_REF, mode="serialization")
    schemas.update(envelope.pop("$defs"), ErrorResponse=envelope)
    for route in iter_route_contexts(app.routes):
        if not (isinstance(route.original_route, APIRoute) and route.include_in_schema):
            continue
        for method in route.methods or ():
            operation = schema["paths"][route.path_format][method.lower()]
            if _CALLERS.intersection(_calls(route.dependant)):
                operation.setdefault("security", [{BEARER: []}])
                components.setdefault("securitySchemes", {})[BEARER] = {
                    "type": "http",
                    "scheme": "bearer",
                }
            operation["responses"] = _shared(operation)


def _shared(operation: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = operation["responses"]
    if _schema_name(responses.get("422")) == "HTTPValidationError":
        del responses["422"]
    body = operation.get("requestBody", {}).get("content", {})
    shared = {429: _WHY[429]}
    if operation.get("parameters") or body:
        shared[422] = _WHY[422]
    if body:
        shared[413] = _WHY[413]
    if "application/json" in body:
        shared[400] = _NOT_JSON
    if "security" in operation:
        shared[401] = _WHY[401]
    for status, why in shared.items():
        given = responses.get(str(status))
        if given is None:
            responses[str(status)] = {
                "description": why,
                "content": {
                    "application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}
                },
            }
        elif status == 400:
            given["description"] = f"{given['description']}; or {_NOT_JSON}"
    return dict(sorted(responses.items()))


def _schema_name(response: dict[str, Any] | None) -> str:
    ref = (response or {}).get("content", {}).get("application/json", {}).get("schema", {})
    return str(ref.get("$ref", "")).rsplit("/", 1)[-1]


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def something_to_change(*not_null: str) -> Callable[[dict[str, Any]], None]:
    """`json_schema_extra` for a PATCH body that must change something: at least one field,
    and `not_null` (by alias) may be left out but not sent as null."""

    def document(schema: dict[str, Any]) -> None:
        schema["minProperties"] = 1
        for name in not_null:
            field = schema["properties"][name]
            field["anyOf"] = [kind for kind in field["anyOf"] if kind != {"type": "null"}]

    return document
