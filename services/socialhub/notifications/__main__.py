from socialhub.kit.cli import run_service
from socialhub.notifications.settings import NotificationSettings

run_service(
    "notifications",
    settings=NotificationSettings(),
    app_factory="socialhub.notifications.app:create_app",
)
