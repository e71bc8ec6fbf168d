"""`make image`: the services, operator, gateway and pause images, built here without Docker.

No registry is reachable on these machines, so every base is made here: a Debian bookworm root
file system by debootstrap (python3.11 for the services, Debian's nginx for the gateway), an
image holding only the uv binary, and the pause image from Debian's static catatonit. The
repository's Dockerfile builds the services and operator images on those bases (its
`PYTHON_IMAGE` and `UV_IMAGE` build arguments), so a registry build elsewhere stays unchanged.

Each image is tagged by a hash of its inputs: an unchanged tree builds nothing, a changed one gets
a new tag, which makes Kubernetes roll. Podman keeps its storage and the root file system tarball
under `$SOCIALHUB_CACHE`, so clones share them. Its flags say what these machines need
(REFERENCE.md section 6): runc (crun fails on cgroup v1 hybrid), cgroupfs (no systemd), and
rlimits at or below the hard limits (root lacks CAP_SYS_RESOURCE, so podman's default
RLIMIT_NOFILE of 1048576 fails every container).
"""

import contextlib
import fcntl
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass
from pathlib import Path

from devstack import datafiles
from devstack.install import apt_install
from devstack.paths import CACHE, ROOT, ensure_dir

Progress = Callable[[str], None]

REGISTRY = "localhost"  # podman's name for images that never came from a registry
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PODMAN_DIR = CACHE / "podman"
ROOTFS_DIR = CACHE / "images"
UV_CACHE = Path(os.environ.get("UV_CACHE_DIR", CACHE / "uv"))
CA_BUNDLE = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
RUNC = "/usr/sbin/runc"


def _ulimit(name: str, kind: int, ceiling: int) -> str:
    hard = resource.getrlimit(kind)[1]
    limit = ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)
    return f"--ulimit={name}={limit}:{limit}"


# A container's rlimits at most this machine's hard limits: podman's default nofile (1048576) is
# above them here, and root cannot raise them (no CAP_SYS_RESOURCE). Podman starts runc with at
# most 32768 processes, so nproc cannot be higher either.
ULIMITS = (
    _ulimit("nofile", resource.RLIMIT_NOFILE, 1048576),
    _ulimit("nproc", resource.RLIMIT_NPROC, 32768),
)
KEEP_TAGS = 3  # per image: a few trees back (clones at other commits share the storage)

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# python3.11 runs the venv (uv makes it: no python3.11-venv needed), passwd has the Dockerfile's
# useradd, nginx is the gateway.
BASE_PACKAGES = ("python3.11", "ca-certificates", "tzdata", "passwd", "nginx")
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_RECIPE = 1  # bump when `_make_rootfs` changes: the base and every image on it are rebuilt
GATEWAY_NGINX_VERSION = "1.22.1"  # Debian bookworm's; the operator's nginx.conf depends on it
PAUSE_ENTRYPOINT = 'ENTRYPOINT ["/catatonit", "-P"]'  # -P: reap zombies, as a pause container


@dataclass(frozen=True)
class Images:
    """Full references of the images a SocialHub on the node runs, e.g. localhost/socialhub:ab12."""

    services: str
    operator: str
    gateway: str
    pause: str

    def refs(self) -> tuple[str, ...]:
        return astuple(self)


class BuildError(RuntimeError):
    pass


def _print(line: str) -> None:
    print(line, flush=True)


def podman(*args: str) -> list[str]:
    """A podman command line on the project's own storage, with this machine's runtime flags."""
    return [
        "podman",
        "--root",
        str(PODMAN_DIR / "root"),
        "--runroot",
        str(PODMAN_DIR / "run"),
        "--tmpdir",
        str(PODMAN_DIR / "tmp"),
        "--storage-driver",
        "overlay",
        "--runtime",
        RUNC,
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
        *args,
    ]


def build_all(progress: Progress = _print) -> Images:
    """Every image, each built only if no image carries its content hash yet."""
    apt_install("podman", "runc", "debootstrap", "catatonit")
    started = time.monotonic()
    with _build_lock():
        base = _base_image(progress)
        uv = _uv_image(progress)
        key = _digest(
            base, uv, DOCKERFILE.read_bytes(), DOCKERIGNORE.read_bytes(), *context_fingerprint()
        )
        build_args = [
            f"--file={DOCKERFILE}",
            f"--build-arg=PYTHON_IMAGE={base}",
            f"--build-arg=UV_IMAGE={uv}",
        ]
        images = Images(
            services=_ensure(
                f"{REGISTRY}/socialhub:{key}",
                progress,
                lambda ref: _build(ref, [*build_args, "--target=services", str(ROOT)], progress),
            ),
            operator=_ensure(
                f"{REGISTRY}/socialhub-operator:{key}",
                progress,
                lambda ref: _build(ref, [*build_args, "--target=operator", str(ROOT)], progress),
            ),
            gateway=_gateway_image(base, progress),
            pause=_pause_image(progress),
        )
        _forget_old_tags(images)
    progress(f"images ready in {time.monotonic() - started:.0f}s: {' '.join(images.refs())}")
    return images


