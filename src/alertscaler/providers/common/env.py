"""The ``env`` setting of the providers that run programs (``exec``, ``tosca``): one check of the variables a
policy file adds to a child's environment. Called from those families' config validators.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def checked_env(env: dict[str, str], reserved: Callable[[str], str | None]) -> dict[str, str]:
    """An ``env`` setting of a provider that runs programs (exec, tosca): names must be variable names and not
    ``reserved`` (which says why, or None), values free of NUL. Raises ValueError naming the first problem."""
    for name, text in env.items():
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
        why = reserved(name)
        if why is not None:
            raise ValueError(why)
        if "\x00" in text:
            raise ValueError(f"the value of {name} contains a NUL character")
    return env
