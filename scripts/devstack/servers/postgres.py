"""PostgreSQL 15 from Debian, one cluster for every service database."""

import os
import pwd
import signal
from pathlib import Path

from devstack.config import INFRA, NODE_NETWORK
from devstack.install import apt_install
from devstack.paths import INFRA_STATE, ensure_dir
from devstack.process import ManagedProcess, run
from devstack.servers.base import Server

BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "socialhub"
PASSWORD = "socialhub"  # loopback-only development cluster


class Postgres(Server):
    name = "postgres"

    def __init__(self, port: int = INFRA.postgres_port, state_dir: Path = INFRA_STATE) -> None:
        """`state_dir`: another port and directory make a private cluster (fault-injection tests
        stop theirs without disturbing anyone)."""
        self.port = port
        self.root = state_dir / "postgres"
        self.run_dir = state_dir / "run"
        self.data = self.root / "data"
        # initdb refuses to run as root: the cluster belongs to the `postgres` user then.
        self.user = "postgres" if os.geteuid() == 0 else None

    @property
    def address(self) -> str:
        return f"postgresql://{SUPERUSER}:{PASSWORD}@{INFRA.host}:{self.port}"

    def url(self, database: str, driver: str = "postgresql+asyncpg", host: str = INFRA.host) -> str:
        """`host`: the node's address for pods (`devstack.servers.network` forwards it)."""
        return f"{driver}://{SUPERUSER}:{PASSWORD}@{host}:{self.port}/{database}"

    def install(self) -> None:
        if not (BIN / "postgres").exists():
            apt_install("postgresql-15")

    def prepare(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        self._allow_pods()

    def _allow_pods(self) -> None:
        """Pods on the real node connect from the pod network (through the node's address)."""
        hba = self.data / "pg_hba.conf"
        line = f"host all all {NODE_NETWORK.pod_cidr} scram-sha-256\n"
        if line not in hba.read_text():
            with hba.open("a") as out:
                out.write(line)

    def _initdb(self) -> None:
        ensure_dir(self.root)
        self._own(self.root)
        pwfile = self.root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        self._own(pwfile)
        run(
            [
                str(BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            user=self.user,
        )
        pwfile.unlink()

    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name=self.name,
            argv=[
                str(BIN / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                f"listen_addresses={INFRA.host}",
                "-c",
                f"unix_socket_directories={self.root}",
                "-c",
                "max_connections=400",
                "-c",
                "shared_buffers=256MB",
                # JIT compiles for hundreds of ms on short OLTP queries it misjudges as big
                "-c",
                "jit=off",
            ],
            run_dir=self.run_dir,
            user=self.user,
            # SIGINT is PostgreSQL's "fast" shutdown: roll back clients, checkpoint, exit.
            stop_signal=signal.SIGINT,
        )

    def reload(self) -> None:
        """Re-read pg_hba.conf and the settings (SIGHUP), e.g. after `prepare` added a line."""
        pid = self.process().pid()
        if pid is not None:
            os.kill(pid, signal.SIGHUP)

    def ready(self) -> bool:
        result = run([str(BIN / "pg_isready"), "-h", INFRA.host, "-p", str(self.port)], check=False)
        return result.returncode == 0

    def create_database(self, name: str) -> None:
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        if exists.strip() != "1":
            self.psql(f'CREATE DATABASE "{name}"')

    def psql(self, sql: str, database: str = "postgres") -> str:
        return run(
            [
                "psql",
                "-h",
                INFRA.host,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-tAc",
                sql,
            ],
            env={"PGPASSWORD": PASSWORD},
        ).stdout

    def _own(self, path: Path) -> None:
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
