from socialhub.auth.settings import AuthSettings
from socialhub.kit.cli import run_service

run_service(
    "auth",
    settings=AuthSettings(),
    app_factory="socialhub.auth.app:create_app",
    migrations_package="socialhub.auth",
)
