"""The gateway's nginx.conf in the cluster: the same template `make up` renders."""

from socialhub.gateway import GatewayConfig, render
from socialhub_operator.spec import SERVICE_PORTS, SocialHubSpec

LISTEN_PORT = 8080  # HTTPS on the same port when a TLS Secret is configured
CONFIG_DIR = "/etc/nginx/socialhub"
CONFIG_FILE = "nginx.conf"
TLS_DIR = "/etc/nginx/tls"
# Local media: posts writes here, the gateway serves it under /media/ (both mount the claim).
MEDIA_DIR = "/media"
# nginx runs unprivileged with a read-only root: pid, temp files and caches live here.
PREFIX = "/tmp/socialhub-nginx"


def upstream_host(instance: str, namespace: str, service: str) -> str:
    return f"{instance}-{service}.{namespace}.svc.cluster.local"


def nginx_conf(instance: str, namespace: str, spec: SocialHubSpec) -> str:
    gateway = spec.gateway
    tls = bool(gateway.tls_secret_name)
    return render(
        GatewayConfig(
            listen_port=LISTEN_PORT,
            listen_host="0.0.0.0",
            server_name=gateway.host or "_",
            upstreams={
                service: [f"{upstream_host(instance, namespace, service)}:{port}"]
                for service, port in SERVICE_PORTS.items()
            },
            rate_limit_per_second=gateway.rate_limit_per_second,
            rate_limit_burst=gateway.rate_limit_burst,
            auth_cache_seconds=gateway.auth_cache_seconds,
            upload_max_body_mb=gateway.upload_max_body_mb,
            trusted_proxies=tuple(gateway.trusted_proxies),
            nginx_version=gateway.nginx_version,
            worker_processes=gateway.worker_processes,
            tls_certificate=f"{TLS_DIR}/tls.crt" if tls else None,
            tls_certificate_key=f"{TLS_DIR}/tls.key" if tls else None,
            media_root=MEDIA_DIR if spec.media.on_claim else None,
            prefix=PREFIX,
        )
    )
