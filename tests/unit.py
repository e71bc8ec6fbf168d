"""Which tests are unit tests: `make unit` runs them (`pytest --unit`), in seconds, no server.

A test is a unit test unless it is marked `slow`, `kube` or `node`, or uses, directly or through
other fixtures, a fixture defined in this tree that is not declared with `@unit_fixture`. So
every server fixture (the backing servers, the platform, the gateway's stand-ins, private
servers of one module) keeps its tests out by itself, and nobody keeps a list of tests; a new
fixture that starts nothing joins with `@unit_fixture`. Under `--unit`, starting a devstack
server fails the test, so a misjudged fixture shows up at once instead of slowing the loop.
"""

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from devstack.servers.base import Server

F = TypeVar("F", bound=Callable[..., Any])
SERVER_MARKERS = frozenset({"slow", "kube", "node"})
_UNIT_FIXTURES: set[object] = set()


def unit_fixture(function: F) -> F:
    """Declare a fixture of this tree that starts nothing outside the test process (put it
    under `@pytest.fixture`): the tests using it stay unit tests."""
    _UNIT_FIXTURES.add(function)
    return function


def is_unit(item: pytest.Item) -> bool:
    """The rule above. Each fixture is judged by the module that defines it: pytest's own and
    its plugins' (`tmp_path`, `monkeypatch`, parameters) start nothing."""
    if not isinstance(item, pytest.Function):
        return False
    if any(item.get_closest_marker(name) for name in SERVER_MARKERS):
        return False
    for definitions in item._fixtureinfo.name2fixturedefs.values():
        function = definitions[-1].func
        if function.__module__.split(".")[0] == "tests" and function not in _UNIT_FIXTURES:
            return False
    return True


def forbid_servers() -> None:
    """Under `--unit`: a test that starts a server fails, naming the server."""

    def refuse(server: Server) -> None:
        raise RuntimeError(
            f"a unit test started {server.name}: give the test a server fixture "
            "(or mark it slow) so that make unit leaves it out"
        )

    pytest.MonkeyPatch().setattr(Server, "start", refuse)  # for the whole run
