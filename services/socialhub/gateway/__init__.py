"""The nginx gateway's configuration, rendered from one template.

`make up` (devstack) and the Kubernetes operator (its ConfigMap) both call `render`, so the
gateway behaves the same on one machine and on a cluster. What the gateway does and why is in
README.md next to this file; the template is `nginx.conf.j2`.
"""

import ipaddress
import re
from dataclasses import dataclass, field
from importlib.resources import files
from typing import NamedTuple

import jinja2

from socialhub.contracts import topology

# Public HTTP routes protected by the token check.
_PROTECTED_ROUTES = tuple(
    (service.protected_route, service.name)
    for service in topology.SERVICES
    if service.protected_route is not None
)


def api_documents(service: str) -> tuple[str, str]:
    """Where a service serves its OpenAPI document and its Swagger UI page: public, through
    the gateway without a token."""
    return f"/{service}/openapi.json", f"/{service}/docs"


class GatewayError(NamedTuple):
    """An error nginx produces itself, answered in the services' JSON envelope."""

    status: int
    code: str
    message: str
    # nginx's own non-standard codes answered as `status`: 494 (request header too large) and
    # 497 (plain HTTP sent to the TLS port)
    also: tuple[int, ...] = ()
    # response headers, (name, value); an empty value (an nginx variable) sends none
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def nginx_statuses(self) -> tuple[int, ...]:
        return (self.status, *self.also)


GATEWAY_ERRORS = (
    GatewayError(400, "bad_request", "malformed request", also=(497,)),
    GatewayError(404, "not_found", "no such route"),
    GatewayError(
        405, "method_not_allowed", "method not allowed", headers=(("Allow", "$gateway_allow"),)
    ),
    GatewayError(408, "request_timeout", "request timed out"),
    GatewayError(412, "precondition_failed", "precondition failed"),
    GatewayError(413, "payload_too_large", "request body too large"),
    GatewayError(414, "uri_too_long", "request URI too long"),
    GatewayError(416, "range_not_satisfiable", "requested range not satisfiable"),
    GatewayError(431, "request_header_fields_too_large", "request headers too large", also=(494,)),
    GatewayError(500, "internal_error", "internal gateway error"),
    GatewayError(501, "not_implemented", "transfer encoding not supported"),
    GatewayError(502, "bad_gateway", "upstream service unreachable"),
    GatewayError(503, "service_unavailable", "service unavailable"),
    GatewayError(504, "gateway_timeout", "upstream service timed out"),
    GatewayError(505, "http_version_not_supported", "HTTP version not supported"),
)

# What /media/ may hold (the posts service stores images and videos there).
_MEDIA_TYPES = (
    ("image/jpeg", "jpg jpeg"),
    ("image/png", "png"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("image/avif", "avif"),
    ("video/mp4", "mp4 m4v"),
    ("video/webm", "webm"),
    ("video/quicktime", "mov"),
)

# From this nginx version HTTP/2 is the `http2 on;` directive; the `listen ... http2` parameter
# still works there but is deprecated (a warning at every start).
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)
_VERSION = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)")

# Values that end up inside nginx directives: no whitespace, quotes, `;`, `{`, `}` or `$`.
_SAFE_WORD = re.compile(r"[A-Za-z0-9_.:/\[\]@*+=,-]+")
_DIRECTIVE = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class GatewayConfig:
    listen_port: int
    # service name (auth, users, posts, notifications, chat) -> ["host:port", ...]
    upstreams: dict[str, list[str]]
    # where locally stored media files live; served under /media/ (None: no local media)
    media_root: str | None = None
    rate_limit_per_second: int = 50
    rate_limit_burst: int = 100
    # how long a token check is reused (0: ask the auth service every time); it bounds how long
    # a logged-out or reset token keeps working
    auth_cache_seconds: int = 5
    tls_certificate: str | None = None
    tls_certificate_key: str | None = None
    # the nginx that runs the file, e.g. "1.27.4"; None: HTTP/2 as the `listen` parameter,
    # which every version reads (Debian bookworm's 1.22 knows nothing else)
    nginx_version: str | None = None
    # process paths: nginx runs with its own prefix (pid file, temp dirs, logs)
    prefix: str = "/tmp/socialhub-nginx"
    access_log: str = "/dev/stdout"
    error_log: str = "/dev/stderr"
    # extra http-level directives, name -> value (e.g. {"resolver": "10.96.0.10"})
    extra: dict[str, str] = field(default_factory=dict)
    # loopback by default; a Kubernetes pod must listen on "0.0.0.0"
    listen_host: str = "127.0.0.1"
    server_name: str = "_"
    max_body_mb: int = 1
    # POST /posts/ carries up to 10 media files
    upload_max_body_mb: int = 60
    # addresses of load balancers in front of the gateway whose X-Forwarded-For is believed
    trusted_proxies: tuple[str, ...] = ()
    worker_processes: int | None = None  # None: one per core
    worker_connections: int = 8192
    # only when the master runs as root and the default worker user (nobody) cannot read the
    # media directory
    worker_user: str | None = None
    upstream_keepalive: int = 64
    media_cache_days: int = 30
    websocket_idle_seconds: int = 300

    @property
    def tls(self) -> bool:
        return self.tls_certificate is not None


