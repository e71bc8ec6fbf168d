from socialhub.kit.cli import run_service
from socialhub.users.settings import UsersSettings

run_service(
    "users",
    settings=UsersSettings(),
    app_factory="socialhub.users.app:create_app",
    migrations_package="socialhub.users",
)
