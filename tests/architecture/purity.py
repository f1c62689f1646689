"""AST checks for the architecture rules that ``lint-imports`` cannot see, because they are about calls or
about *where* in a module an import sits.

Owns two rules, run by ``make lint`` (``python tests/architecture/purity.py``) and by
``tests/architecture/test_purity.py`` / ``test_contracts.py`` (also on mutated copies of ``src/``):

- ``decide-calls``: ``decide/`` is pure and the clock is injected. No call reads the clock
  (``datetime.now/utcnow/today``, ``date.today``), and nothing from ``time``, ``os``, ``random``, ``uuid``,
  ``secrets``, ``logging``, ``sys``, ``subprocess``, ``socket``, ``pathlib``, ``shutil`` or ``tempfile``
  is used, nor ``open``, ``print``, ``input``, ``__import__``, ``exec``, ``eval`` or ``breakpoint``.
  (``lint-imports`` contract ``decide-pure`` forbids importing those modules; this catches the calls,
  e.g. ``datetime.now()`` through the ``datetime`` that ``decide`` may import for its types.)
- ``lazy-sdk``: optional SDKs (the cloud clients and the other pip extras) are never imported when a
  module is imported: not at module level nor in a class body, only inside functions (or under
  ``if TYPE_CHECKING:``), so a missing optional SDK does not break the other providers.
  (``lint-imports`` contract ``sdk-only-in-providers`` says *which* packages may import them at all.)

Names are resolved through the module's own imports, so ``from datetime import datetime as dt;
dt.now()`` and ``import time as t; t.time()`` are caught too.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Clock reads, by fully qualified name.
CLOCK_CALLS = frozenset({
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "datetime.datetime.today",
    "datetime.date.today",
})
#: Modules whose every use in ``decide/`` is an effect (clock, OS, randomness, logging, files, network).
IMPURE_MODULES = frozenset({
    "time", "os", "random", "uuid", "secrets", "logging", "sys", "subprocess", "socket", "pathlib", "shutil",
    "tempfile",
})
#: Builtins with an effect.
IMPURE_BUILTINS = frozenset({"open", "print", "input", "__import__", "exec", "eval", "breakpoint"})
#: Import roots that are optional (pip extras), so must be imported lazily.
OPTIONAL_SDKS = frozenset({
    "openstack", "keystoneauth1", "linode_api4", "kubernetes", "requests", "urllib3", "matplotlib", "psycopg",
})

DEFAULT_PACKAGE = Path(__file__).resolve().parents[2] / "src" / "alertscaler"


@dataclass(frozen=True)
class Violation:
    rule: str   # "decide-calls" or "lazy-sdk"
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"


def check(package: Path = DEFAULT_PACKAGE) -> list[Violation]:
    """Every violation in the package directory ``package`` (``.../alertscaler``), in file and line order."""
    found: list[Violation] = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        in_decide = (package / "decide") in path.parents
        if not in_decide and not any(sdk in text for sdk in OPTIONAL_SDKS):
            continue  # nothing to check: skip the parse
        tree = ast.parse(text, filename=str(path))
        if in_decide:
            found.extend(_decide_calls(path, tree))
        found.extend(_lazy_sdk(path, tree))
    return found


def _decide_calls(path: Path, tree: ast.Module) -> Iterator[Violation]:
    names = _imported_names(tree)
    # ``a.b`` in ``a.b.c``: reported once, as the whole chain.
    inner = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in IMPURE_BUILTINS \
                and node.func.id not in names:
            yield Violation("decide-calls", path, node.lineno, f"calls {node.func.id}()")
        elif isinstance(node, ast.Attribute | ast.Name) and isinstance(node.ctx, ast.Load):
            qualified = _qualified(node, names)
            if qualified is None:
                continue
            if qualified in CLOCK_CALLS:
                yield Violation("decide-calls", path, node.lineno, f"reads the clock ({qualified}): take `now`")
            elif qualified.split(".")[0] in IMPURE_MODULES and id(node) not in inner:
                yield Violation("decide-calls", path, node.lineno, f"uses {qualified}")


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name → fully qualified name, for every absolute import anywhere in the module."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    names[root] = root
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _qualified(node: ast.expr, names: dict[str, str]) -> str | None:
    """``a.b.c`` with ``a`` resolved through the module's imports; None when ``a`` was not imported."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return None
    return ".".join([names[node.id], *reversed(parts)])


def _lazy_sdk(path: Path, tree: ast.Module) -> Iterator[Violation]:
    for node in _import_time_statements(tree.body):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        for module in modules:
            if module.split(".")[0] in OPTIONAL_SDKS:
                yield Violation("lazy-sdk", path, node.lineno,
                                f"imports the optional SDK {module} at import time: import it inside the function")


def _import_time_statements(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements run when the module is imported: not function bodies, not ``if TYPE_CHECKING:``."""
    for node in body:
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_time_statements(node.orelse)
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                for child in children:
                    if isinstance(child, ast.stmt):
                        yield from _import_time_statements([child])
                    elif isinstance(child, ast.ExceptHandler | ast.match_case):
                        yield from _import_time_statements(child.body)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("package", nargs="?", type=Path, default=DEFAULT_PACKAGE,
                        help="the alertscaler package directory (default: src/alertscaler of this checkout)")
    args = parser.parse_args(argv)
    violations = check(args.package)
    for violation in violations:
        print(violation)
    print(f"purity: {len(violations)} violation(s) in {args.package}", file=sys.stderr)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
