"""server.tls: checked at load (paths named like other config errors), served by uvicorn on 127.0.0.1 to a real
TLS client, and reloaded on SIGHUP without a restart (a bad pair is refused and the current one kept)."""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import signal
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from alertscaler.api.app import create_app
from alertscaler.api.tls import TlsListener
from alertscaler.cli.remote import request
from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError
from tests.api.conftest import POLICY, make_harness


def make_pair(directory: Path, name: str, password: bytes | None = None) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption())
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           encryption))
    return cert_file, key_file


def with_tls(cert: str, key: str) -> str:
    return POLICY.replace("  max_body_bytes:", f"  tls: {{cert_file: '{cert}', key_file: '{key}'}}\n  max_body_bytes:")


def test_a_valid_pair_is_taken_relative_to_the_policy_file(tmp_path: Path) -> None:
    make_pair(tmp_path / "tls", "a")
    policy = load_policy(with_tls("tls/a.crt", "tls/a.key"), base_dir=tmp_path)
    assert policy.server.tls is not None
    assert policy.server.tls.cert_file == str(tmp_path / "tls" / "a.crt")
    assert policy.server.url.startswith("https://127.0.0.1:")


BAD_TLS = [
    ("missing-cert", "tls/none.crt", "tls/a.key", "server.tls.cert_file", "no such file: {tmp}/tls/none.crt"),
    ("missing-key", "tls/a.crt", "tls/none.key", "server.tls.key_file", "no such file: {tmp}/tls/none.key"),
    ("a-directory", "tls", "tls/a.key", "server.tls.cert_file", "no such file: {tmp}/tls"),
    ("mismatched-pair", "tls/a.crt", "tls/b.key", "server.tls", "are not a PEM certificate and its unencrypted key"),
    ("not-pem", "tls/garbage", "tls/a.key", "server.tls", "are not a PEM certificate"),
    ("encrypted-key", "tls/c.crt", "tls/c.key", "server.tls", "unencrypted key"),
]


@pytest.mark.parametrize(("cert", "key", "where", "message"), [c[1:] for c in BAD_TLS], ids=[c[0] for c in BAD_TLS])
def test_a_bad_tls_section_is_a_config_error_naming_the_path(tmp_path: Path, cert: str, key: str, where: str,
                                                             message: str) -> None:
    make_pair(tmp_path / "tls", "a")
    make_pair(tmp_path / "tls", "b")
    make_pair(tmp_path / "tls", "c", password=b"secret-passphrase")
    (tmp_path / "tls" / "garbage").write_text("not a certificate")
    with pytest.raises(ConfigError) as caught:
        load_policy(with_tls(cert, key), base_dir=tmp_path)
    (problem,) = caught.value.problems
    assert problem.path == where
    assert message.format(tmp=tmp_path) in problem.message
    assert "PRIVATE KEY" not in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_key_is_a_config_error(tmp_path: Path) -> None:
    _, key = make_pair(tmp_path / "tls", "a")
    key.chmod(0)
    with pytest.raises(ConfigError, match=r"server\.tls\.key_file: cannot read"):
        load_policy(with_tls("tls/a.crt", "tls/a.key"), base_dir=tmp_path)


class Served:
    def __init__(self, listener: TlsListener, port: int) -> None:
        self.listener = listener
        self.url = f"https://127.0.0.1:{port}"

    async def served_by(self, trusted: Path) -> str:
        """GET /healthz trusting only ``trusted``: "ok", or the verification failure."""
        context = ssl.create_default_context(cafile=str(trusted))
        async with httpx.AsyncClient(verify=context) as client:  # a new client: a new TLS handshake
            try:
                return (await client.get(f"{self.url}/healthz")).text
            except httpx.ConnectError as exc:
                return "refused: " + str(exc)


@pytest.fixture
async def served_tls(tmp_path: Path) -> AsyncIterator[tuple[Served, Path]]:
    live = tmp_path / "live"
    cert, key = make_pair(live, "server")
    engine, *_, store, _ = make_harness(tmp_path, with_tls(str(cert), str(key)))
    listener = TlsListener(cert, key)
    config = uvicorn.Config(create_app(engine, manage_engine=False), log_config=None, lifespan="off",
                            ssl_certfile=str(cert), ssl_keyfile=str(key))
    config.load()
    config.ssl = listener.context  # as service.serve does
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # what Server._serve sets before startup
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await server.startup(sockets=[sock])  # listening when this returns: no waiting
    try:
        yield Served(listener, sock.getsockname()[1]), cert
    finally:
        await server.shutdown(sockets=[sock])
        sock.close()
        store.close()


async def test_https_served_and_the_certificate_reloaded_on_sighup(served_tls: tuple[Served, Path],
                                                                   tmp_path: Path) -> None:
    served, live_cert = served_tls
    first = tmp_path / "first.crt"
    first.write_bytes(live_cert.read_bytes())
    assert await served.served_by(first) == "ok"
    new_cert, new_key = make_pair(tmp_path / "next", "server")
    assert "certificate verify failed" in await served.served_by(new_cert)

    live_cert.write_bytes(new_cert.read_bytes())  # as certbot / cert-manager would: new files, same paths
    Path(served.listener.key_file).write_bytes(new_key.read_bytes())
    assert await served.served_by(first) == "ok"  # files changed, not reloaded yet: the old certificate
    previous = served.listener.reload_on_sighup()
    try:
        signal.raise_signal(signal.SIGHUP)  # the handler has run when raise_signal returns
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert served.listener.reloads == 1
    assert await served.served_by(new_cert) == "ok"
    assert "certificate verify failed" in await served.served_by(first)


async def test_a_bad_pair_at_reload_keeps_the_current_certificate(served_tls: tuple[Served, Path],
                                                                  tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                                  ) -> None:
    served, live_cert = served_tls
    trusted = tmp_path / "trusted.crt"
    trusted.write_bytes(live_cert.read_bytes())
    _, other_key = make_pair(tmp_path / "other", "server")
    key_text = other_key.read_bytes()
    Path(served.listener.key_file).write_bytes(key_text)  # a key that does not match the certificate
    assert served.listener.reload() is False
    assert served.listener.reloads == 0
    assert await served.served_by(trusted) == "ok"
    assert "the current certificate stays in use" in caplog.text
    assert key_text.decode() not in caplog.text


async def test_the_cli_trusts_the_policys_own_certificate(served_tls: tuple[Served, Path], tmp_path: Path) -> None:
    served, cert = served_tls
    port = served.url.rsplit(":", 1)[1]
    policy = tmp_path / "alertscaler.yml"
    policy.write_text(with_tls(str(cert), served.listener.key_file).replace(
        "server:\n", f"server:\n  listen: 127.0.0.1:{port}\n", 1))
    args = argparse.Namespace(url=None, config=str(policy))
    groups = await anyio.to_thread.run_sync(request, args, "GET", "/api/v1/groups")
    assert [g["name"] for g in groups] == ["web", "batch"]
