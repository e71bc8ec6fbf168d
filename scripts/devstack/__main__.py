"""`python -m devstack up|down|status|install [--profile dev|test]` and
`python -m devstack restart SERVICE [--profile ...]` (what the Makefile runs)."""

import argparse
import sys

from devstack.config import INFRA, PROFILES
from devstack.platform import Platform
from devstack.restart import NotRunningError, restart
from socialhub.contracts.topology import SERVICE_NAMES, service


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["install", "up", "down", "status", "restart"])
    parser.add_argument(
        "service", nargs="?", choices=SERVICE_NAMES, help="with restart: the service to restart"
    )
    parser.add_argument(
        "--profile",
        default="dev",
        choices=sorted(name for name, profile in PROFILES.items() if profile.local),
    )
    parser.add_argument(
        "--keep-infra",
        action="store_true",
        help="with down: leave the shared backing servers running",
    )
    args = parser.parse_args()
    platform = Platform(PROFILES[args.profile])

    if args.command == "install":
        platform.install()
    elif args.command == "up":
        platform.up()
        print(
            f"\nSocialHub is up. Gateway: {platform.gateway_url}\n"
            f"  try:   curl {platform.gateway_url}/health\n"
            f"  state: make status   logs: {platform.run_dir}/\n"
            f"  stop:  make down"
        )
    elif args.command == "down":
        platform.down(infra=not args.keep_infra)
    elif args.command == "restart":
        if args.service is None:
            parser.error(f"restart needs a service: {', '.join(SERVICE_NAMES)}")
        spec = service(args.service)
        try:
            print(
                restart(
                    platform.service_process(spec),
                    f"http://{INFRA.host}:{platform.profile.port(spec)}/health",
                )
            )
        except NotRunningError as error:
            print(error, file=sys.stderr)
            return 1
    else:
        rows = platform.status()
        header = {
            "name": "NAME",
            "state": "STATE",
            "restarts": "RESTARTS",
            "last_exit": "LAST EXIT",
            "address": "ADDRESS",
            "log": "LOG",
        }
        widths = {key: max(len(row[key]) for row in [header, *rows]) for key in header}
        for row in [header, *rows]:
            print("  ".join(f"{row[key]:<{widths[key]}}" for key in header).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
