"""The AST checker ``tests/architecture/purity.py`` on small packages written here, and on the real tree.

Fast (in-process, no subprocess); the mutated copies of the real ``src/`` are in ``test_contracts.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.architecture import purity

CLOCK = "reads the clock"

DECIDE_CASES: dict[str, tuple[str, list[str]]] = {
    "datetime-now": ("from datetime import datetime\nx = datetime.now()\n", [CLOCK]),
    "datetime-utcnow-module": ("import datetime\nx = datetime.datetime.utcnow()\n", [CLOCK]),
    "datetime-today-aliased": ("from datetime import datetime as dt\nx = dt.today()\n", [CLOCK]),
    "date-today": ("from datetime import date\nx = date.today()\n", [CLOCK]),
    "time-aliased": ("import time as t\nx = t.monotonic()\n", ["uses time.monotonic"]),
    "os-environ-from-import": ("from os import environ\nx = environ['TZ']\n", ["uses os.environ"]),
    "os-environ-get-once": ("import os\nx = os.environ.get('TZ')\n", ["uses os.environ.get"]),
    "random-in-function": ("def f() -> float:\n    import random\n    return random.random()\n",
                           ["uses random.random"]),
    "uuid": ("import uuid\nx = uuid.uuid4()\n", ["uses uuid.uuid4"]),
    "logging": ("import logging\nlog = logging.getLogger(__name__)\n", ["uses logging.getLogger"]),
    "open": ("x = open('f').read()\n", ["calls open()"]),
    "print": ("print('x')\n", ["calls print()"]),
    # handing the clock over is reading it; pure uses of datetime are fine, and so is a shadowed builtin
    "datetime-now-reference": ("from datetime import datetime, timedelta\n"
                      "x = datetime.fromtimestamp(0) + timedelta(1)\ny = datetime.now\n", [CLOCK]),
    "clean": ("from datetime import datetime, timedelta\nx = datetime(2026, 1, 1) + timedelta(1)\n", []),
    "shadowed-builtin": ("from io import open\nx = open\n", []),
}

LAZY_CASES: dict[str, tuple[str, list[int]]] = {
    "top-level": ("import openstack\n", [1]),
    "from-import": ("from linode_api4 import LinodeClient\n", [1]),
    "submodule": ("import kubernetes.client\n", [1]),
    "in-try": ("try:\n    import keystoneauth1\nexcept ImportError:\n    pass\n", [2]),
    "in-except": ("try:\n    pass\nexcept ImportError:\n    import requests\n", [4]),
    "in-class-body": ("class A:\n    import urllib3\n", [2]),
    "type-checking-else": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import openstack\n"
                           "else:\n    import matplotlib\n", [5]),
    "inside-function": ("def f() -> None:\n    import openstack\n    from linode_api4 import X\n", []),
    "inside-method": ("class A:\n    def f(self) -> None:\n        import kubernetes\n", []),
    "type-checking-only": ("import typing\nif typing.TYPE_CHECKING:\n    import openstack\n", []),
    "core-dependency": ("import httpx\nimport sqlalchemy\n", []),
    "relative": ("from . import kubernetes\n", []),
}


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "alertscaler"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package


@pytest.mark.parametrize(("code", "messages"), list(DECIDE_CASES.values()), ids=list(DECIDE_CASES))
def test_decide_calls(tmp_path: Path, code: str, messages: list[str]) -> None:
    package = _package(tmp_path, {"decide/mod.py": code})
    found = purity.check(package)
    assert [v.rule for v in found] == ["decide-calls"] * len(messages)
    assert all(expected in v.message for v, expected in zip(found, messages, strict=True)), found


def test_decide_rules_apply_only_in_decide(tmp_path: Path) -> None:
    package = _package(tmp_path, {"act/mod.py": "from datetime import datetime\nimport time\nx = datetime.now()\n"
                                                "y = time.time()\n"})
    assert purity.check(package) == []


@pytest.mark.parametrize(("code", "lines"), list(LAZY_CASES.values()), ids=list(LAZY_CASES))
def test_lazy_sdk(tmp_path: Path, code: str, lines: list[int]) -> None:
    package = _package(tmp_path, {"providers/x/provider.py": code})
    found = purity.check(package)
    assert [(v.rule, v.line) for v in found] == [("lazy-sdk", line) for line in lines]


def test_real_tree_is_clean() -> None:
    assert purity.check() == []


def test_command_line_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = _package(tmp_path, {"providers/x/provider.py": "import openstack\n"})
    assert purity.main([str(package)]) == 1
    assert "provider.py:1: [lazy-sdk]" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert purity.main([str(tmp_path / "empty")]) == 0