def render(config: GatewayConfig) -> str:
    """The complete nginx.conf for `nginx -p <prefix> -c <file>`; raises ValueError on bad input."""
    _validate(config)
    template = _environment().from_string(
        files(__package__).joinpath("nginx.conf.j2").read_text(encoding="utf-8")
    )
    routes = [
        {
            "path": path,
            "service": service,
            "max_body_mb": config.upload_max_body_mb if service == "posts" else None,
        }
        for path, service in _PROTECTED_ROUTES
    ]
    values = {name: getattr(config, name) for name in config.__dataclass_fields__}
    values["worker_processes"] = config.worker_processes or "auto"
    return template.render(
        **values,
        tls=config.tls,
        http2_directive=_version(config.nginx_version) >= HTTP2_DIRECTIVE_SINCE,
        listen_address=_listen_address(config.listen_host),
        http_routes=routes,
        api_documents={service: api_documents(service) for service in topology.SERVICE_NAMES},
        gateway_errors=GATEWAY_ERRORS,
        media_types=_MEDIA_TYPES,
        auth_cache_inactive=max(10, 4 * config.auth_cache_seconds),
    )


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _version(version: str | None) -> tuple[int, ...]:
    if version is None:
        return ()
    match = _VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"nginx_version must be like 1.27.4: {version!r}")
    return tuple(int(part) for part in match.groups())


def _listen_address(host: str) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:"


def _validate(config: GatewayConfig) -> None:
    unknown = set(config.upstreams) - set(topology.SERVICE_NAMES)
    if unknown:
        raise ValueError(f"unknown services in upstreams: {sorted(unknown)}")
    for name, servers in config.upstreams.items():
        if not servers:
            raise ValueError(f"upstream {name!r} has no servers")
        for server in servers:
            _require_safe(f"upstream {name!r} server", server)
    if not 0 < config.listen_port < 65536:
        raise ValueError(f"listen_port out of range: {config.listen_port}")
    if config.rate_limit_per_second < 1 or config.rate_limit_burst < 0:
        raise ValueError("rate_limit_per_second must be >= 1 and rate_limit_burst >= 0")
    if config.auth_cache_seconds < 0:
        raise ValueError("auth_cache_seconds must be >= 0")
    if (config.tls_certificate is None) != (config.tls_certificate_key is None):
        raise ValueError("TLS needs both tls_certificate and tls_certificate_key")
    for label, value in (
        ("media_root", config.media_root),
        ("prefix", config.prefix),
        ("access_log", config.access_log),
        ("error_log", config.error_log),
        ("tls_certificate", config.tls_certificate),
        ("tls_certificate_key", config.tls_certificate_key),
        ("listen_host", config.listen_host),
        ("server_name", config.server_name),
        ("worker_user", config.worker_user),
    ):
        if value is not None:
            _require_safe(label, value)
    for cidr in config.trusted_proxies:
        _require_safe("trusted proxy", cidr)  # ip_network would take an IPv6 zone (`%eth0`)
        try:
            ipaddress.ip_network(cidr)  # strict: no address bits below the prefix
        except ValueError as error:
            raise ValueError(f"trusted proxy is not an address or CIDR: {cidr!r}") from error
    _version(config.nginx_version)
    for directive, value in config.extra.items():
        if not _DIRECTIVE.fullmatch(directive):
            raise ValueError(f"extra directive name not allowed: {directive!r}")
        for word in value.split(" "):
            _require_safe(f"extra {directive}", word)


def _require_safe(label: str, value: str) -> None:
    if not _SAFE_WORD.fullmatch(value):
        raise ValueError(f"{label} contains characters nginx would misread: {value!r}")
