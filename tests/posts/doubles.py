"""Local HTTP doubles of the third-party APIs the posts service calls: Cloudinary's Upload API
and Gemini's REST API. Real HTTP servers on 127.0.0.1, answering as the providers document, so
the official SDKs run unmodified against them."""

import email.parser
import email.policy
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# Parameters Cloudinary leaves out of the signature (Upload API, "Generating signatures").
UNSIGNED = frozenset({"file", "api_key", "signature", "resource_type", "cloud_name"})


@dataclass
class Upload:
    resource_type: str
    params: dict[str, str]
    data: bytes


@dataclass
class CloudinaryDouble:
    """`POST /v1_1/<cloud>/<resource_type>/upload` and `.../destroy`, checking signatures."""

    cloud: str
    api_key: str
    api_secret: str
    url: str = ""
    uploads: list[Upload] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    # When set, every upload waits here: uploads made one after the other break the barrier.
    barrier: threading.Barrier | None = None
    failing_resource_types: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def signature(self, params: dict[str, str]) -> str:
        signed = "&".join(
            f"{k}={v.replace('&', '%26')}"
            for k, v in sorted(params.items())
            if k not in UNSIGNED and v != ""
        )
        return hashlib.sha1((signed + self.api_secret).encode()).hexdigest()

    def handle(
        self, path: str, fields: dict[str, str], files: dict[str, bytes]
    ) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v1_1", self.cloud]:
            return 404, {"error": {"message": f"unknown path {path}"}}
        resource_type, action = parts[2], parts[3]
        if fields.get("api_key") != self.api_key:
            return 401, {"error": {"message": "Invalid api_key"}}
        if fields.get("signature") != self.signature(fields):
            return 401, {"error": {"message": "Invalid Signature"}}
        if action == "destroy":
            with self.lock:
                self.destroyed.append(fields["public_id"])
            return 200, {"result": "ok"}
        if action != "upload":
            return 404, {"error": {"message": f"unknown action {action}"}}
        if self.barrier is not None:
            try:
                self.barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                return 500, {"error": {"message": "uploads did not arrive in parallel"}}
        if resource_type in self.failing_resource_types:
            return 500, {"error": {"message": "General Error"}}
        data = files["file"]
        with self.lock:
            self.uploads.append(Upload(resource_type, fields, data))
        public_id = f"{fields['folder']}/{fields['public_id']}"
        fmt = {"image": "png", "video": "mp4"}[resource_type]
        version = int(time.time())
        return 200, {
            "asset_id": hashlib.md5(public_id.encode()).hexdigest(),
            "public_id": public_id,
            "version": version,
            "signature": "0" * 40,
            "format": fmt,
            "resource_type": resource_type,
            "type": "upload",
            "created_at": "2026-11-25T09:00:00Z",
            "bytes": len(data),
            "url": f"http://res.cloudinary.com/{self.cloud}/{resource_type}/upload/"
            f"v{version}/{public_id}.{fmt}",
            "secure_url": f"https://res.cloudinary.com/{self.cloud}/{resource_type}/upload/"
            f"v{version}/{public_id}.{fmt}",
            "original_filename": fields["public_id"],
        }


@dataclass
class GeminiDouble:
    """`POST /v1beta/models/<model>:generateContent`."""

    url: str = ""
    # "ok": the answer below; "error": HTTP 500; "garbage": text that is not JSON
    mode: str = "ok"
    answer: dict[str, Any] = field(
        default_factory=lambda: {
            "caption": "Golden hour at the beach",
            "hashtags": ["#beach", "sunset", "#Summer"],
            "moderation": {"verdict": "allow", "categories": []},
        }
    )
    requests: list[dict[str, Any]] = field(default_factory=list)

    def handle(
        self, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        self.requests.append({"path": path, "headers": headers, "body": body})
        if not path.startswith("/v1beta/models/") or not path.endswith(":generateContent"):
            return 404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
        if self.mode == "error":
            return 500, {"error": {"code": 500, "message": "internal", "status": "INTERNAL"}}
        text = "certainly! here you go" if self.mode == "garbage" else json.dumps(self.answer)
        return 200, {
            "candidates": [
                {
                    "content": {"parts": [{"text": text}], "role": "model"},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 50,
                "candidatesTokenCount": 20,
                "totalTokenCount": 70,
            },
            "modelVersion": path.split("/")[-1].split(":")[0],
        }


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str)
        assert isinstance(payload, bytes)
        if part.get_filename() is not None:
            files[name] = payload
        else:
            fields[name] = payload.decode()
    return fields, files


@contextmanager
def serving(double: CloudinaryDouble | GeminiDouble) -> Iterator[str]:
    """Serve `double` on a free port of 127.0.0.1; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            path = urlsplit(self.path).path
            if isinstance(double, CloudinaryDouble):
                fields, files = _multipart(self.headers["content-type"], body)
                status, answer = double.handle(path, fields, files)
            else:
                status, answer = double.handle(
                    path, {k.lower(): v for k, v in self.headers.items()}, json.loads(body)
                )
            raw = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    double.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield double.url
    finally:
        server.shutdown()
        server.server_close()
