"""The auth API. Paths are the design document's public contract."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response, status

from socialhub.auth.schemas import (
    AuthResponse,
    ForgotPasswordRequest,
    LoginRequest,
    Message,
    ResetPasswordRequest,
    SignupRequest,
    UserOut,
    VerifiedUser,
)
from socialhub.auth.service import AuthService
from socialhub.auth.tokens import TokenClaims
from socialhub.kit.database import SessionDep
from socialhub.kit.errors import not_found, unauthorized
from socialhub.kit.identity import USER_PAYLOAD_HEADER
from socialhub.kit.openapi import errors, identifies_caller
from socialhub.kit.responses import json_model

router = APIRouter(tags=["auth"])


async def _service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service


Auth = Annotated[AuthService, Depends(_service)]


@identifies_caller
async def _claims(request: Request) -> TokenClaims:
    """The bearer token's claims; one dependency, reading the header itself, because this runs
    on every token check the gateway makes (a nested dependency costs ~0.1 ms of CPU)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("missing bearer token")
    auth: AuthService = request.app.state.auth
    return await auth.verify(token)


Claims = Annotated[TokenClaims, Depends(_claims)]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/auth/signup",
    status_code=status.HTTP_201_CREATED,
    response_model=AuthResponse,
    responses=errors(
        (409, "that email or username is already registered"),
        (429, "too many signups from this address, or requests"),
    ),
)
async def signup(
    body: SignupRequest, request: Request, session: SessionDep, auth: Auth
) -> AuthResponse:
    user, token = await auth.signup(session, body, _client_ip(request))
    return AuthResponse(token=token, user=UserOut.model_validate(user))


@router.post(
    "/auth/login",
    response_model=AuthResponse,
    responses=errors(
        (401, "wrong identifier or password"),
        (429, "too many attempts from this address or on this account, or requests"),
    ),
)
async def login(
    body: LoginRequest, request: Request, session: SessionDep, auth: Auth
) -> AuthResponse:
    user, token = await auth.login(session, body.identifier, body.password, _client_ip(request))
    return AuthResponse(token=token, user=UserOut.model_validate(user))


@router.get("/api/v1/auth/verify-user", response_model=VerifiedUser, include_in_schema=False)
async def verify_user(claims: Claims) -> Response:
    """The gateway's token check: 200 with `x-user-payload`, or 401."""
    answer = json_model(VerifiedUser(id=claims.user_id, username=claims.username))
    answer.headers[USER_PAYLOAD_HEADER] = claims.principal.header_value()
    return answer


@router.get(
    "/auth/me",
    response_model=UserOut,
    responses=errors((404, "the token's account no longer exists")),
)
async def me(claims: Claims, auth: Auth) -> Response:
    account = await auth.account(claims.user_id)
    if account is None:
        raise not_found("user")
    return json_model(UserOut.model_validate(dict(account)))


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(claims: Claims, auth: Auth) -> None:
    await auth.logout(claims)


@router.post(
    "/auth/password/forgot",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Message,
    responses=errors((429, "too many reset requests for this email, or requests")),
)
async def forgot_password(
    body: ForgotPasswordRequest, session: SessionDep, auth: Auth, background: BackgroundTasks
) -> Message:
    """Always 202, whether or not the account exists; the mail goes out after the response."""
    issued = await auth.request_reset(session, body.email)
    if issued is not None:
        background.add_task(auth.send_reset_code, *issued)
    return Message(message="if that email is registered, a reset code has been sent")


@router.post(
    "/auth/password/reset",
    response_model=Message,
    responses=errors((400, "the reset code is wrong, expired or used up (`invalid_reset_code`)")),
)
async def reset_password(body: ResetPasswordRequest, session: SessionDep, auth: Auth) -> Message:
    await auth.reset_password(session, body)
    return Message(message="password updated; sign in again with the new password")
