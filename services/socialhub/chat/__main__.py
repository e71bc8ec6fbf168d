from socialhub.chat.settings import ChatSettings
from socialhub.kit.cli import run_service

run_service("chat", settings=ChatSettings(), app_factory="socialhub.chat.app:create_app")
