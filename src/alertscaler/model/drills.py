"""Fire drills: the label that marks a synthetic alert as a drill, as a value both sides share.

``alertscaler drill GROUP [POLICY]`` (``cli.drilling``) posts an alert carrying ``DRILL_LABEL="<random id>"``
to Alertmanager; when it comes back in a webhook, ``act.drills`` splits it out of its notification and records
a ``drill`` decision (what the policy would have done), touching nothing else. The label is reserved: an alert
that carries it never changes capacity, whoever sent it.
"""

from __future__ import annotations

from collections.abc import Mapping

DRILL_LABEL = "alertscaler_drill"


def drill_id(labels: Mapping[str, str]) -> str | None:
    """The drill id an alert's labels carry; None when it is not a drill (the label is absent)."""
    return labels.get(DRILL_LABEL)


def is_drill(labels: Mapping[str, str]) -> bool:
    """Is an alert with these labels a drill? Any value of the label counts, even an empty one."""
    return DRILL_LABEL in labels
