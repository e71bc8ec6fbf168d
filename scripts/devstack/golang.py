"""Go builds from the module proxy (FerretDB, the Kubernetes control plane): one toolchain, one
cache under the project cache, so a second build and the next clone reuse the downloads."""

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.paths import CACHE

GO = os.environ.get("SOCIALHUB_GO", "/usr/local/go/bin/go")
GO_CACHE = CACHE / "go"


def go_env(*, goflags: str, cgo: bool) -> dict[str, str]:
    """The module proxy is the only network a build uses; the local toolchain, never another."""
    return {
        **os.environ,
        "GOMODCACHE": str(GO_CACHE / "mod"),
        "GOCACHE": str(GO_CACHE / "build"),
        "GOPATH": str(GO_CACHE / "path"),
        "GOFLAGS": goflags,
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "1" if cgo else "0",
    }


def run_go(args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> str:
    """`go <args>`'s standard output; a failure raises with all of go's output."""
    result = subprocess.run(
        [GO, *args], cwd=cwd, env=dict(env), text=True, capture_output=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"go {' '.join(args)} failed ({result.returncode}) in {cwd}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result.stdout
