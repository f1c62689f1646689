"""What every ``alertscaler`` command shares: exit codes, the two consoles, ``CliError``, argument types,
loading a policy file and printing its problems. Imported by the other ``cli`` modules."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import yaml
from rich.console import Console

from alertscaler.api.openapi import MAX_DURATION_S
from alertscaler.config import PolicyFile, load_policy_file
from alertscaler.model.durations import parse_duration
from alertscaler.model.errors import ConfigError

EXIT_OK, EXIT_NO, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_PIPE = 141  # stdout closed by its reader (128 + SIGPIPE, as a command the signal killed)
DEFAULT_CONFIG = "alertscaler.yml"

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_NO) -> None:
        super().__init__(message)
        self.code = code


def non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return int(text)


def duration_arg(text: str) -> float:
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a duration like 300, 90s or 5m, got {text!r}") from None


def duration_text(text: str) -> str:
    """A duration option passed on as written (``30m``), once checked to be one the API takes (more than 0, at
    most ``MAX_DURATION_S``: a pause's ``--for``, a hold)."""
    seconds = duration_arg(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0s, got {text!r}")
    if seconds > MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_DURATION_S / 86400:g}d, got {text!r}")
    return text


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def load(path: str) -> PolicyFile:
    if not os.path.exists(path):
        raise CliError(f"policy file {path} not found (give one with -c FILE)", EXIT_USAGE)
    return load_policy_file(path)


def print_problems(exc: ConfigError) -> None:
    where = f"{exc.source}: " if exc.source else ""
    err.print(f"[red]invalid[/red] {where}{len(exc.problems)} problem(s)", highlight=False)
    for p in exc.problems:
        err.print(f"  {p}", highlight=False, markup=False)


OUTPUTS = ("table", "json", "yaml")


class _Structured:
    """The format ``print_json`` writes: ``json`` (``--json``, ``-o json``) or ``yaml`` (``-o yaml``); set by
    ``parsing.main`` for each run."""

    format = "json"


def output_args(sp: argparse.ArgumentParser, shown: str = "a table") -> None:
    """``-o table|json|yaml`` and ``--json`` (the same as ``-o json``) for a command that prints what it read."""
    sp.add_argument("-o", "--output", choices=OUTPUTS, default=None,
                    help=f"table: {shown} (plain tab-separated lines when piped); json or yaml: every field")
    sp.add_argument("--json", action="store_true", help="the same as -o json")


def set_output(output: str | None) -> None:
    _Structured.format = "yaml" if output == "yaml" else "json"


def print_json(data: Any) -> int:
    """``data`` as JSON, or YAML with ``-o yaml`` (the same fields, in the API's order)."""
    if _Structured.format == "yaml":
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False), end="")
    else:
        print(json.dumps(data, indent=2))
    return EXIT_OK
