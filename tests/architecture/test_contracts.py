"""Each architecture contract proven on a mutated copy of ``src/``: the copy as it is passes, and every
mutation (one import or call added to a real module) is caught, by exactly the contracts meant to catch it.

A contract is a ``[tool.importlinter]`` contract of ``pyproject.toml`` (by its ``id``, run through
``lint-imports`` in the copy) or a rule of ``tests/architecture/purity.py`` (``decide-calls``,
``lazy-sdk``). If a mutated module has moved, point its row at the module that now holds that code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.architecture import purity

pytestmark = pytest.mark.slow  # ~0.5 s of lint-imports per row

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


@dataclass(frozen=True)
class Mutation:
    module: str          # path under src/alertscaler
    code: str            # appended to it
    caught_by: frozenset[str]


def _m(module: str, code: str, *caught_by: str) -> Mutation:
    return Mutation(module, code, frozenset(caught_by))


MUTATIONS: dict[str, Mutation] = {
    # decide: pure, clock injected
    # (decide-pure too: store.base's values import model.notifications, which names alarms with uuid5)
    "decide-imports-store": _m("decide/evaluator.py", "from alertscaler.store import base as _mutant\n", "layers",
                               "decide-pure"),
    "decide-calls-datetime-now": _m(
        "decide/evaluator.py", "def _mutant() -> datetime:\n    return datetime.now()\n", "decide-calls"),
    "decide-calls-date-today": _m(
        "decide/schedules.py", "def _mutant() -> object:\n    from datetime import date\n    return date.today()\n",
        "decide-calls"),
    "decide-opens-file": _m(
        "decide/evaluator.py", "def _mutant() -> str:\n    with open('/etc/hostname') as f:\n        return f.read()\n",
        "decide-calls"),
    "decide-calls-time-time": _m(
        "decide/cooldowns.py", "def _mutant() -> float:\n    import time\n    return time.time()\n",
        "decide-pure", "decide-calls"),
    "decide-reads-os-environ": _m(
        "decide/tracking.py", "import os\n_MUTANT = os.environ.get('TZ')\n", "decide-pure", "decide-calls"),
    "decide-uses-random": _m(
        "decide/adjustments.py", "import random\n\n\ndef _mutant() -> float:\n    return random.random()\n",
        "decide-pure", "decide-calls"),
    "decide-uses-uuid": _m(
        "decide/healing.py", "def _mutant() -> object:\n    import uuid\n    return uuid.uuid4()\n",
        "decide-pure", "decide-calls"),
    "decide-logs": _m(
        "decide/healing.py", "import logging\n\nlogging.getLogger(__name__).info('mutant')\n",
        "decide-pure", "decide-calls"),
    # model: plain values (and decide, which imports it, stays pure through it)
    "model-imports-sqlalchemy": _m("model/groups.py", "import sqlalchemy\n", "model-no-io", "decide-pure"),
    "model-imports-os": _m("model/groups.py", "import os\n", "model-no-io", "decide-pure"),
    "model-imports-pathlib": _m("model/policies.py", "import pathlib\n", "model-no-io", "decide-pure"),
    "model-imports-secrets": _m("model/policies.py", "from alertscaler import secrets as _mutant\n",
                                "layers", "model-no-io", "decide-pure"),
    # store
    "store-imports-httpx": _m("store/base.py", "import httpx\n", "store-no-http"),
    # providers: independent families, SDKs only inside them and only lazily
    "provider-imports-other-family": _m(
        "providers/linode/provider.py", "from alertscaler.providers.openstack import auth as _mutant\n",
        "provider-families"),
    "provider-top-level-sdk": _m("providers/linode/provider.py", "import openstack\n", "lazy-sdk"),
    "provider-top-level-sdk-in-try": _m(
        "providers/kubernetes/provider.py", "try:\n    import kubernetes\nexcept ImportError:\n    pass\n", "lazy-sdk"),
    "act-lazy-sdk": _m("act/engine.py", "def _mutant() -> None:\n    import linode_api4\n", "sdk-only-in-providers"),
    "prometheus-top-level-sdk": _m(
        "prometheus/client.py", "import kubernetes\n", "sdk-only-in-providers", "lazy-sdk"),
    # the serving path sees providers only through base and registry
    "act-imports-concrete-provider": _m(
        "act/engine.py", "from alertscaler.providers.linode import provider as _mutant\n", "no-concrete-provider"),
    "service-imports-fake-provider": _m(
        "service.py", "from alertscaler.providers import fake as _mutant\n", "no-concrete-provider"),
    "config-imports-provider-common": _m(
        "config/loading.py", "from alertscaler.providers.common import retries as _mutant\n", "no-concrete-provider"),
    "api-imports-exec-provider": _m(
        "api/auth.py", "from alertscaler.providers.exec import provider as _mutant\n", "no-concrete-provider"),
    # layers: sim and demo off the serving path, stages independent
    "service-imports-sim": _m("service.py", "from alertscaler.sim import running as _mutant\n", "layers"),
    "act-imports-demo": _m("act/engine.py", "from alertscaler.demo import stack as _mutant\n", "layers"),
    "ingest-imports-decide": _m("ingest/routing.py", "from alertscaler.decide import evaluator as _mutant\n",
                                "layers"),
    "config-imports-act": _m("config/loading.py", "from alertscaler.act import engine as _mutant\n", "layers"),
    # confgen renders what config describes: above config, beside act
    "config-imports-confgen": _m(
        "config/loading.py", "from alertscaler.confgen import output as _mutant\n", "layers"),
    "act-imports-confgen": _m("act/executing.py", "from alertscaler.confgen import output as _mutant\n", "layers"),
}


def _copy(dest: Path) -> Path:
    """``src/`` and ``pyproject.toml`` copied under ``dest``; the copy's ``alertscaler`` package directory."""
    shutil.copytree(REPO / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest / "src" / "alertscaler"


def _caught(root: Path) -> set[str]:
    """The ids of the contracts and purity rules the copy at ``root`` breaks."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    ids = {contract["name"]: contract["id"] for contract in config["tool"]["importlinter"]["contracts"]}
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "COLUMNS": "1000", "NO_COLOR": "1"}
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                            timeout=120)
    broken = {ids[line.removesuffix(" BROKEN")] for line in result.stdout.splitlines() if line.endswith(" BROKEN")}
    assert result.returncode == (1 if broken else 0), result.stdout + result.stderr
    # it ran its contracts (no config or import error); that it read the copy, not the checkout, is what the
    # mutations prove
    assert "Contracts:" in result.stdout, result.stdout + result.stderr
    return broken | {violation.rule for violation in purity.check(root / "src" / "alertscaler")}


def test_unmutated_copy_passes(tmp_path: Path) -> None:
    _copy(tmp_path)
    assert _caught(tmp_path) == set()


@pytest.mark.parametrize("mutation", list(MUTATIONS.values()), ids=list(MUTATIONS))
def test_mutation_is_caught(tmp_path: Path, mutation: Mutation) -> None:
    package = _copy(tmp_path)
    target = package / mutation.module
    assert target.is_file(), f"{mutation.module} has moved: point this row at the module that now holds its code"
    with target.open("a", encoding="utf-8") as file:
        file.write("\n\n" + mutation.code)
    assert _caught(tmp_path) == mutation.caught_by


def test_every_contract_is_proven() -> None:
    """A contract no mutation breaks is a contract nobody knows to work."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = {contract["id"] for contract in config["tool"]["importlinter"]["contracts"]}
    proven = set().union(*(mutation.caught_by for mutation in MUTATIONS.values()))
    assert contracts | {"decide-calls", "lazy-sdk"} == proven
