"""Where things live: the repository, the download/build cache and the run state."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SOCIALHUB_CACHE", Path.home() / ".cache" / "socialhub"))
STATE = Path(os.environ.get("SOCIALHUB_STATE", ROOT / ".state"))
INFRA_STATE = STATE / "infra"


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
