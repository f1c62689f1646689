"""The ``kubernetes`` provider driven through the real ``kubernetes`` client against the API server stand-in.

Scaling a Deployment and a StatefulSet (the PATCH of the scale subresource and the readiness polls read back
from the stand-in's request log), ready timeouts naming the pods that are not ready, every error mapping
(429 / 5xx / 409 / timeouts / refused → temporary with their delay, other 4xx → permanent with the API's
message), healing (exactly that pod, with a uid precondition, then its replacement; never a pod the workload
does not select or control), the four ways to authenticate (token, kubeconfig + context, in-cluster, TLS with a
CA), one client per provider, secrets kept out of errors, logs and reprs, and the policy file's validation.
Polling is fast (10 ms) and every wait has a deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError, PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import MemberState
from alertscaler.providers.base import Healer, Provider, ProviderContext, ScaleRequest
from alertscaler.providers.kubernetes.provider import DEFAULT_DELAY, KubernetesConfig, KubernetesProvider
from alertscaler.providers.registry import config_model
from alertscaler.providers.registry import create as registry_create
from tests.support.kubernetes_standin import TOKEN, KubernetesStandin, Recorded, kubernetes_config

pytestmark = pytest.mark.integration

GROUP = "web"
DEPLOYMENT = "/apis/apps/v1/namespaces/default/deployments/web"


@pytest.fixture
def api() -> Iterator[KubernetesStandin]:
    with KubernetesStandin() as api:
        api.add_deployment("web", replicas=1)
        yield api


@pytest.fixture
def make(api: KubernetesStandin, tmp_path: Path) -> Iterator[Any]:
    made: list[KubernetesProvider] = []

    def make(target: KubernetesStandin | None = None, *, name: str = "web", configure: Any = None,
             **overrides: Any) -> KubernetesProvider:
        config = kubernetes_config(target or api, name, **overrides)
        extra = {} if configure is None else {"configure": configure}
        provider = KubernetesProvider(config, ProviderContext(group=GROUP, state_dir=tmp_path / GROUP), **extra)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


_ids = iter(range(100, 10_000))


def scale(provider: Provider, desired: int) -> str:
    action = next(_ids)
    return provider.scale(ScaleRequest(group=GROUP, from_capacity=0, desired=desired, action_id=action,
                                       decision_id=action))


def since(api: KubernetesStandin, mark: int) -> list[Recorded]:
    return api.requests[mark:]


def pod_uids(api: KubernetesStandin) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in api.pod_bodies()}


def running_ids(provider: KubernetesProvider) -> list[str]:
    return [m.id for m in provider.members() if m.state is MemberState.RUNNING]


# -- through the registry ------------------------------------------------------------------------------------


def test_registry_builds_a_healer_that_reports_its_pods(api: KubernetesStandin, tmp_path: Path) -> None:
    config = config_model("kubernetes").model_validate(
        {"type": "kubernetes", "name": "web", "api_url": api.url, "token": TOKEN, "port": 9100,
         "poll_interval": "10ms", "ready_timeout": "10s"})
    provider = registry_create(config, ProviderContext(group=GROUP, state_dir=tmp_path))
    try:
        assert isinstance(provider.inner, KubernetesProvider) and isinstance(provider, Healer)
        assert isinstance(provider, Provider) and provider.idempotent
        status = provider.status()
        assert status.current == 1
        assert status.detail == ("Deployment default/web: spec.replicas=1 (current), status.replicas=1, 1 ready; "
                                 "pods: 1 running")
        (member,) = status.members
        body = api.pod_bodies()[0]
        assert member.id == body["metadata"]["name"] and member.id.startswith("web-")
        assert member.address == f"{body['status']['podIP']}:9100"
        assert member.state is MemberState.RUNNING
        assert member.labels == {"namespace": "default", "pod": member.id, "node": body["spec"]["nodeName"]}
        assert member.created_at is not None and member.created_at.tzinfo is not None
    finally:
        provider.close()


# -- scaling -------------------------------------------------------------------------------------------------


def test_scale_a_deployment_out_and_in(make: Any) -> None:
    with KubernetesStandin(terminate_after=1000) as api:  # deleted pods linger: STOPPING is observable
        api.add_deployment("web", replicas=1)
        provider = make(api)
        first = running_ids(provider)
        mark = len(api.requests)
        assert scale(provider, 3) == "scaled Deployment default/web from 1 to 3 replicas, 3 ready"
        log = since(api, mark)
        assert [(r.method, r.path) for r in log[:2]] == [("GET", f"{DEPLOYMENT}/scale"),
                                                          ("PATCH", f"{DEPLOYMENT}/scale")]
        patch = log[1]
        assert patch.body == {"spec": {"replicas": 3}}
        assert patch.headers["content-type"] == "application/merge-patch+json"
        assert patch.headers["authorization"] == f"Bearer {TOKEN}"
        polls = log[2:]
        assert {(r.method, r.path) for r in polls} == {("GET", DEPLOYMENT)}, "after the PATCH: only readiness polls"
        assert len(polls) >= 3, "the new pods needed a few polls to become ready"
        status = provider.status()
        assert status.current == 3 and "status.replicas=3, 3 ready" in status.detail
        members = status.members
        assert [m.state for m in members] == [MemberState.RUNNING] * 3
        assert len({m.address for m in members}) == 3 and all(m.address and m.address.endswith(":8080")
                                                                for m in members)
        assert set(first) < {m.id for m in members}

        assert scale(provider, 1) == "scaled Deployment default/web from 3 to 1 replicas, 1 ready"
        assert api.requests_to("PATCH", "/scale$")[-1].body == {"spec": {"replicas": 1}}
        status = provider.status()
        assert status.current == 1
        assert sorted(m.state.value for m in status.members) == ["running", "stopping", "stopping"]
        assert status.detail.endswith("status.replicas=1, 1 ready; pods: 1 running, 2 stopping")
        assert api.workload("deployments", "web")["spec"]["replicas"] == 1


def test_same_size_sends_no_patch(api: KubernetesStandin, make: Any) -> None:
    provider = make()
    assert scale(provider, 1) == "no change: Deployment default/web at 1 replicas, 1 ready"
    assert not api.requests_to("PATCH", ".")
    assert api.workload("deployments", "web")["metadata"]["generation"] == 1


def test_scale_to_zero_and_back(api: KubernetesStandin, make: Any) -> None:
    provider = make()
    scale(provider, 0)
    status = provider.status()
    assert status.current == 0 and running_ids(provider) == []  # the Scale's spec.replicas is omitted at 0
    scale(provider, 2)
    assert len(running_ids(provider)) == 2


def test_scale_a_statefulset(api: KubernetesStandin, make: Any) -> None:
    api.add_statefulset("db")
    provider = make(name="db", kind="StatefulSet")
    assert provider.status().current == 0 and provider.members() == []
    assert scale(provider, 3) == "scaled StatefulSet default/db from 0 to 3 replicas, 3 ready"
    patch = api.requests_to("PATCH", ".")[0]
    assert patch.path == "/apis/apps/v1/namespaces/default/statefulsets/db/scale"
    assert patch.body == {"spec": {"replicas": 3}}
    polls = api.requests_to("GET", "/statefulsets/db$")
    assert len(polls) >= 6, "OrderedReady: each pod became ready before the next was created"
    assert running_ids(provider) == ["db-0", "db-1", "db-2"]
    assert scale(provider, 1) == "scaled StatefulSet default/db from 3 to 1 replicas, 1 ready"
    assert running_ids(provider) == ["db-0"]
    assert "web" not in "".join(m.id for m in provider.members()), "only the StatefulSet's pods"


def test_negative_desired_is_refused(make: Any) -> None:
    with pytest.raises(PermanentProviderError, match="desired capacity must be >= 0, got -1"):
        scale(make(), -1)


# -- ready timeout -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("outcome", "state", "why"), [
    ("never_ready", MemberState.STARTING,
     "Running, not ready (ContainersNotReady: containers with unready status: [app])"),
    ("crashloop", MemberState.FAILED, "CrashLoopBackOff: back-off 10s restarting failed container=app pod=web-"),
    ("unschedulable", MemberState.STARTING, "Pending (Unschedulable: 0/3 nodes are available: 3 Insufficient cpu."),
], ids=["readiness-failing", "crashloop", "unschedulable"])
def test_ready_timeout_says_how_many_are_ready_and_why_not(api: KubernetesStandin, make: Any, outcome: str,
                                                           state: MemberState, why: str) -> None:
    provider = make(ready_timeout="300ms", poll_interval="20ms")
    api.plan_pods(outcome, count=1)
    started = time.monotonic()
    with pytest.raises(TemporaryProviderError) as info:
        scale(provider, 2)
    assert 0.3 <= time.monotonic() - started < 5
    message = str(info.value)
    assert message.startswith("web: Deployment default/web not ready within 300ms: 1 of 2 pods ready "
                              "(spec.replicas=2, status.replicas=2, readyReplicas=1); not ready: web-"), message
    assert why in message
    assert info.value.delay == DEFAULT_DELAY
    status = provider.status()
    assert status.current == 2  # the API accepted the size; the pods are what is late
    assert sorted(m.state.value for m in status.members) == sorted(["running", state.value])


def test_a_timed_out_scale_completes_once_the_bad_pod_is_healed(api: KubernetesStandin, make: Any) -> None:
    provider = make(ready_timeout="1s", poll_interval="20ms")  # the healed pod must be ready by then, loaded or not
    api.plan_pods("never_ready", count=1)
    with pytest.raises(TemporaryProviderError, match="1 of 2 pods ready"):
        scale(provider, 2)
    bad = next(m.id for m in provider.members() if m.state is not MemberState.RUNNING)
    message = provider.heal(bad)
    assert message.startswith(f"deleted pod {bad} (Running, not ready (ContainersNotReady: ")
    assert message.endswith("; 2 ready in Deployment default/web")
    assert scale(provider, 2) == "no change: Deployment default/web at 2 replicas, 2 ready"  # the retry converges


# -- API errors ------------------------------------------------------------------------------------------------

FORBIDDEN = ('deployments.apps "web" is forbidden: User "system:serviceaccount:ops:alertscaler" cannot patch '
             'resource "deployments/scale" in API group "apps" in the namespace "default"')
CONFLICT = ('Operation cannot be fulfilled on deployments.apps "web": the object has been modified; please apply '
            "your changes to the latest version and try again")


@pytest.mark.parametrize(("fault", "error", "delay", "text"), [
    ({"status": 429, "method": "GET", "path": "/scale$", "retry_after": 7}, TemporaryProviderError, 7.0,
     "reading the scale of Deployment default/web: HTTP 429 Too Many Requests: Too many requests, please try "
     "again later."),
    ({"status": 429, "method": "PATCH", "retry_after": 4, "plain": False, "header": False,
      "message": "the server has received too many requests and has asked us to try again later"},
     TemporaryProviderError, 4.0, "HTTP 429 Too Many Requests: the server has received too many requests"),
    ({"status": 503, "method": "PATCH", "retry_after": 2}, TemporaryProviderError, 2.0,
     "scaling Deployment default/web to 2: HTTP 503 Service Unavailable: injected fault"),
    ({"status": 503, "method": "PATCH", "retry_after": 0}, TemporaryProviderError, 0.0,
     "HTTP 503 Service Unavailable"),
    ({"status": 500, "method": "PATCH"}, TemporaryProviderError, DEFAULT_DELAY, "HTTP 500 Internal Server Error"),
    ({"status": 504, "method": "GET", "path": "/scale$"}, TemporaryProviderError, DEFAULT_DELAY,
     "HTTP 504 Gateway Timeout"),
    ({"status": 409, "method": "PATCH", "message": CONFLICT}, TemporaryProviderError, DEFAULT_DELAY,
     f"HTTP 409 Conflict: {CONFLICT}"),
    ({"status": 403, "method": "PATCH", "message": FORBIDDEN}, PermanentProviderError, None,
     f"scaling Deployment default/web to 2: HTTP 403 Forbidden: {FORBIDDEN}"),
    ({"status": 422, "method": "PATCH", "message": 'Scale.autoscaling "web" is invalid: spec.replicas: Invalid '
      "value: 2: exceeds the quota"}, PermanentProviderError, None,
     'HTTP 422 Unprocessable Entity: Scale.autoscaling "web" is invalid: spec.replicas'),
    ({"status": 400, "method": "PATCH", "message": "error decoding patch"}, PermanentProviderError, None,
     "HTTP 400 Bad Request: error decoding patch"),
], ids=["429-plain-retry-after", "429-status-retry-after-seconds", "503-retry-after", "503-retry-after-0",
        "500", "504", "409-conflict", "403-forbidden", "422-invalid", "400-bad-request"])
def test_api_errors_are_translated(api: KubernetesStandin, make: Any, fault: dict[str, Any], error: type[Exception],
                                   delay: float | None, text: str) -> None:
    provider = make()
    fault = {"path": "/scale$", **fault}
    api.fail_next(1, fault.pop("status"), **fault)
    mark = len(api.requests)
    with pytest.raises(error) as info:
        scale(provider, 2)
    assert type(info.value) is error
    assert str(info.value).startswith(f"{GROUP}: ") and text in str(info.value), str(info.value)
    if isinstance(info.value, TemporaryProviderError):
        assert info.value.delay == delay
    failed = [r for r in since(api, mark) if r.status >= 400]
    assert len(failed) == 1, "one attempt: the client does not retry (nor sleep through Retry-After) on its own"
    assert api.workload("deployments", "web")["spec"]["replicas"] == 1
    assert api.workload("deployments", "web")["metadata"]["generation"] == 1
    if error is TemporaryProviderError:  # the caller's retry then succeeds
        scale(provider, 2)
        assert len(running_ids(provider)) == 2


@pytest.mark.parametrize(("overrides", "text"), [
    ({"name": "gone"}, 'reading the scale of Deployment default/gone: HTTP 404 Not Found: deployments.apps "gone" '
                       "not found"),
    ({"name": "web", "kind": "StatefulSet"}, 'HTTP 404 Not Found: statefulsets.apps "web" not found'),
    ({"namespace": "staging"}, 'HTTP 404 Not Found: deployments.apps "web" not found'),
    ({"token": "not-the-token"}, "reading the scale of Deployment default/web: HTTP 401 Unauthorized"),
], ids=["no-such-deployment", "wrong-kind", "wrong-namespace", "wrong-token"])
def test_real_client_errors_are_permanent(make: Any, overrides: dict[str, Any], text: str) -> None:
    provider = make(**overrides)
    with pytest.raises(PermanentProviderError) as info:
        provider.status()
    assert str(info.value).startswith(f"{GROUP}: ") and str(info.value).endswith(text)


def test_temporary_errors_while_waiting_are_polled_through(api: KubernetesStandin, make: Any) -> None:
    provider = make()
    api.fail_next(3, 503, method="GET", path=f"{DEPLOYMENT}$")
    assert scale(provider, 3).endswith("3 ready")
    assert len([r for r in api.requests_to("GET", f"{DEPLOYMENT}$") if r.status == 503]) == 3


def test_the_last_error_is_named_when_waiting_times_out(api: KubernetesStandin, make: Any) -> None:
    provider = make(ready_timeout="200ms", poll_interval="20ms")
    api.fail_next(1000, 503, method="GET", path=f"{DEPLOYMENT}$")
    with pytest.raises(TemporaryProviderError) as info:
        scale(provider, 2)
    assert "last error: web: reading Deployment default/web: HTTP 503 Service Unavailable" in str(info.value)


def test_a_request_timeout_is_temporary(api: KubernetesStandin, make: Any) -> None:
    provider = make(request_timeout="200ms")
    api.stall_next(1, 3.0, method="GET", path="/scale$")
    started = time.monotonic()
    with pytest.raises(TemporaryProviderError, match=r"cannot reach the API server: timed out") as info:
        provider.status()
    assert time.monotonic() - started < 2.5
    assert info.value.delay == DEFAULT_DELAY
    assert provider.status().current == 1


def test_connection_refused_is_temporary(make: Any) -> None:
    dead = KubernetesStandin().start()
    dead.stop()  # its port is closed now
    provider = make(dead)
    with pytest.raises(TemporaryProviderError, match="reading the scale of Deployment default/web: cannot reach "
                                                     "the API server: connection refused") as info:
        provider.status()
    assert info.value.delay == DEFAULT_DELAY


# -- healing ---------------------------------------------------------------------------------------------------


def test_heal_deletes_exactly_that_pod_and_waits_for_its_replacement(api: KubernetesStandin, make: Any) -> None:
    provider = make()
    scale(provider, 3)
    before = pod_uids(api)
    victim = running_ids(provider)[1]
    mark = len(api.requests)
    message = provider.heal(victim)
    log = since(api, mark)
    deletes = [r for r in log if r.method == "DELETE"]
    assert [r.path for r in deletes] == [f"/api/v1/namespaces/default/pods/{victim}"]
    assert deletes[0].body["preconditions"] == {"uid": before[victim]}  # never a same-named successor
    after_delete = log[log.index(deletes[0]) + 1:]
    assert len(after_delete) >= 2 and {r.path for r in after_delete} == {"/api/v1/namespaces/default/pods"}
    now = pod_uids(api)
    new = sorted(set(now) - set(before))
    assert len(new) == 1
    assert message == (f"deleted pod {victim} (ready); replacement {new[0]} ready; 3 ready in Deployment "
                       "default/web")
    for name, uid in before.items():
        if name != victim:
            assert now[name] == uid, "the other pods are untouched"
    assert victim not in running_ids(provider) and len(running_ids(provider)) == 3


def test_heal_a_statefulset_pod_waits_for_its_namesake(api: KubernetesStandin, make: Any) -> None:
    api.add_statefulset("db", replicas=2)
    provider = make(name="db", kind="StatefulSet")
    scale(provider, 2)
    before = pod_uids(api)
    message = provider.heal("db-1")
    assert message == "deleted pod db-1 (ready); replacement db-1 ready; 2 ready in StatefulSet default/db"
    after = pod_uids(api)
    assert after["db-1"] != before["db-1"] and after["db-0"] == before["db-0"]
    assert [r.path for r in api.requests_to("DELETE", ".")] == ["/api/v1/namespaces/default/pods/db-1"]


def test_heal_an_evicted_pod_its_replicaset_already_replaced(api: KubernetesStandin, make: Any) -> None:
    provider = make()
    api.plan_pods("evicted", count=1)
    scale(provider, 2)  # the ReplicaSet replaced the evicted pod at once
    evicted = next(m for m in provider.members() if m.state is MemberState.FAILED)
    message = provider.heal(evicted.id)
    assert message.startswith(f"deleted pod {evicted.id} (Failed (Evicted: The node was low on resource: memory.")
    assert message.endswith("replacement was already ready; 2 ready in Deployment default/web")


@pytest.mark.parametrize(("setup", "target", "text"), [
    (lambda api: api.add_pod("debug-shell", {"app": "debug"}), "debug-shell",
     "refusing to delete pod debug-shell: Deployment default/web does not select it (selector app=web)"),
    (lambda api: api.add_pod("web-by-hand", {"app": "web"}), "web-by-hand",
     "refusing to delete pod web-by-hand: Deployment default/web does not control it (no controller), so nothing "
     "would replace it"),
    (lambda api: api.add_deployment("canary", replicas=1, labels={"app": "web", "track": "canary"}), "canary-",
     "Deployment default/web does not control it (ReplicaSet canary-"),
    (lambda api: api.add_pod("web-elsewhere", {"app": "web"}, namespace="staging"), "web-elsewhere",
     'reading pod web-elsewhere: HTTP 404 Not Found: pods "web-elsewhere" not found'),
    (lambda api: None, "no-such-pod", 'HTTP 404 Not Found: pods "no-such-pod" not found'),
], ids=["outside-the-selector", "selected-but-not-controlled", "another-deployments-pod", "other-namespace",
        "unknown"])
def test_heal_never_deletes_a_pod_outside_the_workload(api: KubernetesStandin, make: Any, setup: Any,
                                                        target: str, text: str) -> None:
    provider = make()
    setup(api)
    scale(provider, 1)
    if target.endswith("-"):  # a generated name: the other Deployment's pod
        target = next(p["metadata"]["name"] for p in api.pod_bodies() if p["metadata"]["name"].startswith(target))
    before = pod_uids(api)
    with pytest.raises(PermanentProviderError) as info:
        provider.heal(target)
    assert str(info.value).startswith(f"{GROUP}: ") and text in str(info.value), str(info.value)
    assert not api.requests_to("DELETE", "."), "nothing was deleted"
    assert pod_uids(api) == before


def test_heal_failing_before_the_delete_is_temporary_and_deletes_nothing(api: KubernetesStandin,
                                                                         make: Any) -> None:
    provider = make()
    victim = running_ids(provider)[0]
    api.fail_next(1, 503, method="GET", path=f"/pods/{victim}$", retry_after=3)
    with pytest.raises(TemporaryProviderError, match=f"reading pod {victim}: HTTP 503") as info:
        provider.heal(victim)
    assert info.value.delay == 3.0
    assert not api.requests_to("DELETE", ".")
    assert provider.heal(victim).startswith(f"deleted pod {victim} (ready); replacement ")


def test_heal_whose_replacement_never_gets_ready_is_permanent(api: KubernetesStandin, make: Any) -> None:
    provider = make(ready_timeout="300ms", poll_interval="20ms")
    victim = running_ids(provider)[0]
    api.plan_pods("crashloop")
    with pytest.raises(PermanentProviderError) as info:
        provider.heal(victim)
    message = str(info.value)
    assert message.startswith(f"web: deleted pod {victim}, but no replacement was ready within 300ms "
                              "(not ready: web-"), message
    assert "CrashLoopBackOff" in message and message.endswith("not retried: healing again would delete another pod")
    assert len(api.requests_to("DELETE", ".")) == 1


# -- authentication, the client, secrets ------------------------------------------------------------------------


def test_token_is_sent_as_a_bearer_header_on_every_request(api: KubernetesStandin, make: Any) -> None:
    provider = make()
    scale(provider, 2)
    provider.heal(running_ids(provider)[0])
    assert api.requests and {r.headers.get("authorization") for r in api.requests} == {f"Bearer {TOKEN}"}


def test_token_from_env_and_from_file(api: KubernetesStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      make: Any) -> None:
    monkeypatch.setenv("K8S_TOKEN", TOKEN)
    (tmp_path / "token").write_text(TOKEN + "\n")
    for source in ({"token_env": "K8S_TOKEN"}, {"token_file": str(tmp_path / "token")}):
        config = KubernetesConfig.model_validate({"type": "kubernetes", "name": "web", "api_url": api.url, **source})
        assert config.token is not None and config.token.get_secret_value() == TOKEN
        provider = KubernetesProvider(config, ProviderContext(group=GROUP, state_dir=tmp_path))
        try:
            assert provider.status().current == 1
        finally:
            provider.close()


def kubeconfig(path: Path, server: str, token: str, current: str = "elsewhere") -> Path:
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster:
    server: {server}
- name: elsewhere
  cluster:
    server: https://203.0.113.1:6443
users:
- name: alertscaler
  user:
    token: {token}
- name: someone
  user:
    token: someone-elses-token
contexts:
- name: standin
  context:
    cluster: standin
    user: alertscaler
    namespace: default
- name: elsewhere
  context:
    cluster: elsewhere
    user: someone
current-context: {current}
""")
    return path


