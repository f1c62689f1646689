"""Instance bootstrap through the providers: the group's user data template, rendered per instance, arrives
where each kind of machine reads it. Nova and Linode: their stand-in APIs record the create bodies, whose base64
user data is decoded here; ``local``: real processes read the file ``ALERTSCALER_USER_DATA_FILE`` names;
``exec``: the real command reads ``AS_USER_DATA_FILE``. (Heat, against a real Heat: test_heat_user_data.py.)
"""

from __future__ import annotations

import base64
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alertscaler.providers.base import Provider, ProviderContext, ScaleRequest
from alertscaler.providers.exec.provider import ExecConfig, ExecProvider
from alertscaler.providers.linode.provider import LinodeProvider
from alertscaler.providers.local.config import LocalConfig
from alertscaler.providers.local.provider import LocalProvider
from alertscaler.providers.openstack.nova.provider import NovaProvider
from tests.contract.provider_fixtures import nova_config
from tests.support.linode_standin import LinodeStandin, linode_config
from tests.support.openstack_standin import OpenStackStandin
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
]

GROUP = "web"
TEMPLATE = """#cloud-config
hostname: {name}
write_files:
  - path: /etc/alertscaler-instance
    content: "group={group} index={index}"
runcmd:
  - echo "${HOME} {{ v1.instance_id }}"
"""


def expected(name: str, index: int) -> str:
    return TEMPLATE.replace("{name}", name).replace("{group}", GROUP).replace("{index}", str(index))


def scale(provider: Provider, desired: int, action_id: int) -> str:
    return provider.scale(ScaleRequest(group=GROUP, from_capacity=0, desired=desired, action_id=action_id,
                                       decision_id=action_id))


@pytest.fixture
def closing() -> Iterator[list[Provider]]:
    made: list[Provider] = []
    yield made
    for provider in made:
        provider.close()


def test_nova_each_server_gets_its_own_rendered_user_data(tmp_path: Path, closing: list[Provider]) -> None:
    with OpenStackStandin() as cloud:
        provider = NovaProvider(nova_config(cloud, user_data=TEMPLATE, name_prefix="as-"),
                                ProviderContext(group=GROUP, state_dir=tmp_path))
        closing.append(provider)
        scale(provider, 2, action_id=7)
        bodies = [r.body["server"] for r in cloud.requests_to("POST", r"/servers$") if r.status == 202]
        got = {b["name"]: base64.b64decode(b["user_data"]).decode() for b in bodies}
        assert got == {"as-web-7-1": expected("as-web-7-1", 1), "as-web-7-2": expected("as-web-7-2", 2)}


def test_linode_each_linode_gets_its_own_rendered_user_data(tmp_path: Path, closing: list[Provider]) -> None:
    ud = tmp_path / "cloud-init.yaml"
    ud.write_text(TEMPLATE)
    with LinodeStandin() as api:
        config = linode_config(api).model_validate(
            {**linode_config(api).model_dump(mode="json"), "token": api.token, "user_data_file": ud.name,
             "label_prefix": "as-"}, context={"base": tmp_path})
        provider = LinodeProvider(config, ProviderContext(group=GROUP, state_dir=tmp_path / "state"))
        closing.append(provider)
        scale(provider, 2, action_id=3)
        bodies = [r.body for r in api.requests_to("POST", r"^/v4/linode/instances$") if r.status == 200]
        got = {b["label"]: base64.b64decode(b["metadata"]["user_data"]).decode() for b in bodies}
        assert got == {"as-web-3-1": expected("as-web-3-1", 1), "as-web-3-2": expected("as-web-3-2", 2)}
        assert all(x["has_user_data"] for x in api.live_linodes())


# A local instance that reads its user data as a cloud instance would: it copies the file it is given to
# "<file>.seen" and keeps running (no health endpoint: health_path is null).
_READER = ("import os, shutil, time\n"
           "src = os.environ['ALERTSCALER_USER_DATA_FILE']\n"
           "shutil.copy(src, src + '.seen')\n"
           "time.sleep(600)\n")


def test_local_instances_read_their_rendered_user_data_from_a_file(tmp_path: Path,
                                                                  closing: list[Provider]) -> None:
    config = LocalConfig.model_validate({"command": [sys.executable, "-c", _READER], "health_path": None,
                                         "user_data": TEMPLATE, "stop_timeout": "2s"})
    state = tmp_path / "state"
    provider = LocalProvider(config, ProviderContext(group=GROUP, state_dir=state))
    closing.append(provider)
    scale(provider, 2, action_id=1)
    members = provider.members()
    assert len(members) == 2
    seen = wait_for(lambda: (lambda found: found if len(found) == 2 else None)(list(state.rglob("*.user-data.seen"))),
                    timeout=20, what="both instances reading their user data")
    got = {p.name.removesuffix(".user-data.seen"): p.read_text() for p in seen}
    assert set(got) == {m.id for m in members}
    indexes = [i for member_id, text in got.items() for i in (1, 2) if text == expected(member_id, i)]
    assert sorted(indexes) == [1, 2], got  # {name} is the instance id, {index} its number in the action
    written = next(state.rglob(f"{members[0].id}.user-data"))
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    scale(provider, 0, action_id=2)
    assert not list(state.rglob("*.user-data")), "a stopped instance's user data is removed with its record"


_EXEC = ("import os, shutil, sys\n"
         "shutil.copy(os.environ['AS_USER_DATA_FILE'], sys.argv[1])\n"
         "print('booted', os.environ['AS_TO'])\n")


def test_exec_commands_get_the_group_rendered_user_data(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    config = ExecConfig.model_validate({
        "type": "exec", "command": [sys.executable, "-c", _EXEC, str(out)],
        "user_data": "#cloud-config\nwrite_files: [{path: /etc/group-name, content: '{group}'}]\n"})
    provider = ExecProvider(config, ProviderContext(group=GROUP, state_dir=tmp_path / "state"))
    assert scale(provider, 3, action_id=5) == "exit 0: booted 3"
    assert out.read_text() == "#cloud-config\nwrite_files: [{path: /etc/group-name, content: 'web'}]\n"
    written = tmp_path / "state" / "user-data"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert os.access(written, os.R_OK)


def test_without_user_data_nothing_is_sent_or_written(tmp_path: Path, closing: list[Provider]) -> None:
    with OpenStackStandin() as cloud:
        provider = NovaProvider(nova_config(cloud), ProviderContext(group=GROUP, state_dir=tmp_path))
        closing.append(provider)
        scale(provider, 1, action_id=9)
        body: dict[str, Any] = cloud.requests_to("POST", r"/servers$")[0].body["server"]
        assert "user_data" not in body
