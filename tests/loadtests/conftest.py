"""loadtests/ is not a package: Locust runs each file with that directory on sys.path, and mypy
reads it as a root of its own (pyproject's mypy_path). The tests here import its modules the
same way, by their own names."""

import sys

from devstack.paths import ROOT

sys.path.insert(0, str(ROOT / "loadtests"))
