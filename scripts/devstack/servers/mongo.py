"""A MongoDB wire-protocol server: FerretDB v1 on SQLite, built from the Go module proxy.

Real MongoDB is in no registry we can reach. FerretDB v1 speaks the wire protocol on top of
SQLite files (pure Go, no cgo) and is the last major version that does not need a patched
PostgreSQL. `install` copies the module's source out of the Go module cache, writes the
`build/version/version.txt` its release tooling would generate (the binary panics at start
without it when built as the main module) and compiles `cmd/ferretdb` into
`$SOCIALHUB_CACHE/ferretdb/<version>/ferretdb`. The Go caches live in `$SOCIALHUB_CACHE/go/`,
so fresh clones reuse them.

Known gaps against MongoDB that callers must design around (see tests/devstack/test_mongo.py):
index options such as `expireAfterSeconds` (TTL) and `partialFilterExpression` are refused with
NotImplemented (code 238), and duplicate-key write errors carry no `keyPattern`/`keyValue`.
"""

import fcntl
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from devstack.config import INFRA
from devstack.paths import CACHE, INFRA_STATE, ensure_dir
from devstack.process import ManagedProcess
from devstack.servers.base import Server

FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = os.environ.get("SOCIALHUB_FERRETDB_VERSION", "v1.24.2")
GO = os.environ.get("SOCIALHUB_GO", "/usr/local/go/bin/go")
GO_CACHE = CACHE / "go"


def _go_env() -> dict[str, str]:
    """Go caches under the project cache; the module proxy is the only network we use."""
    return {
        **os.environ,
        "GOMODCACHE": str(GO_CACHE / "mod"),
        "GOCACHE": str(GO_CACHE / "build"),
        "GOPATH": str(GO_CACHE / "path"),
        # FerretDB's go.sum is complete: build exactly the versions it pins.
        "GOFLAGS": "-mod=readonly -buildvcs=false",
        "GOTOOLCHAIN": "local",
        # modernc.org/sqlite is pure Go, so the binary is static and needs no C toolchain.
        "CGO_ENABLED": "0",
    }


def _go(args: Sequence[str], *, cwd: Path) -> str:
    result = subprocess.run([GO, *args], cwd=cwd, env=_go_env(), text=True,
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} failed ({result.returncode}) in {cwd}:\n"
                           f"{result.stdout}{result.stderr}")
    return result.stdout


@contextmanager
def _exclusive(lockfile: Path) -> Iterator[None]:
    """Serialise builds: `make up` and `make test` may both find the binary missing."""
    ensure_dir(lockfile.parent)
    with lockfile.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _make_writable(tree: Path) -> None:
    """The module cache is read-only and copytree keeps directory modes."""
    for directory, _, _ in os.walk(tree):
        mode = Path(directory).stat().st_mode
        Path(directory).chmod(mode | stat.S_IWUSR)


def build_ferretdb(version: str, target: Path) -> None:
    """Compile FerretDB `version` into `target`; the caller checks whether it already exists."""
    home = ensure_dir(target.parent)
    module_dir = _go(["mod", "download", "-json", f"{FERRETDB_MODULE}@{version}"], cwd=home)
    source = Path(_json_field(module_dir, "Dir"))
    work = home / "src.partial"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work, copy_function=shutil.copyfile)
    _make_writable(work)
    (work / "build" / "version" / "version.txt").write_text(f"{version}\n")
    partial = home / "ferretdb.partial"
    _go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "./cmd/ferretdb"],
        cwd=work)
    partial.replace(target)
    shutil.rmtree(work)


def _json_field(document: str, field: str) -> str:
    value = json.loads(document).get(field)
    if not isinstance(value, str):
        raise RuntimeError(f"`go mod download -json` gave no {field!r}: {document}")
    return value


class Mongo(Server):
    name = "mongo"

    def __init__(self, port: int = INFRA.mongo_port, version: str = FERRETDB_VERSION) -> None:
        self.port = port
        self.version = version
        self.binary = CACHE / "ferretdb" / version / "ferretdb"
        self.root = INFRA_STATE / "mongo"
        self.data = self.root / "sqlite"

    @property
    def address(self) -> str:
        return f"mongodb://{INFRA.host}:{self.port}/"

    def url(self, database: str) -> str:
        return f"mongodb://{INFRA.host}:{self.port}/{database}"

    def install(self) -> None:
        if self.binary.exists():
            return
        with _exclusive(self.binary.with_name("build.lock")):
            if not self.binary.exists():
                print(f"building FerretDB {self.version} (a few minutes on a cold cache)",
                      flush=True)
                build_ferretdb(self.version, self.binary)

    def prepare(self) -> None:
        ensure_dir(self.data)

    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name=self.name,
            argv=[str(self.binary),
                  "--handler=sqlite",
                  # FerretDB wants a directory URI ending in '/': one SQLite file per database.
                  f"--sqlite-url=file:{self.data}/",
                  f"--listen-addr={INFRA.host}:{self.port}",
                  f"--state-dir={self.root}",
                  # The debug/metrics HTTP listener defaults to 127.0.0.1:8088: keep it off.
                  "--debug-addr=-",
                  "--telemetry=disable",
                  "--log-level=info"],
            run_dir=INFRA_STATE / "run",
            env={"DO_NOT_TRACK": "1"},
        )

    def ready(self) -> bool:
        client: MongoClient[dict[str, object]] = MongoClient(
            self.address, serverSelectionTimeoutMS=500, connectTimeoutMS=500,
            socketTimeoutMS=2000,
        )
        try:
            client.admin.command("ping")
        except PyMongoError:
            return False
        finally:
            client.close()
        return True
