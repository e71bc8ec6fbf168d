"""A MongoDB wire-protocol server: FerretDB v1 on SQLite, built from the Go module proxy.

Real MongoDB is in no registry we can reach. FerretDB v1 speaks the wire protocol on top of
SQLite files (pure Go, no cgo) and is the last major version that does not need a patched
PostgreSQL. `install` copies the module's source out of the Go module cache, writes the
`build/version/version.txt` its release tooling would generate (the binary panics at start
without it when built as the main module), applies our fixes from
`devstack/data/ferretdb-patches/` and compiles `cmd/ferretdb` into
`$SOCIALHUB_CACHE/ferretdb/<version>/ferretdb`. The Go caches live in `$SOCIALHUB_CACHE/go/`, so
fresh clones reuse them; a change to the patches rebuilds.

The patches: (1) `_id` lookups (every update and delete goes through them) use the `_id` index
instead of scanning the table; (2) `createIndexes` with two or more already existing indexes no
longer panics (it dropped the connection). Gaps that remain, which callers must design around
(see tests/devstack/test_mongo.py): only `{_id: value}` filters reach SQLite, so every other
find, count, update or delete filters and sorts the whole collection in Go (secondary indexes
only enforce uniqueness); index options such as `expireAfterSeconds` (TTL) are refused with
NotImplemented (238); duplicate-key write errors carry no `keyPattern`/`keyValue`.
"""

import fcntl
import hashlib
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

from devstack import datafiles
from devstack.config import INFRA
from devstack.golang import go_env, run_go
from devstack.paths import CACHE, INFRA_STATE, ensure_dir
from devstack.process import ManagedProcess
from devstack.servers.base import Server

FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = os.environ.get("SOCIALHUB_FERRETDB_VERSION", "v1.24.2")
PATCHES = sorted(datafiles.path("ferretdb-patches").glob("*.patch"))


def build_recipe(version: str) -> str:
    """What the binary is built from: a change here means the cached binary is stale."""
    digest = hashlib.sha256(version.encode())
    for patch in PATCHES:
        digest.update(patch.name.encode() + b"\0" + patch.read_bytes())
    return digest.hexdigest()


def _go(args: Sequence[str], *, cwd: Path) -> str:
    # FerretDB's go.sum is complete: build exactly the versions it pins. modernc.org/sqlite is
    # pure Go, so the binary is static and needs no C toolchain.
    return run_go(args, cwd=cwd, env=go_env(goflags="-mod=readonly -buildvcs=false", cgo=False))


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
    for patch in PATCHES:
        _apply(patch, work)
    partial = home / "ferretdb.partial"
    _go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "./cmd/ferretdb"], cwd=work)
    partial.replace(target)
    shutil.rmtree(work)


def _apply(patch: Path, tree: Path) -> None:
    # The ceiling keeps git from treating an enclosing repository as the one to patch.
    result = subprocess.run(
        ["git", "apply", str(patch)],
        cwd=tree,
        text=True,
        capture_output=True,
        check=False,
        env={**os.environ, "GIT_CEILING_DIRECTORIES": str(tree.parent)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"{patch.name} does not apply to {tree}:\n{result.stderr}")


def _json_field(document: str, field: str) -> str:
    value = json.loads(document).get(field)
    if not isinstance(value, str):
        raise RuntimeError(f"`go mod download -json` gave no {field!r}: {document}")
    return value


class Mongo(Server):
    name = "mongo"

    def __init__(
        self,
        port: int = INFRA.mongo_port,
        version: str = FERRETDB_VERSION,
        state_dir: Path = INFRA_STATE,
    ) -> None:
        self.port = port
        self.version = version
        self.binary = CACHE / "ferretdb" / version / "ferretdb"
        self.recipe = self.binary.with_name("recipe")
        self.root = state_dir / "mongo"
        self.data = self.root / "sqlite"
        self.run_dir = state_dir / "run"

    @property
    def address(self) -> str:
        return f"mongodb://{INFRA.host}:{self.port}/"

    def url(self, database: str) -> str:
        return f"{self.address}{database}"

    def install(self) -> None:
        recipe = build_recipe(self.version)
        if self._built(recipe):
            return
        with _exclusive(self.binary.with_name("build.lock")):
            if not self._built(recipe):
                print(
                    f"building FerretDB {self.version} (a few minutes on a cold cache)", flush=True
                )
                build_ferretdb(self.version, self.binary)
                self.recipe.write_text(recipe + "\n")

    def _built(self, recipe: str) -> bool:
        return (
            self.binary.exists()
            and self.recipe.exists()
            and self.recipe.read_text().strip() == recipe
        )

    def prepare(self) -> None:
        ensure_dir(self.data)

    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name=self.name,
            argv=[
                str(self.binary),
                "--handler=sqlite",
                # FerretDB wants a directory URI ending in '/': one SQLite file per database.
                f"--sqlite-url=file:{self.data}/",
                f"--listen-addr={INFRA.host}:{self.port}",
                f"--state-dir={self.root}",
                # The debug/metrics HTTP listener defaults to 127.0.0.1:8088: keep it off.
                "--debug-addr=-",
                "--telemetry=disable",
                # insert_many is stored in transactions of this many documents (default 100);
                # 1000 nearly doubles the notification consumer's batch inserts
                "--test-batch-size=1000",
                "--log-level=info",
            ],
            run_dir=self.run_dir,
            env={"DO_NOT_TRACK": "1"},
        )

    def ready(self) -> bool:
        client: MongoClient[dict[str, object]] = MongoClient(
            self.address,
            serverSelectionTimeoutMS=500,
            connectTimeoutMS=500,
            socketTimeoutMS=2000,
        )
        try:
            client.admin.command("ping")
        except PyMongoError:
            return False
        finally:
            client.close()
        return True
