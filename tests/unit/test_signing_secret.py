"""Where the URL signing secret comes from (``act.signals.SigningSecret``): the policy file's, else a 0600 file
created in the state dir; refused when others may read it, too short, or missing on a PostgreSQL store (replicas
must share one). Errors name the file, never its content."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from alertscaler.act.signals import KEY_FILE, SigningSecret
from alertscaler.config import PolicyFile, load_policy
from alertscaler.model.errors import Conflict
from alertscaler.model.signing import derive_key

BASE = """
server: {auth: {bearer_token: test-token-123}, state_dir: state}
groups: {web: {provider: {type: fake}, max_size: 2}}
"""


def policy(tmp_path: Path, extra: str = "") -> PolicyFile:
    return load_policy(BASE + extra, base_dir=tmp_path)


def test_a_configured_secret_is_used_and_no_file_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("URL_SECRET", "x" * 40)
    secret = SigningSecret(policy(tmp_path, "inputs: {signed_urls: {secret_env: URL_SECRET}}"))
    assert secret.key("k1") == derive_key(b"x" * 40, "k1")
    assert not (tmp_path / "state").exists()


def test_without_one_a_private_file_is_created_once_and_kept(tmp_path: Path) -> None:
    first = SigningSecret(policy(tmp_path)).get()
    path = tmp_path / "state" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) == 64
    assert SigningSecret(policy(tmp_path)).get() == first  # a restart signs and verifies alike


@pytest.mark.parametrize(("content", "mode", "needle"), [
    ("a" * 64, 0o644, "readable by group or others"),
    ("a" * 64, 0o640, "chmod 600"),
    ("tiny1", 0o600, "too short"),
], ids=["world-readable", "group-readable", "too-short"])
def test_a_bad_secret_file_is_refused_without_echoing_it(tmp_path: Path, content: str, mode: int,
                                                         needle: str) -> None:
    path = tmp_path / "state" / KEY_FILE
    path.parent.mkdir()
    path.write_text(content)
    os.chmod(path, mode)
    with pytest.raises(Conflict) as info:
        SigningSecret(policy(tmp_path)).get()
    assert needle in str(info.value) and str(path) in str(info.value) and content not in str(info.value)


def test_replicas_on_postgresql_must_share_a_configured_secret(tmp_path: Path) -> None:
    pg = policy(tmp_path, "store: {url: 'postgresql+psycopg://u@127.0.0.1:1/x'}")
    with pytest.raises(Conflict) as info:
        SigningSecret(pg).get()
    assert "inputs.signed_urls.secret_file" in str(info.value)
    assert not (tmp_path / "state" / KEY_FILE).exists()
