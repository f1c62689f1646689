"""``registry.heal_actions`` for the ``local`` and ``exec`` provider configs: what a policy may ask of a group.

``local`` supports every action whatever its config (its class implements the three abilities); ``exec``
supports exactly the actions whose command is configured (its module's ``heal_actions(config)``).
"""

from __future__ import annotations

from typing import Any

import pytest

from alertscaler.providers import registry

ALL = frozenset({"replace", "reboot", "quarantine"})
EXEC = {"type": "exec", "command": ["/bin/true"]}
ARGV = ["/usr/local/bin/heal", "--member-from-env"]

CASES: list[tuple[str, dict[str, Any], frozenset[str]]] = [
    ("local-defaults", {"type": "local"}, ALL),
    ("local-custom-command-no-health", {"type": "local", "command": ["srv", "{port}"], "health_path": None}, ALL),
    ("exec-no-heal-command", EXEC, frozenset()),
    ("exec-status-command-only", {**EXEC, "status_command": ["/bin/status"]}, frozenset()),
    ("exec-heal-command", {**EXEC, "heal_command": ARGV}, frozenset({"replace"})),
    ("exec-reboot-command", {**EXEC, "reboot_command": ARGV}, frozenset({"reboot"})),
    ("exec-quarantine-command", {**EXEC, "quarantine_command": ARGV}, frozenset({"quarantine"})),
    ("exec-heal-and-quarantine", {**EXEC, "heal_command": ARGV, "quarantine_command": ARGV},
     frozenset({"replace", "quarantine"})),
    ("exec-all-three", {**EXEC, "heal_command": ARGV, "reboot_command": ARGV, "quarantine_command": ARGV}, ALL),
]


@pytest.mark.parametrize(("config", "expected"), [(c, e) for _, c, e in CASES], ids=[name for name, _, _ in CASES])
def test_heal_actions(config: dict[str, Any], expected: frozenset[str]) -> None:
    model = registry.config_model(str(config["type"]))
    assert registry.heal_actions(model.model_validate(config)) == expected


@pytest.mark.parametrize("key", ["heal_command", "reboot_command", "quarantine_command"],
                         ids=["heal", "reboot", "quarantine"])
@pytest.mark.parametrize("bad", ["/bin/heal --now", [], [""]], ids=["shell-string", "empty", "empty-program"])
def test_exec_heal_commands_are_argv_lists(key: str, bad: Any) -> None:
    model = registry.config_model("exec")
    with pytest.raises(ValueError, match=key):
        model.model_validate({**EXEC, key: bad})
