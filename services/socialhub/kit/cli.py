"""Every service's command line: `python -m socialhub.<service> serve|migrate`."""

import argparse
import sys

import uvicorn

from socialhub.kit.migrations import upgrade_to_head
from socialhub.kit.settings import PostgresSettings, ServiceSettings


def run_service(
    service: str,
    *,
    settings: ServiceSettings,
    app_factory: str,
    migrations_package: str | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m socialhub.{service}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP service")
    if migrations_package:
        commands.add_parser("migrate", help="apply database migrations up to the latest")
    args = parser.parse_args()

    if args.command == "migrate":
        if not isinstance(settings, PostgresSettings) or migrations_package is None:
            parser.error(f"{service} has no database to migrate")
        upgrade_to_head(migrations_package, settings.database_url)
        print(f"{service}: migrations applied", file=sys.stderr)
        return
    uvicorn.run(
        app_factory,
        factory=True,
        host=settings.service_host,
        port=settings.service_port,
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips="*",
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        server_header=False,
    )
