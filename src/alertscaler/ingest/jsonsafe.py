"""JSON request bodies that can always be stored: parsed with limits, every string and number checked, every
refusal naming the field (``alerts[3].labels.instance: lone surrogate not allowed``). Used by
``ingest.alertmanager`` (the webhook) and ``api`` (the other JSON bodies).

What is refused, and why (each raises ``InputError``, 422 with the field's path):

- a lone surrogate (``"\\udfff"``) in any string or key: it cannot be encoded as UTF-8, so neither SQLite nor
  PostgreSQL can store it, nor can a decision that quotes it, nor can an exec command's stdin carry it;
- a NUL character (``"\\u0000"``) in any string or key: PostgreSQL's text type cannot hold it (a permanent
  error, never "retry later");
- nesting deeper than ``MAX_DEPTH`` objects/arrays (Alertmanager's webhook is 4 deep): deeper documents make
  the parser, and any later re-parse of the stored body, run out of stack;
- an integer literal over ``MAX_INT_DIGITS`` digits (Python refuses to convert it; nothing needs one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from alertscaler.model.errors import InputError

MAX_DEPTH = 32
MAX_INT_DIGITS = 4300  # Python's own limit for int <-> str conversion (sys.get_int_max_str_digits default)

_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
# Only an escape can put a lone surrogate or a NUL into a parsed string (raw control characters are refused by
# the JSON parser), or, in bytes, a surrogate encoded as if it were a character (json.loads decodes bytes with
# "surrogatepass": ED A0..BF xx): a body with neither needs no walk over its strings.
_BAD_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")
_BAD_ESCAPE_UTF8 = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)|\xed[\xa0-\xbf]")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]')
_SHOWN_KEY = 64


class _LongInt:
    """Stands in for an integer literal too long to convert; reported with its path by ``check``."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _parse_int(text: str) -> int | _LongInt:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        return _LongInt(digits)
    return int(text)


def loads(body: bytes | str, what: str = "body") -> Any:
    """Parse a JSON body and ``check`` it. Not JSON at all: 400; JSON that cannot be stored: 422 naming the field."""
    try:
        data = json.loads(body, parse_int=_parse_int)
    except RecursionError:
        raise InputError(f"nested deeper than {MAX_DEPTH} levels", field=_deep_field(body)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{what} is not valid JSON: {exc}", status_code=400) from None
    check(data, strings=_may_hold_bad_chars(body))
    return data


def _may_hold_bad_chars(body: bytes | str) -> bool:
    if isinstance(body, str):
        return _BAD_ESCAPE.search(body) is not None
    if json.detect_encoding(body) != "utf-8":
        return True  # UTF-16/32: rare, walk every string
    return _BAD_ESCAPE_UTF8.search(body) is not None


def check(data: Any, strings: bool = True) -> None:
    """Refuse what cannot be stored anywhere in ``data`` (see the module's docstring). ``strings=False`` skips the
    per-string test when the caller knows no string can hold a lone surrogate or NUL."""
    if strings or not _shape_ok(data):
        _walk(data, strings)


def _shape_ok(data: Any) -> bool:
    """No container deeper than ``MAX_DEPTH`` and no over-long integer (the fast test: no paths kept)."""
    kind = type(data)
    if kind is _LongInt:
        return False
    if kind is not dict and kind is not list:
        return True
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        for item in value.values() if type(value) is dict else value:
            kind = type(item)
            if kind is dict or kind is list:
                stack.append((item, depth + 1))
            elif kind is _LongInt:
                return False
    return True


def _walk(data: Any, strings: bool) -> None:
    """Every node with its path: raises ``InputError`` at the first one that cannot be stored."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if strings and (bad := _BAD_CHAR.search(value)):
                raise InputError(_what(bad.group()), field=field_path(path))
        elif isinstance(value, dict):
            if len(path) >= MAX_DEPTH:
                raise InputError(f"nested deeper than {MAX_DEPTH} levels", field=field_path(path))
            for key, item in value.items():
                if strings and (bad := _BAD_CHAR.search(key)):
                    raise InputError(_what(bad.group()) + " (in a key)", field=field_path((*path, key)))
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            if len(path) >= MAX_DEPTH:
                raise InputError(f"nested deeper than {MAX_DEPTH} levels", field=field_path(path))
            stack.extend((item, (*path, i)) for i, item in enumerate(value))
        elif isinstance(value, _LongInt):
            raise InputError(f"an integer of {value.digits} digits is not allowed (at most {MAX_INT_DIGITS})",
                             field=field_path(path))


def _what(char: str) -> str:
    return "NUL character not allowed" if char == "\x00" else "lone surrogate not allowed"


def field_path(parts: Iterable[str | int]) -> str:
    """``("alerts", 3, "labels", "instance")`` → ``alerts[3].labels.instance``; a key's unstorable characters are
    shown escaped (``\\udfff``) and a long key shortened, so that the message itself can always be sent."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        shown = part if len(part) <= _SHOWN_KEY else part[:_SHOWN_KEY] + "…"
        shown = _BAD_CHAR.sub(lambda m: f"\\u{ord(m.group()):04x}", shown)
        out += f".{shown}" if out else shown
    return out or "body"


def _deep_field(body: bytes | str) -> str:
    """Where a document too deep for the parser first goes deeper than ``MAX_DEPTH`` (a scan of its tokens)."""
    try:
        text = body if isinstance(body, str) else body.decode(json.detect_encoding(body))
    except (UnicodeDecodeError, LookupError):
        return "body"
    path: list[list[Any]] = []  # per open container: [is_object, key or index, expecting a key]
    for match in _TOKEN.finditer(text):
        token = match.group()
        char = token[0]
        if char in "{[":
            if len(path) >= MAX_DEPTH:
                return field_path(p[1] for p in path)
            path.append([char == "{", "" if char == "{" else 0, char == "{"])
        elif char in "}]":
            if path:
                path.pop()
        elif char == "," and path:
            if path[-1][0]:
                path[-1][2] = True
            else:
                path[-1][1] += 1
        elif char == '"' and path and path[-1][0] and path[-1][2]:
            try:
                path[-1][1] = json.loads(token)
            except ValueError:
                path[-1][1] = "?"
            path[-1][2] = False
    return "body"
