"""The configuration files devstack writes, kept as files in `devstack/data/`, not in code.

They ship inside the package (`importlib.resources`), so an installed devstack finds them as a
checkout does. A template names its values `${name}`; nothing else is touched, because the
files carry other tools' own syntax (kwok's Go templates say `$now`, TOML and the Corefile use
braces), so no escaping is ever needed.
"""

import re
from importlib.resources import files
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")


def path(name: str) -> Path:
    """The file or directory `devstack/data/<name>` on disk, for tools that read it themselves
    (`mvn -f`, `git apply`): devstack runs from a checkout or an installed wheel, never a zip."""
    resource = files("devstack").joinpath("data", name)
    if not isinstance(resource, Path):
        raise RuntimeError(f"devstack's data is not on disk here ({resource})")
    return resource


def text(name: str) -> str:
    """The file `devstack/data/<name>` as text."""
    return files("devstack").joinpath("data", name).read_text()


def render(name: str, **values: object) -> str:
    """The template `devstack/data/<name>` with its `${...}` placeholders filled in.

    A placeholder without a value, or a value without a placeholder, is a mistake: it raises.
    """
    template = text(name)
    wanted = set(PLACEHOLDER.findall(template))
    if wanted != set(values):
        raise KeyError(f"{name} takes {sorted(wanted)}, got {sorted(values)}")
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), template)
