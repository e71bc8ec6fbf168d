"""Request and response bodies of the auth API, with the input rules."""

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from pydantic.alias_generators import to_camel

from socialhub.kit.inputs import MULTILINE, NONBLANK_LINE

USERNAME_PATTERN = re.compile(r"^[a-z0-9_]{3,30}$")
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_BYTES = 72  # bcrypt ignores (bcrypt>=5: refuses) anything longer


def _normalise_username(value: str) -> str:
    value = value.strip().lower()
    if not USERNAME_PATTERN.fullmatch(value):
        raise ValueError("must be 3-30 characters of a-z, 0-9 and _")
    return value


def _check_password_strength(value: str) -> str:
    if len(value) < PASSWORD_MIN_LENGTH:
        raise ValueError(f"must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(value.encode()) > PASSWORD_MAX_BYTES:
        raise ValueError(f"must be at most {PASSWORD_MAX_BYTES} bytes")
    if not re.search(r"[A-Za-z]", value) or not re.search(r"\d", value):
        raise ValueError("must contain at least one letter and one digit")
    return value


def _lower(value: str) -> str:
    return value.lower()


# The rules in the OpenAPI documents too (canonical forms: usernames are also accepted with
# capitals and surrounding spaces, passwords with any printable character)
Username = Annotated[
    str,
    AfterValidator(_normalise_username),
    Field(json_schema_extra={"pattern": USERNAME_PATTERN.pattern}),
]
_PRINTABLE = r"[\x20-\x7e]"
Password = Annotated[
    str,
    MULTILINE,
    AfterValidator(_check_password_strength),
    Field(
        description=f"{PASSWORD_MIN_LENGTH} or more characters, at most "
        f"{PASSWORD_MAX_BYTES} bytes, with at least one letter and one digit",
        json_schema_extra={
            "minLength": PASSWORD_MIN_LENGTH,
            "maxLength": PASSWORD_MAX_BYTES,
            "pattern": f"^{_PRINTABLE}*([A-Za-z]{_PRINTABLE}*[0-9]|[0-9]{_PRINTABLE}*[A-Za-z])"
            f"{_PRINTABLE}*$",
        },
    ),
]
Email = Annotated[EmailStr, Field(max_length=254), AfterValidator(_lower)]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NONBLANK_LINE
]


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SignupRequest(ApiModel):
    name: Name
    email: Email
    username: Username
    password: Password


class LoginRequest(ApiModel):
    identifier: Annotated[
        str,
        StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=254),
        NONBLANK_LINE,
    ]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024), MULTILINE]


class ForgotPasswordRequest(ApiModel):
    email: Email


class ResetPasswordRequest(ApiModel):
    email: Email
    code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
    new_password: Password


class UserOut(ApiModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    username: str
    name: str
    created_at: datetime


class AuthResponse(ApiModel):
    token: str
    user: UserOut


class VerifiedUser(ApiModel):
    id: uuid.UUID
    username: str


class Message(ApiModel):
    message: str
