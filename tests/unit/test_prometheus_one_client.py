"""One Prometheus client for everything alertscaler asks of Prometheus: queries, the heal freeze's readiness
probe, and rule sync's reload and rules read all go through ``PrometheusClient.from_config`` and so carry the
``prometheus`` section's bearer token and TLS settings.

Against ``SecuredPrometheus``, an in-process stand-in (``tests/support/http_standin.HttpStandin``) serving HTTPS
with a throw-away certificate and answering only requests bearing its token (401 otherwise), like Prometheus with
a ``web.yml``. The real Prometheus is in ``tests/integration/test_prometheus_client.py``.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from alertscaler.act.healing import prometheus_problem
from alertscaler.confgen.syncing import SyncError, sync_rules
from alertscaler.config import load_policy
from alertscaler.model.errors import PrometheusUnavailable
from alertscaler.prometheus.client import PrometheusClient
from tests.support.http_standin import Answer, HttpStandin, Reply

TOKEN = "s3cret-token-for-prometheus"
NOW = datetime(2026, 12, 7, tzinfo=UTC)


def make_certificate(directory: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 and its key in one PEM file (also the CA bundle to trust)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = directory / "prometheus.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


@dataclass
class SecuredPrometheus(HttpStandin):
    """``/-/ready``, ``/-/reload``, ``/api/v1/rules`` and ``/api/v1/query`` over HTTPS, behind a bearer token."""

    certificate: Path = Path()
    rule_groups: tuple[dict[str, Any], ...] = ()
    recorded_headers: ClassVar[tuple[str, ...]] = ("authorization",)
    lowercase_headers: ClassVar[bool] = True

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate)
        return context

    def dispatch(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                 body: Any) -> Answer:
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            raise Reply(401, "Unauthorized")
        if (method, path) == ("GET", "/-/ready"):
            return 200, {}, "Prometheus Server is Ready."
        if (method, path) == ("POST", "/-/reload"):
            return 200, {}, None
        if (method, path) == ("GET", "/api/v1/rules"):
            return 200, {}, {"status": "success", "data": {"groups": list(self.rule_groups)}}
        if (method, path) == ("POST", "/api/v1/query"):
            return 200, {}, {"status": "success", "data": {"resultType": "scalar", "result": [1733529600, "7"]}}
        raise Reply(404, "404 page not found")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def prom(certificate: Path) -> Iterator[SecuredPrometheus]:
    with SecuredPrometheus(certificate=certificate) as standin:
        yield standin


def section(url: str, token: str | None, verify: str) -> str:
    token_line = f", bearer_token: '{token}'" if token is not None else ""
    return f"prometheus: {{url: '{url}', verify: {verify}{token_line}, timeout: 5s}}\n"


POLICY = """server: {auth: {insecure_no_auth: true}}
PROMETHEUS
groups:
  web:
    provider: {type: fake}
    max_size: 4
    heal: {matchers: ['alertname="InstanceDown"']}
"""


def client_of(prom: SecuredPrometheus, token: str | None, verify: str) -> PrometheusClient:
    """The client ``service`` / ``cli`` build: from a loaded policy file's ``prometheus`` section."""
    policy = load_policy(POLICY.replace("PROMETHEUS", section(prom.url, token, verify)))
    return PrometheusClient.from_config(policy.prometheus)


def ready(client: PrometheusClient) -> str | None:
    return prometheus_problem(client)  # the heal freeze's probe


def reload(client: PrometheusClient) -> str | None:
    client.reload()
    return None


def rules(client: PrometheusClient) -> str | None:
    return None if client.rules()["status"] == "success" else "no"


def query(client: PrometheusClient) -> str | None:
    return None if client.value_of("vector(7)") == 7.0 else "wrong value"


OPERATIONS: list[tuple[str, str, Callable[[PrometheusClient], str | None]]] = [
    ("GET", "/-/ready", ready), ("POST", "/-/reload", reload), ("GET", "/api/v1/rules", rules),
    ("POST", "/api/v1/query", query)]
