"""The configuration files devstack writes, kept as files in `devstack/data/`, not in code.

They ship inside the package (`importlib.resources`), so an installed devstack finds them as a
checkout does. A template names its values `${name}`; nothing else is touched, because the
files carry other tools' own syntax (kwok's Go templates say `$now`, TOML and the Corefile use
braces), so no escaping is ever needed.
"""

import re
from importlib.resources import files

PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")


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