def _forget_old_tags(images: Images) -> None:
    """Drop all but the newest KEEP_TAGS tags of each image: every changed tree adds a new venv
    layer of some 450 MB. An image a container still uses stays (podman refuses to remove it)."""
    for ref in images.refs():
        repository = ref.rsplit(":", 1)[0]
        tags = _check_output(
            podman(
                "images",
                "--sort=created",
                f"--filter=reference={repository}",
                "--format={{.Repository}}:{{.Tag}}",
            )
        ).split()
        stale = [tag for tag in tags[KEEP_TAGS:] if tag != ref]
        if stale:
            subprocess.run(podman("rmi", *stale), capture_output=True, check=False)


def load(images: Images, containerd_socket: Path) -> None:
    """Import the images into containerd's Kubernetes namespace, skipping those it has."""
    apt_install("containerd")  # ctr
    ctr = ["ctr", "-a", str(containerd_socket), "-n", "k8s.io"]
    present = set(_check_output([*ctr, "images", "ls", "-q"]).split())
    with _build_lock():  # a build elsewhere may be dropping old tags
        for ref in images.refs():
            if ref in present:
                continue
            with tempfile.TemporaryDirectory(dir=ensure_dir(PODMAN_DIR / "tmp")) as scratch:
                archive = Path(scratch) / "image.tar"
                _check_output(
                    podman("save", "--quiet", "--format=oci-archive", "-o", str(archive), ref)
                )
                _check_output([*ctr, "images", "import", str(archive)])


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One build or load at a time per cache: clones share podman's storage and the rootfs."""
    with (ensure_dir(PODMAN_DIR) / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _digest(*parts: str | bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "big") + data)
    return hasher.hexdigest()[:12]


def context_fingerprint() -> list[str]:
    """Path, mode and content hash of each file the Dockerfile copies from the context.

    The files are git's (tracked or untracked, not ignored), read from the working tree: so
    caches such as __pycache__ never change the tag, and uncommitted edits do.
    """
    sources = [
        word
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for word in line.split()[1:-1]
        if not word.startswith("--")
    ]
    listed = _check_output(
        [
            "git",
            "-C",
            str(ROOT),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            *sources,
        ]
    )
    fingerprint = []
    for name in sorted(set(filter(None, listed.split("\0")))):
        path = ROOT / name
        if path.is_file():  # a tracked file deleted in the working tree is not copied
            content = hashlib.sha256(path.read_bytes()).hexdigest()
            fingerprint.append(f"{name} {path.stat().st_mode & 0o111:o} {content}")
    return fingerprint


def _ensure(ref: str, progress: Progress, build: Callable[[str], None]) -> str:
    """`ref` if podman has it, else what `build` makes of it."""
    exists = subprocess.run(podman("image", "exists", ref), check=False).returncode == 0
    if exists:
        progress(f"  {ref}: built before")
    else:
        started = time.monotonic()
        progress(f"  {ref}: building ...")
        build(ref)
        progress(f"  {ref}: built in {time.monotonic() - started:.0f}s")
    return ref


def _base_image(progress: Progress) -> str:
    """Debian bookworm with python3.11 and nginx, from a rootfs tarball kept in the cache."""
    key = _digest(SUITE, MIRROR, SECURITY_MIRROR, str(BASE_RECIPE), *BASE_PACKAGES)

    def build(ref: str) -> None:
        tarball = ROOTFS_DIR / f"rootfs-{SUITE}-{key}.tar"
        if not tarball.exists():
            _make_rootfs(tarball, progress)
        _run(
            podman(
                "import",
                "--quiet",
                f"--change=ENV PATH={BASE_PATH}",
                "--change=ENV LANG=C.UTF-8",
                str(tarball),
                ref,
            ),
            what="import the base",
            progress=progress,
        )

    return _ensure(f"{REGISTRY}/socialhub-base:{key}", progress, build)


def _make_rootfs(tarball: Path, progress: Progress) -> None:
    """debootstrap, then the security updates, without apt's caches, as one tarball."""
    with tempfile.TemporaryDirectory(dir=ensure_dir(ROOTFS_DIR)) as scratch:
        rootfs = Path(scratch) / "rootfs"
        # A private mount namespace: debootstrap's /proc and /sys mounts in the target go away
        # with it, even when debootstrap fails halfway.
        _run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(rootfs),
                MIRROR,
            ],
            what=f"debootstrap {SUITE} ({', '.join(BASE_PACKAGES)})",
            progress=progress,
        )
        (rootfs / "etc/apt/sources.list").write_text(
            f"deb {MIRROR} {SUITE} main\ndeb {MIRROR} {SUITE}-updates main\n"
            f"deb {SECURITY_MIRROR} {SUITE}-security main\n"
        )
        # Upgrades must not start nginx: the chroot shares this machine's network.
        policy = rootfs / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _run(
            [
                "chroot",
                str(rootfs),
                "sh",
                "-ec",
                "apt-get update -qq && apt-get upgrade -y -qq && apt-get clean",
            ],
            what="security updates",
            progress=progress,
            env=env,
        )
        policy.unlink()
        for junk in (
            "var/lib/apt/lists",
            "var/cache/apt",
            "var/log",
            "usr/share/man",
            "usr/share/info",
            "usr/share/locale",
            "tmp",
        ):
            shutil.rmtree(rootfs / junk)
            (rootfs / junk).mkdir()
        (rootfs / "tmp").chmod(0o1777)
        for host_file in ("etc/resolv.conf", "etc/hostname"):  # the runtime mounts its own
            (rootfs / host_file).write_text("")
        partial = tarball.with_suffix(".part")
        # /dev is the runtime's: its device nodes stay out of the image.
        _run(
            [
                "tar",
                "--numeric-owner",
                "--exclude=./dev/*",
                "-C",
                str(rootfs),
                "-cf",
                str(partial),
                ".",
            ],
            what="pack the rootfs",
            progress=progress,
        )
        partial.rename(tarball)