OPERATION_IDS = ["readiness", "reload", "rules", "query"]


def outcome(operation: Callable[[PrometheusClient], str | None], client: PrometheusClient) -> str | None:
    """None when the operation succeeded; else what it said (a readiness problem or the error)."""
    try:
        return operation(client)
    except PrometheusUnavailable as exc:
        return str(exc)


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=OPERATION_IDS)
def test_token_and_ca_bundle_reach_every_operation(prom: SecuredPrometheus, certificate: Path, method: str,
                                                   path: str, operation: Callable[[PrometheusClient], str | None],
                                                   ) -> None:
    with client_of(prom, TOKEN, f"'{certificate}'") as client:
        assert outcome(operation, client) is None
    (request,) = prom.requests_to(method, f"^{path}$")
    assert request.headers == {"authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=OPERATION_IDS)
@pytest.mark.parametrize(
    ("token", "verify", "expected", "served"),
    [("wrong-token-here", "CA", "HTTP 401", True), (None, "CA", "HTTP 401", True),
     (TOKEN, "true", "has a certificate we do not trust", False)],
    ids=["wrong-token", "no-token", "system-cas"],
)
def test_refused_credentials_and_untrusted_certificates_are_named(
        prom: SecuredPrometheus, certificate: Path, method: str, path: str,
        operation: Callable[[PrometheusClient], str | None], token: str | None, verify: str, expected: str,
        served: bool) -> None:
    with client_of(prom, token, f"'{certificate}'" if verify == "CA" else verify) as client:
        problem = outcome(operation, client)
    assert problem is not None and expected in problem, problem
    assert (len(prom.requests_to(method, f"^{path}$")) == 1) is served  # TLS refused: nothing was sent


def test_without_verification_the_token_still_goes(prom: SecuredPrometheus) -> None:
    with client_of(prom, TOKEN, "false") as client:
        assert ready(client) is None
    assert prom.requests[0].headers == {"authorization": f"Bearer {TOKEN}"}


def test_rule_sync_reloads_and_confirms_through_the_client(prom: SecuredPrometheus, certificate: Path,
                                                          tmp_path: Path) -> None:
    policy = load_policy(POLICY.replace("PROMETHEUS", section(prom.url, TOKEN, f"'{certificate}'")) + """
rules:
  groups:
    - name: alertscaler-web
      rules: [{record: 'web:up', expr: 'avg(up)'}]
""")
    rules_dir = tmp_path / "rules"
    prom.rule_groups = ({"name": "alertscaler-web", "file": str(rules_dir / "alertscaler.rules.yml"),
                         "rules": [{"name": "web:up"}]},)
    with PrometheusClient.from_config(policy.prometheus) as client:
        result = sync_rules(policy.render_input("policy.yml"), rules_dir, "alertscaler.rules.yml", client,
                            require_promtool=False)
    assert result.changed and (result.groups, result.rules) == (1, 1)
    assert [(r.method, r.path, r.headers["authorization"]) for r in prom.requests] == [
        ("POST", "/-/reload", f"Bearer {TOKEN}"), ("GET", "/api/v1/rules", f"Bearer {TOKEN}")]


def test_rule_sync_with_a_refused_token_rolls_back(prom: SecuredPrometheus, certificate: Path,
                                                    tmp_path: Path) -> None:
    policy = load_policy(POLICY.replace("PROMETHEUS", section(prom.url, "wrong-token-here", f"'{certificate}'"))
                         + "rules: {groups: [{name: g, rules: [{record: 'web:up', expr: 'avg(up)'}]}]}\n")
    rules_dir = tmp_path / "rules"
    with PrometheusClient.from_config(policy.prometheus) as client, pytest.raises(SyncError) as info:
        sync_rules(policy.render_input("policy.yml"), rules_dir, "alertscaler.rules.yml", client,
                   require_promtool=False)
    assert info.value.rolled_back and "HTTP 401" in str(info.value)
    assert not (rules_dir / "alertscaler.rules.yml").exists()