def test_kubeconfig_with_a_context(api: KubernetesStandin, make: Any, tmp_path: Path) -> None:
    file = kubeconfig(tmp_path / "kubeconfig", api.url, TOKEN)
    provider = make(api_url=None, token=None, kubeconfig=str(file), context="standin")
    assert scale(provider, 2).endswith("2 ready")
    assert {r.headers.get("authorization") for r in api.requests} == {f"Bearer {TOKEN}"}
    assert "kubeconfig" in repr(provider) and "'standin'" in repr(provider) and TOKEN not in repr(provider)


def test_kubeconfig_current_context(api: KubernetesStandin, make: Any, tmp_path: Path) -> None:
    file = kubeconfig(tmp_path / "kubeconfig", api.url, TOKEN, current="standin")
    assert make(api_url=None, token=None, kubeconfig=str(file)).status().current == 1


def test_in_cluster_service_account_over_tls(make: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("cryptography")
    from kubernetes.config import incluster_config

    with KubernetesStandin(tls=True) as api:
        api.add_deployment("web", replicas=1)
        token = tmp_path / "token"
        token.write_text(TOKEN)
        host, port = api.url.removeprefix("https://").split(":")
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
        monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
        monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", api.ca_file)
        provider = make(api, api_url=None, token=None, in_cluster=True)
        assert scale(provider, 2).endswith("2 ready")
        assert {r.headers["authorization"].lower() for r in api.requests} == {f"bearer {TOKEN}".lower()}
        assert "in-cluster service account" in repr(provider)


def test_in_cluster_outside_a_cluster_is_permanent(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    provider = make(api_url=None, token=None, in_cluster=True)
    with pytest.raises(PermanentProviderError, match="loading in-cluster credentials: Service host/port is not set"):
        provider.status()


def test_tls_with_a_ca_file_and_without(make: Any) -> None:
    pytest.importorskip("cryptography")
    with KubernetesStandin(tls=True) as api:
        api.add_deployment("web", replicas=1)
        assert make(api, ca_file=api.ca_file).status().current == 1
        with pytest.raises(PermanentProviderError, match=r"TLS: .*CERTIFICATE_VERIFY_FAILED"):
            make(api).status()  # the system CAs do not know the stand-in's


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_without_verification(make: Any) -> None:
    pytest.importorskip("cryptography")
    with KubernetesStandin(tls=True) as api:
        api.add_deployment("web", replicas=1)
        assert make(api, verify=False).status().current == 1


def test_one_client_per_provider_made_on_first_use_and_closed(api: KubernetesStandin, make: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes import client

    from alertscaler.providers.kubernetes.provider import client_configuration

    configured: list[KubernetesConfig] = []
    closed: list[object] = []
    real_close = client.ApiClient.close

    def close(self: Any) -> None:
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(client.ApiClient, "close", close)

    def configure(config: KubernetesConfig) -> Any:
        configured.append(config)
        return client_configuration(config)

    provider = make(configure=configure)
    assert configured == [] and api.requests == [], "nothing happens before the first call"
    scale(provider, 2)
    provider.heal(running_ids(provider)[0])
    provider.status()
    assert len(configured) == 1
    provider.close()
    assert len(closed) == 1
    provider.close()  # twice is fine
    assert len(closed) == 1
    assert provider.status().current == 2  # a later call opens a new one
    assert len(configured) == 2


def test_tokens_never_in_errors_logs_or_reprs(api: KubernetesStandin, make: Any, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-token-Qm9zLkJhZA"
    caplog.set_level(logging.DEBUG)
    bad = make(token=wrong)
    with pytest.raises(PermanentProviderError, match="HTTP 401 Unauthorized") as info:
        bad.status()
    good = make()
    scale(good, 2)
    good.heal(running_ids(good)[0])
    api.fail_next(1, 503, method="PATCH")
    with pytest.raises(TemporaryProviderError) as temporary:
        scale(good, 3)
    texts = [str(info.value), repr(info.value), str(temporary.value), repr(bad), repr(good), repr(good.config),
             str(good.config), good.config.model_dump_json(), str(good.config.model_dump()), caplog.text]
    for text in texts:
        assert wrong not in text and TOKEN not in text
    with pytest.raises(ConfigError) as config_error:
        load_policy(policy(f"{{type: kubernetes, name: web, in_cluster: true, token: {TOKEN}}}"))
    assert TOKEN not in str(config_error.value)


# -- the policy file ----------------------------------------------------------------------------------------------

P = "groups.web.provider"


def policy(provider: str) -> str:
    return (f"server: {{auth: {{insecure_no_auth: true}}}}\ngroups:\n  web:\n    provider: {provider}\n"
            "    min_size: 1\n    max_size: 4\n"
            "    scale_out: {matchers: ['alertname=\"HighLoad\"'], adjustment: 1, cooldown: 60s}\n")


def problems(provider: str, base: Path | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_policy(policy(provider), base_dir=base)
    return {p.path: p.message for p in info.value.problems}


def test_minimal_config_and_defaults() -> None:
    config = load_policy(policy("{type: kubernetes, name: web, in_cluster: true}")).groups["web"].provider
    assert isinstance(config, KubernetesConfig)
    assert (config.kind, config.namespace, config.port) == ("Deployment", "default", None)
    assert (config.ready_timeout, config.poll_interval, config.request_timeout) == (300.0, 2.0, 30.0)
    assert config.describe() == "Deployment default/web via in-cluster service account"


def test_full_config_with_paths_relative_to_the_policy_file(api: KubernetesStandin, tmp_path: Path) -> None:
    kubeconfig(tmp_path / "kube.yaml", api.url, TOKEN)
    loaded = load_policy(policy("{type: kubernetes, kind: statefulset, name: db, namespace: shop, "
                                "kubeconfig: kube.yaml, context: standin, port: 9100, ready_timeout: 2m, "
                                "poll_interval: 500ms, request_timeout: 10s}"), base_dir=tmp_path)
    config = loaded.groups["web"].provider
    assert isinstance(config, KubernetesConfig)
    assert config.kind == "StatefulSet" and config.kubeconfig == str(tmp_path / "kube.yaml")
    assert (config.ready_timeout, config.poll_interval, config.request_timeout) == (120.0, 0.5, 10.0)
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    config = load_policy(policy(f"{{type: kubernetes, name: web, api_url: '{api.url}/', token_file: token, "
                                "ca_file: ca.crt}"), base_dir=tmp_path).groups["web"].provider
    assert isinstance(config, KubernetesConfig)
    assert config.api_url == api.url and config.ca_file == str(tmp_path / "ca.crt")
    assert config.token is not None and config.token.get_secret_value() == TOKEN


def test_every_problem_at_its_path(tmp_path: Path) -> None:
    found = problems("{type: kubernetes, kind: Job, name: Web_1, namespace: my.ns, in_cluster: true, port: 0, "
                     "ready_timeout: 0s, poll_interval: soon, replicas: 3}", tmp_path)
    assert found == {
        f"{P}.kind": "Input should be 'Deployment' or 'StatefulSet'",
        f"{P}.name": "must be a Kubernetes object name: lower-case letters, digits, '-' and '.', starting and ending "
                     "with a letter or digit",
        f"{P}.namespace": "must be a namespace name: at most 63 lower-case letters, digits and '-'",
        f"{P}.port": "Input should be greater than or equal to 1",
        f"{P}.ready_timeout": "must be longer than 0s",
        f"{P}.poll_interval": "must be a duration like 60s, got 'soon'",
        f"{P}.replicas": "unknown key",
    }


@pytest.mark.parametrize(("provider", "path", "message"), [
    ("{type: kubernetes, name: web}", "",
     "say how to reach the API server: in_cluster: true, kubeconfig: PATH (with an optional context), or api_url "
     "with token (or token_env / token_file)"),
    ("{type: kubernetes, name: web, in_cluster: true, api_url: 'https://k8s:6443', token: t}", "",
     "give only one of in_cluster, kubeconfig, api_url (got in_cluster and api_url)"),
    ("{type: kubernetes, name: web, api_url: 'https://k8s:6443'}", "",
     "api_url needs token (or token_env / token_file)"),
    ("{type: kubernetes, name: web, in_cluster: true, token: t}", "",
     "token: only with api_url (in_cluster brings its own credentials and CA)"),
    ("{type: kubernetes, name: web, in_cluster: true, verify: false}", "",
     "verify: only with api_url (in_cluster brings its own credentials and CA)"),
    ("{type: kubernetes, name: web, in_cluster: true, context: prod}", "", "context needs kubeconfig"),
    ("{type: kubernetes, name: web, api_url: 'https://k8s:6443', token: t, verify: false, ca_file: /etc/hostname}",
     "", "give ca_file or verify: false, not both"),
    ("{type: kubernetes, name: web, api_url: 'k8s:6443', token: t}", "api_url",
     "must be the API server's URL, e.g. https://203.0.113.10:6443"),
    ("{type: kubernetes, name: web, api_url: 'https://k8s:6443', token_env: NO_SUCH_K8S_TOKEN_VAR}", "",
     "token_env: environment variable NO_SUCH_K8S_TOKEN_VAR is not set"),
    ("{type: kubernetes, name: web, api_url: 'https://k8s:6443', token: t, token_env: T}", "",
     "give only one of token, token_env"),
    ("{type: kubernetes, name: web, in_cluster: true, ready_timeout: 1s, poll_interval: 5s}", "",
     "poll_interval must not be longer than ready_timeout"),
    ("{type: kubernetes, name: web, kubeconfig: /nonexistent/kubeconfig}", "kubeconfig",
     "cannot read /nonexistent/kubeconfig: No such file or directory"),
    ("{type: kubernetes, name: web, api_url: 'https://k8s:6443', token: t, ca_file: /nonexistent/ca.crt}", "ca_file",
     "cannot read /nonexistent/ca.crt: no such file"),
], ids=["no-auth", "two-ways", "url-without-token", "token-without-url", "verify-without-url",
        "context-without-kubeconfig", "ca-and-no-verify", "url-without-scheme", "token-env-unset",
        "token-twice", "poll-longer-than-timeout", "kubeconfig-missing", "ca-file-missing"])
def test_single_problems(provider: str, path: str, message: str) -> None:
    assert problems(provider) == {f"{P}.{path}" if path else P: message}


def test_kubeconfig_contexts_are_checked_at_load(tmp_path: Path) -> None:
    kubeconfig(tmp_path / "kube.yaml", "https://127.0.0.1:6443", "t")
    file = tmp_path / "kube.yaml"
    assert problems("{type: kubernetes, name: web, kubeconfig: kube.yaml, context: prod}", tmp_path) == {
        P: f"context 'prod' is not in {file} (contexts: standin, elsewhere)"}
    file.write_text(file.read_text().replace("current-context: elsewhere\n", ""))
    assert problems("{type: kubernetes, name: web, kubeconfig: kube.yaml}", tmp_path) == {
        P: f"{file} has no current-context: set context (one of standin, elsewhere)"}
    (tmp_path / "not-kube.yaml").write_text("just: text\n")
    assert problems("{type: kubernetes, name: web, kubeconfig: not-kube.yaml}", tmp_path) == {
        f"{P}.kubeconfig": f"{tmp_path / 'not-kube.yaml'} is not a kubeconfig (no contexts)"}


# -- the stand-in itself ------------------------------------------------------------------------------------------


def raw(api: KubernetesStandin, method: str, path: str, body: Any = None, token: str | None = TOKEN,
        content_type: str = "application/merge-patch+json") -> tuple[int, Any]:
    import json
    import urllib.error
    import urllib.request

    headers = {"Content-Type": content_type} if body is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{api.url}{path}", method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_standin_refuses_requests_without_the_token(api: KubernetesStandin) -> None:
    for token in (None, "forged"):
        status, body = raw(api, "GET", f"{DEPLOYMENT}/scale", token=token)
        assert status == 401
        assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def test_standin_scale_subresource_and_selectors(api: KubernetesStandin) -> None:
    api.add_deployment("shop", replicas=2, labels={"app": "shop", "tier": "front"},
                       selector={"matchLabels": {"app": "shop"},
                                 "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]})
    status, scale_body = raw(api, "GET", "/apis/apps/v1/namespaces/default/deployments/shop/scale")
    assert status == 200 and scale_body["kind"] == "Scale" and scale_body["apiVersion"] == "autoscaling/v1"
    assert scale_body["spec"] == {"replicas": 2} and scale_body["status"]["selector"] == "app=shop,tier in (back,front)"
    assert raw(api, "PATCH", "/apis/apps/v1/namespaces/default/deployments/shop/scale",
               {"spec": {"replicas": 0}})[1]["spec"] == {}  # ScaleSpec.replicas is omitempty
    status, body = raw(api, "PATCH", "/apis/apps/v1/namespaces/default/deployments/shop/scale",
                       {"spec": {"replicas": -1}})
    assert status == 422 and body["reason"] == "Invalid" and "must be greater than or equal to 0" in body["message"]
    status, body = raw(api, "PATCH", "/apis/apps/v1/namespaces/default/deployments/shop/scale",
                       {"spec": {"replicas": 1}}, content_type="application/json")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
    _, listed = raw(api, "GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb%2Ctier+notin+%28front%29")
    assert listed["kind"] == "PodList" and len(listed["items"]) == 1  # web's pod (no tier label)
    _, listed = raw(api, "GET", "/api/v1/namespaces/default/pods?labelSelector=%21app")
    assert listed["items"] == []
    status, body = raw(api, "GET", "/api/v1/namespaces/default/pods?labelSelector=app%3D%3D%3Dx")
    assert status == 400 and body["reason"] == "BadRequest"


def test_standin_delete_with_a_stale_uid_is_a_conflict(api: KubernetesStandin) -> None:
    name = api.pod_bodies()[0]["metadata"]["name"]
    status, body = raw(api, "DELETE", f"/api/v1/namespaces/default/pods/{name}",
                       {"preconditions": {"uid": "some-older-uid"}}, content_type="application/json")
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"].startswith(f'Operation cannot be fulfilled on Pod "{name}": Precondition failed: UID')
    assert name in pod_uids(api)
