"""loadtests/ is not a package: Locust runs each file with that directory on sys.path, and mypy
reads it as a root of its own (pyproject's mypy_path). The tests here import its modules the
same way, by their own names; appended, so no installed module is shadowed by one of them."""

import sys

from devstack.paths import ROOT

sys.path.append(str(ROOT / "loadtests"))
