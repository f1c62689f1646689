"""``providers.common``: the helpers every provider family shares — the HTTP-status classifier and
``Retry-After`` (``retries``), the scale-in victim strategies (``victims``), timestamps, natural names and
template files (``parsing``), and the ``env`` check of the program-running providers (``env``). Pure; no SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.common import victims
from alertscaler.providers.common.env import checked_env
from alertscaler.providers.common.parsing import EARLIEST, natural_key, parse_timestamp, read_template
from alertscaler.providers.common.retries import DEFAULT_DELAY, RetryPolicy, classify, retry_after_seconds
from alertscaler.providers.kubernetes.provider import RETRY_POLICY as KUBERNETES
from alertscaler.providers.linode.client import RETRY_POLICY as LINODE
from alertscaler.providers.openstack.auth import RETRY_POLICY as OPENSTACK

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
IN_30S = "Sun, 01 Mar 2026 12:00:30 GMT"

# -- retries: Retry-After ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [
    ("7", 7.0), ("0.5", 0.5), ("0", 0.0), ("-3", 0.0), (IN_30S, 30.0), ("Sun, 01 Mar 2026 11:59:00 GMT", 0.0),
    ("soon", None), ("", None), (None, None),
], ids=["seconds", "fraction", "zero", "negative", "http-date", "date-past", "garbage", "empty", "none"])
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, now=NOW.timestamp()) == seconds


# -- retries: the classifier, under each family's policy ----------------------------------------------------------

POLICY = RetryPolicy(frozenset({429}), default_delay=9.0)
# (id, policy, status, Retry-After, body hint, expected class, expected delay)
CLASSIFY: list[tuple[str, RetryPolicy, int, str | None, float | None, type[Exception], float | None]] = [
    ("listed-status-header", POLICY, 429, "3", None, TemporaryProviderError, 3.0),
    ("listed-status-date", POLICY, 429, IN_30S, None, TemporaryProviderError, 30.0),
    ("listed-status-default", POLICY, 429, None, None, TemporaryProviderError, 9.0),
    ("listed-status-garbage-header", POLICY, 429, "soon", None, TemporaryProviderError, 9.0),
    ("hint-without-header", POLICY, 429, None, 4.0, TemporaryProviderError, 4.0),
    ("header-beats-hint", POLICY, 429, "2", 4.0, TemporaryProviderError, 2.0),
    ("5xx-not-listed", POLICY, 503, "2", None, PermanentProviderError, None),
    ("4xx", POLICY, 400, None, None, PermanentProviderError, None),
    ("every-5xx", RetryPolicy(frozenset(), every_5xx=True), 501, None, None, TemporaryProviderError, DEFAULT_DELAY),
    ("zero-honoured", POLICY, 429, "0", None, TemporaryProviderError, 0.0),
    ("zero-is-no-hint", RetryPolicy(frozenset({429}), zero_is_no_hint=True), 429, "0", None, TemporaryProviderError,
     DEFAULT_DELAY),
    # the families' policies, as they were before the one classifier
    ("openstack-409", OPENSTACK, 409, None, None, TemporaryProviderError, DEFAULT_DELAY),
    ("openstack-501", OPENSTACK, 501, None, None, PermanentProviderError, None),
    ("openstack-zero", OPENSTACK, 503, "0", None, TemporaryProviderError, DEFAULT_DELAY),
    ("linode-409", LINODE, 409, None, None, PermanentProviderError, None),
    ("linode-501", LINODE, 501, "1", None, TemporaryProviderError, 1.0),
    ("linode-zero", LINODE, 429, "0", None, TemporaryProviderError, 0.0),
    ("kubernetes-409", KUBERNETES, 409, None, None, TemporaryProviderError, DEFAULT_DELAY),
    ("kubernetes-501", KUBERNETES, 501, None, None, TemporaryProviderError, DEFAULT_DELAY),
    ("kubernetes-status-hint", KUBERNETES, 429, None, 6.0, TemporaryProviderError, 6.0),
    ("kubernetes-403", KUBERNETES, 403, None, None, PermanentProviderError, None),
]


@pytest.mark.parametrize(("policy", "status", "header", "hint", "kind", "delay"), [c[1:] for c in CLASSIFY],
                         ids=[c[0] for c in CLASSIFY])
def test_classify(policy: RetryPolicy, status: int, header: str | None, hint: float | None, kind: type[Exception],
                  delay: float | None) -> None:
    error = classify(status, f"doing: HTTP {status}", policy, retry_after=header, hint=hint, now=NOW.timestamp())
    assert type(error) is kind and str(error) == f"doing: HTTP {status}"
    assert getattr(error, "delay", None) == delay


# -- victims ----------------------------------------------------------------------------------------------------


def member(name: str, state: MemberState = MemberState.RUNNING, minutes: int | None = 0,
           **labels: str) -> Member:
    created = None if minutes is None else NOW + timedelta(minutes=minutes)
    return Member(id=f"id-{name}", address=None, state=state, created_at=created, labels={"name": name, **labels})


A, B, C = member("web-9-1", minutes=0), member("web-10-1", minutes=0), member("web-2-1", minutes=5)
FAILED = member("web-11-1", MemberState.FAILED, minutes=10)
STARTING = member("web-12-1", MemberState.STARTING, minutes=-5)
UNDATED = member("web-1-1", minutes=None)

# (id, strategy, members, count, expected names in removal order)
STRATEGIES = [
    ("oldest-natural-names", "oldest", [C, B, A], 3, ["web-9-1", "web-10-1", "web-2-1"]),
    ("newest", "newest", [A, B, C], 2, ["web-2-1", "web-10-1"]),
    ("undated-is-oldest", "oldest", [A, UNDATED], 1, ["web-1-1"]),
    ("none-asked", "oldest", [A, B], 0, []),
    ("more-than-there-are", "newest", [A], 3, ["web-9-1"]),
    ("unhealthy-first", "unhealthy_first", [A, STARTING, FAILED, C], 3, ["web-11-1", "web-12-1", "web-9-1"]),
    ("unhealthy-first-negative", "unhealthy_first", [A, FAILED], -1, []),
]


@pytest.mark.parametrize(("strategy", "members", "count", "expected"), [c[1:] for c in STRATEGIES],
                         ids=[c[0] for c in STRATEGIES])
def test_strategies(strategy: str, members: list[Member], count: int, expected: list[str]) -> None:
    age = victims.member_age("name")
    if strategy == "unhealthy_first":
        chosen = victims.ranked(members, count, rank=victims.state_rank, age=age, order="oldest")
    else:
        chosen = victims.by_age(members, count, age=age, order="newest" if strategy == "newest" else "oldest")
    assert [m.labels["name"] for m in chosen] == expected


@pytest.mark.parametrize(("order", "expected"), [("oldest", ["a", "c", "b", "d"]), ("newest", ["c", "a", "d", "b"])],
                         ids=["oldest-within-rank", "newest-within-rank"])
def test_ranked_keeps_age_order_within_a_rank(order: victims.Order, expected: list[str]) -> None:
    items = [("a", 0, 1), ("b", 1, 2), ("c", 0, 3), ("d", 1, 4)]  # (name, rank, age)
    chosen = victims.ranked(items, 4, rank=lambda i: i[1], age=lambda i: i[2], order=order)
    assert [i[0] for i in chosen] == expected


# -- parsing ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-03-01T12:00:00Z", NOW),
    ("2026-03-01T13:00:00+01:00", NOW),
    ("2026-03-01T12:00:00", NOW),
    ("2026-03-01T12:00:00.000000", NOW),
    ("not a date", None),
    ("", None),
    (None, None),
    (1700000000, None),
], ids=["zulu", "offset", "naive-is-utc", "microseconds", "garbage", "empty", "none", "not-text"])
def test_parse_timestamp(value: object, expected: datetime | None) -> None:
    assert parse_timestamp(value) == expected


def test_natural_key_reads_digit_runs_as_numbers() -> None:
    names = ["web-10-1", "web-9-2", "web-9-10", "api-1"]
    assert sorted(names, key=natural_key) == ["api-1", "web-9-2", "web-9-10", "web-10-1"]
    assert EARLIEST < NOW


@pytest.mark.parametrize(("content", "error"), [
    (b"#cloud-config\n", None), (b"\xff\xfe", "is not UTF-8 text"), (None, "cannot read"),
], ids=["text", "not-utf8", "missing"])
def test_read_template(tmp_path: Path, content: bytes | None, error: str | None) -> None:
    file = tmp_path / "user-data"
    if content is not None:
        file.write_bytes(content)
    if error is None:
        assert read_template(file) == "#cloud-config\n"
    else:
        with pytest.raises(ValueError, match=error):
            read_template(file)


# -- env --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "error"), [
    ({"REGION": "eu", "_X1": ""}, None),
    ({"1X": "v"}, "is not an environment variable name"),
    ({"AS_GROUP": "v"}, "reserved AS_GROUP"),
    ({"X": "a\x00b"}, "contains a NUL character"),
], ids=["ok", "bad-name", "reserved", "nul"])
def test_checked_env(env: dict[str, str], error: str | None) -> None:
    def reserved(name: str) -> str | None:
        return f"reserved {name}" if name.startswith("AS_") else None

    if error is None:
        assert checked_env(env, reserved) == env
    else:
        with pytest.raises(ValueError, match=error):
            checked_env(env, reserved)


@pytest.mark.parametrize(("gone_after", "timeout", "left"), [
    ({"a": 0.0, "b": 0.0}, 10.0, None),          # already gone: no wait
    ({"a": 2.0, "b": 5.0}, 10.0, None),          # gone while polled
    ({"a": 2.0, "b": 50.0}, 10.0, "web-b"),      # one still there at the deadline: named
], ids=["gone-at-once", "gone-while-polled", "one-left"])
def test_await_gone(gone_after: dict[str, float], timeout: float, left: str | None) -> None:
    from alertscaler.model.errors import TemporaryProviderError as Temporary
    from alertscaler.providers.common.deleting import await_gone

    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def wait() -> None:
        await_gone({k: f"web-{k}" for k in gone_after}, lambda k: now[0] < gone_after[k], timeout=timeout,
                   poll=1.0, clock=lambda: now[0], sleep=sleep, what="web: servers")

    if left is None:
        wait()
        assert now[0] == max(gone_after.values())
        return
    with pytest.raises(Temporary, match=f"web: servers not gone 10s after DELETE: {left}$"):
        wait()
    assert now[0] == timeout and all(s <= 1.0 for s in slept)
