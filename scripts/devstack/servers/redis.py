"""Redis 7 from Debian, with append-only persistence so data survives a restart."""

import shutil
from pathlib import Path

from devstack.config import INFRA
from devstack.install import apt_install
from devstack.paths import INFRA_STATE, ensure_dir
from devstack.process import ManagedProcess, run
from devstack.servers.base import Server


class Redis(Server):
    name = "redis"

    def __init__(self, port: int = INFRA.redis_port, state_dir: Path = INFRA_STATE) -> None:
        """`state_dir`: another port and directory make a private server (fault-injection tests
        stop theirs without disturbing anyone)."""
        self.port = port
        self.data = state_dir / "redis"
        self.run_dir = state_dir / "run"

    @property
    def address(self) -> str:
        return f"redis://{INFRA.host}:{self.port}"

    def url(self, db: int) -> str:
        return f"{self.address}/{db}"

    def install(self) -> None:
        if shutil.which("redis-server") is None:
            apt_install("redis-server")

    def prepare(self) -> None:
        ensure_dir(self.data)

    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name=self.name,
            # Protected mode refuses clients from other addresses when there is no password;
            # pods come through the node's address (`devstack.servers.network`), and the
            # server still listens on loopback only.
            argv=[
                "redis-server",
                "--bind",
                INFRA.host,
                "--port",
                str(self.port),
                "--protected-mode",
                "no",
                "--dir",
                str(self.data),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
                "--maxclients",
                "20000",
            ],
            run_dir=self.run_dir,
        )

    def ready(self) -> bool:
        result = run(["redis-cli", "-h", INFRA.host, "-p", str(self.port), "ping"], check=False)
        return result.stdout.strip() == "PONG"
