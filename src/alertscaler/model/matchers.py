"""Label matchers in Alertmanager's syntax (``name="v"``, ``!=``, ``=~``, ``!~``). Used by config and routing.

Regular expressions are fully anchored, as in Alertmanager and Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$', re.S)


class Op(str, Enum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True)
class Matcher:
    name: str
    op: Op
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Parse one matcher; raise ValueError naming what is wrong."""
        m = _MATCHER.match(text)
        if not m:
            raise ValueError(f'{text!r} is not a matcher like alertname="HighLoad" (operators = != =~ !~)')
        name, op, raw = m.group(1), Op(m.group(2)), m.group(3)
        value = _unquote(raw)
        regex = None
        if op in (Op.RE, Op.NRE):
            try:
                regex = re.compile(f"(?:{value})")
            except re.error as exc:
                raise ValueError(f"{text!r}: bad regular expression: {exc}") from None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op is Op.EQ:
            return actual == self.value
        if self.op is Op.NE:
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.op is Op.RE else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op.value}"{escaped}"'


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        body, out, i = raw[1:-1], [], 0
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                i += 2
                continue
            if ch == '"':
                raise ValueError(f"unescaped quote in {raw!r}")
            out.append(ch)
            i += 1
        return "".join(out)
    if '"' in raw:
        raise ValueError(f"unbalanced quotes in {raw!r}")
    return raw


@dataclass(frozen=True)
class MatcherSet:
    """All matchers must match (logical AND). An empty set matches nothing, so a typo cannot match everything."""

    matchers: tuple[Matcher, ...]

    @classmethod
    def parse(cls, texts: Sequence[str]) -> MatcherSet:
        return cls(tuple(Matcher.parse(t) for t in texts))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return bool(self.matchers) and all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        return "{" + ", ".join(str(m) for m in self.matchers) + "}"