def _uv_image(progress: Progress) -> str:
    """An image holding only /uv, like ghcr.io/astral-sh/uv: the uv `make venv` installed."""
    found = shutil.which("uv") or CACHE / "tools" / "bin" / "uv"
    binary = Path(found)
    if not binary.is_file():
        raise BuildError(f"no uv on PATH nor at {binary}: run `make venv` (scripts/bootstrap.sh)")
    key = _digest(binary.read_bytes())
    return _ensure(
        f"{REGISTRY}/socialhub-uv:{key}",
        progress,
        lambda ref: _import_files(ref, {"uv": binary}, [], progress),
    )


def _gateway_image(base: str, progress: Progress) -> str:
    containerfile = datafiles.render("images/gateway.Containerfile", base=base)

    def build(ref: str) -> None:
        with tempfile.TemporaryDirectory(dir=ensure_dir(PODMAN_DIR / "tmp")) as context:
            (Path(context) / "Containerfile").write_text(containerfile)
            _build(ref, [context], progress)

    return _ensure(f"{REGISTRY}/socialhub-gateway:{_digest(containerfile)}", progress, build)


def _pause_image(progress: Progress) -> str:
    """The sandbox image of every pod: Debian's static catatonit, alone in a scratch image."""
    binary = Path("/usr/bin/catatonit")
    key = _digest(binary.read_bytes(), PAUSE_ENTRYPOINT)
    return _ensure(
        f"{REGISTRY}/socialhub-pause:{key}",
        progress,
        lambda ref: _import_files(
            ref, {"catatonit": binary}, [f"--change={PAUSE_ENTRYPOINT}"], progress
        ),
    )


def _import_files(ref: str, files: dict[str, Path], changes: list[str], progress: Progress) -> None:
    """A one-layer image of `files` (name in the image's root -> file here)."""
    with tempfile.TemporaryDirectory(dir=ensure_dir(PODMAN_DIR / "tmp")) as scratch:
        layer = Path(scratch) / "layer.tar"
        with tarfile.open(layer, "w") as tar:
            for name, path in files.items():
                tar.add(path, arcname=name)
        _run(
            podman("import", "--quiet", *changes, str(layer), ref),
            what=f"import {ref}",
            progress=progress,
        )


def _build(ref: str, args: list[str], progress: Progress) -> None:
    """`podman build` reaching PyPI as this machine does, with its uv cache.

    The host network, and this machine's CA bundle in place of the image's, for uv set to use it
    (`native-tls`): egress here may pass a TLS proxy whose CA only this machine trusts. Both are
    mounted for RUN steps only, so no image carries them.
    """
    uv_config = ensure_dir(PODMAN_DIR) / "uv.toml"
    uv_config.write_text("native-tls = true\n")
    _run(
        podman(
            "build",
            "--pull=never",
            "--network=host",
            *ULIMITS,
            f"--volume={ensure_dir(UV_CACHE)}:/root/.cache/uv",
            f"--volume={CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro",
            f"--volume={uv_config}:/etc/uv/uv.toml:ro",
            "-t",
            ref,
            *args,
        ),
        what=f"build {ref}",
        progress=progress,
    )


def _run(
    argv: list[str],
    what: str,
    progress: Progress,
    env: dict[str, str] | None = None,
    heartbeat: float = 30.0,
) -> None:
    """Run a long step with its output in a log file, saying every `heartbeat` s that it runs."""
    log = ensure_dir(PODMAN_DIR / "logs") / (re.sub(r"[^A-Za-z0-9.-]+", "_", what) + ".log")
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )
        while True:
            try:
                process.wait(timeout=heartbeat)
                break
            except subprocess.TimeoutExpired:
                progress(f"    {what}: {time.monotonic() - started:.0f}s")
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise BuildError(f"{what} failed (exit {process.returncode}); log {log}:\n{tail}")


def _check_output(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout


def main() -> int:
    images = build_all()
    for field, ref in zip(Images.__dataclass_fields__, images.refs(), strict=True):
        print(f"{field}: {ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
