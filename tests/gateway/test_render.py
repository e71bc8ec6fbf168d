"""Rendering the gateway configuration: what `make up` and the operator hand to nginx."""

import subprocess
from pathlib import Path

import pytest

from socialhub.contracts.topology import SERVICE_NAMES
from socialhub.gateway import GatewayConfig, render
from tests.gateway.conftest import NGINX, self_signed, worker_user

ALL_UPSTREAMS = {name: [f"127.0.0.1:{5000 + i}"] for i, name in enumerate(SERVICE_NAMES)}


def config(tmp_path: Path, **options: object) -> GatewayConfig:
    settings: dict[str, object] = {
        "listen_port": 18080,
        "upstreams": ALL_UPSTREAMS,
        "prefix": str(tmp_path),
        "access_log": str(tmp_path / "access.log"),
        "error_log": str(tmp_path / "error.log"),
        "worker_user": worker_user(),
        **options,
    }
    return GatewayConfig(**settings)  # type: ignore[arg-type]


def nginx_test(tmp_path: Path, gateway: GatewayConfig) -> str:
    """`nginx -t` on the rendered file; returns the rendered text."""
    text = render(gateway)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr, result.stderr
    return text


def test_every_service_with_media(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    text = nginx_test(tmp_path, config(tmp_path, media_root=str(media)))
    assert f"alias {media}/;" in text
    assert "ssl" not in text


def test_only_auth_and_no_media(tmp_path: Path) -> None:
    """What `make up` renders before the other services land: their routes answer 503."""
    text = nginx_test(tmp_path, config(tmp_path, upstreams={"auth": ["127.0.0.1:5000"]}))
    assert "upstream users" not in text
    assert "alias" not in text


def test_no_services_at_all(tmp_path: Path) -> None:
    nginx_test(tmp_path, config(tmp_path, upstreams={}))


def test_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    text = nginx_test(tmp_path, config(tmp_path, tls_certificate=cert, tls_certificate_key=key))
    assert "listen 127.0.0.1:18080 ssl http2;" in text
    assert f"ssl_certificate {cert};" in text


@pytest.mark.parametrize(
    ("version", "http2"),
    [
        (None, "listen 127.0.0.1:18080 ssl http2;"),
        ("1.25.0", "listen 127.0.0.1:18080 ssl http2;"),
        ("1.25.1", "listen 127.0.0.1:18080 ssl;\n        http2 on;"),
        ("1.27.4", "listen 127.0.0.1:18080 ssl;\n        http2 on;"),
    ],
)
def test_http2_takes_the_form_of_the_nginx_version(
    tmp_path: Path, version: str | None, http2: str
) -> None:
    """`listen ... http2` is deprecated from nginx 1.25.1, which Debian's 1.22 cannot check."""
    text = render(
        config(
            tmp_path,
            tls_certificate="/tls/crt",
            tls_certificate_key="/tls/key",
            nginx_version=version,
        )
    )
    assert http2 in text


def test_kubernetes_style(tmp_path: Path) -> None:
    """Several replicas per service, all interfaces, a trusted load balancer, extra directives."""
    upstreams = {name: [f"{name}-{i}.socialhub.svc:80" for i in range(3)] for name in SERVICE_NAMES}
    gateway = config(
        tmp_path,
        upstreams=upstreams,
        listen_host="0.0.0.0",
        trusted_proxies=("10.0.0.0/8",),
        extra={"resolver_timeout": "5s"},
        auth_cache_seconds=0,
        worker_processes=2,
    )
    text = render(gateway)  # nginx -t would resolve the cluster names
    assert "listen 0.0.0.0:18080;" in text
    assert "set_real_ip_from 10.0.0.0/8;" in text
    assert "resolver_timeout 5s;" in text
    assert "proxy_cache" not in text
    chat = text[text.index("upstream chat {") :]
    assert "hash $remote_addr consistent;" in chat.split("}")[0]
    users = text[text.index("upstream users {") :]
    assert "least_conn;" in users.split("}")[0]
    assert users.count("server users-") == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"upstreams": {"billing": ["127.0.0.1:1"]}}, "unknown services"),
        ({"upstreams": {"auth": []}}, "no servers"),
        ({"upstreams": {"auth": ["127.0.0.1:1; include /etc/passwd"]}}, "misread"),
        ({"media_root": "/srv/media files"}, "misread"),
        ({"tls_certificate": "/tmp/cert.pem"}, "both"),
        ({"extra": {"lua; x": "1"}}, "not allowed"),
        ({"rate_limit_per_second": 0}, "rate_limit"),
        ({"trusted_proxies": ("1.2.3.4/99",)}, "not an address or CIDR"),
        ({"trusted_proxies": ("10.0.0.1/8",)}, "not an address or CIDR"),
        ({"trusted_proxies": ("fe80::1%eth0",)}, "misread"),
        ({"nginx_version": "1.27"}, "nginx_version"),
    ],
)
def test_refuses_input_nginx_would_misread(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render(config(tmp_path, **options))


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    """devstack restarts nginx only when the rendered text changes."""
    assert render(config(tmp_path)) == render(config(tmp_path))
