"""Reading what cloud APIs and policy files give the providers: API timestamps, names sorted as people read
them, and a template file named by a provider's config. Pure (but ``read_template``, which reads one file).

Called by the families' own interpretation modules (``kubernetes.pods``, ``openstack.nova.servers``,
``openstack.heat.events``), by ``common.victims`` and by the configs that accept a ``user_data_file``
(``linode.config``, ``openstack.nova.provider``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Before every real timestamp: where an unknown creation time sorts.
EARLIEST = datetime.min.replace(tzinfo=UTC)

_DIGITS = re.compile(r"(\d+)")


def parse_timestamp(value: Any) -> datetime | None:
    """An API timestamp (RFC 3339 / ISO 8601: ``2026-11-22T02:01:55Z``, or naive ISO, read as UTC) as an aware
    datetime; None when absent, not text or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key reading digit runs as numbers: ``web-9-1`` < ``web-10-1``."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(text) if part)


def read_template(file: Path) -> str:
    """The text of a template file (``user_data_file``); ``ValueError`` saying why it cannot be read (raised
    inside a pydantic validator, it becomes a problem of the policy file)."""
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{file} is not UTF-8 text") from None
