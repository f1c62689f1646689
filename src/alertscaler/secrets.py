"""Secret references in configuration: ``<name>``, ``<name>_env: VAR`` or ``<name>_file: PATH``.

Used by ``config`` and by provider config models (in a pydantic ``model_validator(mode="before")``), so that
the model only ever sees ``<name>`` and holds it as ``SecretStr``. Error messages name the variable or file,
never the value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def resolve_secret(data: Any, name: str, base: Path | None) -> Any:
    """Turn ``name_env`` / ``name_file`` into ``name`` (the value), so the model only sees ``name``."""
    if not isinstance(data, dict):
        return data
    given = [k for k in (name, f"{name}_env", f"{name}_file") if data.get(k) is not None]
    if len(given) > 1:
        raise ValueError(f"give only one of {', '.join(given)}")
    out = dict(data)
    if f"{name}_env" in out:
        var = out.pop(f"{name}_env")
        if var is not None:
            if var not in os.environ:
                raise ValueError(f"{name}_env: environment variable {var} is not set")
            out[name] = os.environ[var]
    if f"{name}_file" in out:
        path = out.pop(f"{name}_file")
        if path is not None:
            file = Path(path) if base is None or Path(path).is_absolute() else base / path
            try:
                out[name] = file.read_text().strip()
            except OSError as exc:
                raise ValueError(f"{name}_file: cannot read {file}: {exc.strerror}") from None
    return out
