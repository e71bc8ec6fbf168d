"""Refusals shared by the Socket.IO handlers (an `error` event) and the HTTP routes (a status)."""

from socialhub.kit.errors import ApiError


class ChatError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def as_api_error(self) -> ApiError:
        return ApiError(self.status, self.code, self.message)

    def as_event(self, event: str, room_id: str | None = None) -> dict[str, str]:
        """The `error` event's payload: which client event failed, why, and for which room."""
        payload = {"event": event, "code": self.code, "message": self.message}
        if room_id is not None:
            payload["roomId"] = room_id
        return payload


def invalid(message: str) -> ChatError:
    return ChatError(400, "bad_request", message)


def forbidden(message: str) -> ChatError:
    return ChatError(403, "forbidden", message)


def not_found(message: str) -> ChatError:
    return ChatError(404, "not_found", message)


def rate_limited(message: str) -> ChatError:
    return ChatError(429, "rate_limited", message)


def too_large(message: str) -> ChatError:
    return ChatError(413, "payload_too_large", message)
