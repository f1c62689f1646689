"""Which stack a request's alerts name, and the allowlist that keeps tenant-set labels from steering alertscaler.

Alert labels come from instance tags via Prometheus relabelling (seed 000: ``tenant_stack_id``,
``tenant_stack_name``, ``tenant_project_id``), so a tenant can put any value there: every refusal below happens
before Heat is called (``refuse_unless_allowed``) or right after Heat named the stack (``check_found``).
"""

from __future__ import annotations

from typing import Any

import pytest

from alertscaler.model.errors import PermanentProviderError
from alertscaler.providers.openstack.heat.events import StackInfo
from alertscaler.providers.openstack.heat.labels import (
    Allowlist,
    LabelNames,
    StackRef,
    check_found,
    refuse_unless_allowed,
    stack_from_alerts,
)

NAMES = LabelNames()
WEB_ID = "7a3f9264-1ef2-42aa-956e-3450f6482a4d"
DB_ID = "1c52ae45-8419-413e-aece-8dda533b0221"


def alert(name: str = "HighNetwork", **labels: str) -> dict[str, Any]:
    return {"status": "firing", "labels": {"alertname": name, **labels}, "fingerprint": f"fp-{name.lower()}"}


WEB = {"tenant_stack_id": WEB_ID, "tenant_stack_name": "web", "tenant_project_id": "p1"}


@pytest.mark.parametrize(
    ("alerts", "expected"),
    [
        ([alert(**WEB)], StackRef(WEB_ID, "web", "p1")),
        ([alert(**WEB), alert("HighCpu", **WEB)], StackRef(WEB_ID, "web", "p1")),
        ([alert(tenant_stack_id=WEB_ID), alert("HighCpu", tenant_stack_name="web", tenant_project_id="p1")],
         StackRef(WEB_ID, "web", "p1")),
        ([alert(tenant_stack_name="web")], StackRef(None, "web", None)),
        ([alert(tenant_stack_id=WEB_ID, tenant_stack_name="  ")], StackRef(WEB_ID, None, None)),
        ([], None),
    ],
    ids=["one-alert", "two-agreeing", "partial-labels-merge", "name-only", "blank-label-ignored", "no-alerts"],
)
def test_stack_from_alerts(alerts: list[dict[str, Any]], expected: StackRef | None) -> None:
    assert stack_from_alerts(alerts, NAMES) == expected


def test_custom_label_names() -> None:
    names = LabelNames(stack_id="heat_stack", stack_name="heat_stack_name", project="project")
    ref = stack_from_alerts([alert(heat_stack=WEB_ID, project="p9", tenant_stack_id=DB_ID)], names)
    assert ref == StackRef(WEB_ID, None, "p9")


@pytest.mark.parametrize(
    ("alerts", "fragments"),
    [
        ([alert(**WEB), alert("HighCpu", **{**WEB, "tenant_stack_id": DB_ID})],
         [f"tenant_stack_id='{WEB_ID}' (HighNetwork #1 (fp-highnetwork))", f"tenant_stack_id='{DB_ID}' (HighCpu #2"]),
        ([alert(**WEB), alert("HighCpu", tenant_stack_id=WEB_ID, tenant_stack_name="db")],
         ["tenant_stack_name='web'", "tenant_stack_name='db'"]),
        ([alert(**WEB), alert("HighCpu", tenant_stack_id=WEB_ID, tenant_project_id="p2")],
         ["tenant_project_id='p1'", "tenant_project_id='p2'"]),
        ([alert(**WEB), alert("InstanceDown", instance="10.0.0.5:9100")],
         ["InstanceDown #2", "neither a tenant_stack_id nor a tenant_stack_name label"]),
    ],
    ids=["different-ids", "different-names", "different-projects", "alert-without-stack"],
)
def test_alerts_that_do_not_agree_are_refused(alerts: list[dict[str, Any]], fragments: list[str]) -> None:
    with pytest.raises(PermanentProviderError) as info:
        stack_from_alerts(alerts, NAMES)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert str(info.value).startswith("refused:")


ALLOW = Allowlist(stacks=frozenset({"web", DB_ID}), projects=frozenset({"p1"}))


@pytest.mark.parametrize(
    ("ref", "allow", "refusal"),
    [
        (StackRef(WEB_ID, "web", "p1"), ALLOW, None),
        (StackRef(DB_ID, None, None), ALLOW, None),  # project unknown: checked once Heat names it
        (StackRef(WEB_ID, "web", "p2"), ALLOW, "label tenant_project_id='p2' is not in allowed_projects"),
        (StackRef("0000", "evil", "p1"), ALLOW,
         "label tenant_stack_id='0000', tenant_stack_name='evil' is not in allowed_stacks"),
        (StackRef("0000", None, None), Allowlist(projects=frozenset({"p1"})), None),
        (StackRef(None, "evil", "p1"), Allowlist(stacks=frozenset({"web"})),
         "tenant_stack_name='evil' is not in allowed_stacks"),
    ],
    ids=["allowed", "allowed-by-id", "project-not-allowed", "stack-not-allowed", "projects-only-list",
         "name-not-allowed"],
)
def test_refuse_unless_allowed(ref: StackRef, allow: Allowlist, refusal: str | None) -> None:
    if refusal is None:
        refuse_unless_allowed(ref, allow, NAMES)
        return
    with pytest.raises(PermanentProviderError) as info:
        refuse_unless_allowed(ref, allow, NAMES)
    assert refusal in str(info.value) and "Heat was not called" in str(info.value)


def found(stack_id: str = WEB_ID, name: str = "web", project: str | None = "p1") -> StackInfo:
    return StackInfo(id=stack_id, name=name, project=project)


@pytest.mark.parametrize(
    ("ref", "heat", "allow", "refusal"),
    [
        (StackRef(WEB_ID, "web", "p1"), found(), ALLOW, None),
        (StackRef(None, "web", None), found(), ALLOW, None),
        (StackRef(WEB_ID, None, None), found(name="other"), Allowlist(projects=frozenset({"p1"})), None),
        (StackRef(WEB_ID, "web", None), found(stack_id=DB_ID), ALLOW, f"but Heat returned stack web/{DB_ID}"),
        (StackRef(WEB_ID, "web", None), found(name="db"), ALLOW, "but Heat's stack"),
        (StackRef(WEB_ID, "web", "p1"), found(project="p2"), ALLOW, "in project 'p2'"),
        (StackRef(None, "web", None), found(project="p2"), ALLOW, "'p2', which is not in allowed_projects"),
        (StackRef(None, "web", None), found(project=None), ALLOW, "cannot be checked"),
        # the label is the tenant's data: it never vouches for the project (issue 12 point 7)
        (StackRef(None, "web", "p1"), found(project=None), ALLOW, "the tenant_project_id label is not trusted"),
        (StackRef(WEB_ID, None, "p1"), found(name="api"), ALLOW, "not in allowed_stacks (neither its id nor"),
    ],
    ids=["matches", "by-name", "id-label-and-projects-only", "other-id", "other-name", "label-project-differs",
         "heat-project-not-allowed", "project-unknown", "project-only-from-label", "stack-not-allowed-by-heat-name"],
)
def test_check_found(ref: StackRef, heat: StackInfo, allow: Allowlist, refusal: str | None) -> None:
    if refusal is None:
        check_found(ref, heat, allow, NAMES)
        return
    with pytest.raises(PermanentProviderError) as info:
        check_found(ref, heat, allow, NAMES)
    assert refusal in str(info.value)
