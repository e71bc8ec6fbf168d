"""Installing what is missing: Debian packages, cached downloads."""

import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

from devstack.paths import ensure_dir

_apt_updated = False


def apt_install(*packages: str) -> None:
    """Install Debian packages that are not installed yet (needs root or sudo)."""
    missing = [p for p in packages if not _dpkg_installed(p)]
    if not missing:
        return
    global _apt_updated
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing Debian packages: {' '.join(missing)}", flush=True)
    if not _apt_updated:
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
        _apt_updated = True
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _dpkg_installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() == "install ok installed"


def download(url: str, target: Path) -> Path:
    """Download `url` to `target` once; later calls reuse the cached file."""
    if target.exists():
        return target
    ensure_dir(target.parent)
    partial = target.with_suffix(target.suffix + ".part")
    print(f"downloading {url}", flush=True)
    with urllib.request.urlopen(url, timeout=120) as response, partial.open("wb") as out:
        shutil.copyfileobj(response, out)
    partial.rename(target)
    return target
