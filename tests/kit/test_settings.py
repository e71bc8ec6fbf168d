"""Secrets: placeholders are fine in development and refused everywhere else."""

import pytest
from pydantic import ValidationError

from socialhub.kit.settings import DEVELOPMENT_JWT_SECRET, JwtSettings

STRONG = "k3y-" + "x" * 40


def test_development_accepts_the_default_secret() -> None:
    assert (
        JwtSettings(socialhub_env="development").jwt_secret.get_secret_value()
        == DEVELOPMENT_JWT_SECRET
    )


@pytest.mark.parametrize("env", ["test", "production"])
@pytest.mark.parametrize("secret", [DEVELOPMENT_JWT_SECRET, "changeme", "secret", "short-key"])
def test_other_environments_refuse_placeholders(env: str, secret: str) -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        JwtSettings(socialhub_env=env, jwt_secret=secret)


def test_production_accepts_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALHUB_ENV", "production")
    monkeypatch.setenv("JWT_SECRET", STRONG)
    assert JwtSettings().jwt_secret.get_secret_value() == STRONG
