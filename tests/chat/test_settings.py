"""Chat settings (pure logic): the documented defaults and the presence timing rule."""

import pytest
from pydantic import ValidationError

from socialhub.chat.settings import ChatSettings


def test_defaults_are_the_documented_ones() -> None:
    settings = ChatSettings()
    assert settings.service_port == 5004
    assert settings.chat_message_max_bytes == 4096
    assert (settings.chat_send_limit, settings.chat_send_window_seconds) == (20, 5.0)
    assert settings.chat_history_on_join == 50
    assert settings.allowed_origins == "*"
    assert ChatSettings(
        chat_allowed_origins="https://a.example, https://b.example"
    ).allowed_origins == ["https://a.example", "https://b.example"]


def test_an_instance_ttl_shorter_than_two_heartbeats_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least two heartbeats"):
        ChatSettings(chat_heartbeat_seconds=5, chat_instance_ttl_seconds=9)
    assert (
        ChatSettings(
            chat_heartbeat_seconds=5, chat_instance_ttl_seconds=10
        ).chat_instance_ttl_seconds
        == 10
    )
