"""A stand-in upstream for gateway tests: it answers with what the gateway sent it.

HTTP requests get `{"service", "method", "path", "headers"}` as JSON; a websocket gets the same
object as its first message and then has every message echoed back. Run as a script:
`python echo_upstream.py NAME PORT`.
"""

import json
import sys
from typing import Any

import uvicorn

Scope = dict[str, Any]
Message = dict[str, Any]


def _seen(service: str, scope: Scope) -> bytes:
    headers: dict[str, list[str]] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    return json.dumps(
        {
            "service": service,
            "method": scope.get("method", "WEBSOCKET"),
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "headers": headers,
        }
    ).encode()


def make_app(service: str) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            while (await receive()).get("more_body"):
                pass
            body = _seen(service, scope)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
        elif scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": _seen(service, scope).decode()})
            while True:
                message: Message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                await send(
                    {
                        "type": "websocket.send",
                        "text": message.get("text"),
                        "bytes": message.get("bytes"),
                    }
                )
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": f"{message['type']}.complete"})
                if message["type"] == "lifespan.shutdown":
                    return

    return app


if __name__ == "__main__":
    name, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(make_app(name), host="127.0.0.1", port=port, log_level="warning", access_log=False)
