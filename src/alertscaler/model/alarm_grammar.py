"""Alarm conditions as values, and the parser of Monasca's alarm-definition expressions. Pure: no I/O, no clock.

The grammar is Monasca's (monasca-api ``expression_parser/alarm_expr_parser.py``, monasca-common
``AlarmExpression.g4``)::

    expr     := and_expr (OR and_expr)*                      OR  := or | ||
    and_expr := primary (AND primary)*                       AND := and | &&
    primary  := '(' expr ')' | sub
    sub      := (call | metric) relop number ['times' N]     relop := < | <= | > | >= | lt | lte | gt | gte
              | number relop (call | metric) ['times' N]     (the backward form: the operator is reversed)
    call     := func '(' metric [',' 'deterministic'] [',' period] ')'
    func     := min | max | sum | count | avg | last
    metric   := name ['{' [dim (',' dim)*] '}']               dim := name '=' value

Keywords are case-insensitive; AND binds tighter than OR, both left-associative. Defaults: period 60 (a
non-zero multiple of 60), ``times`` 1 (at least 1), not deterministic. Without a function, ``>``/``>=`` mean
``max`` and ``<``/``<=`` mean ``min``. A definition is deterministic only if every sub-expression is.
Names may hold any printable character but whitespace and ``,(){}=<>"``; dimension names and values may also
hold inner spaces (trimmed at the ends).

``parse_expression`` raises ``ExpressionError`` naming the column (1-based) of the first problem. The same
values (``SubExpression``) describe an Aodh/Ceilometer threshold alarm, built by ``config.alarms`` (which also
allows ``eq`` / ``ne`` and a PromQL query instead of a metric). ``model.alarm_promql`` compiles them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

DEFAULT_PERIOD: Final = 60
DEFAULT_PERIODS: Final = 1
MAX_NAME: Final = 255


class Function(str, Enum):
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    COUNT = "count"
    LAST = "last"


class Operator(str, Enum):
    """A comparison: Monasca's four, and Aodh's ``eq`` / ``ne`` too. The value is the PromQL operator."""

    GT = ">"
    GTE = ">="
    LT = "<"
    LTE = "<="
    EQ = "=="
    NE = "!="

    def reversed(self) -> Operator:
        """The operator with its operands swapped (``5 < x`` is ``x > 5``)."""
        return _REVERSED.get(self, self)

    @property
    def upward(self) -> bool:
        return self in (Operator.GT, Operator.GTE)

    @property
    def downward(self) -> bool:
        return self in (Operator.LT, Operator.LTE)


_REVERSED: Final = {Operator.GT: Operator.LT, Operator.LT: Operator.GT, Operator.GTE: Operator.LTE,
                    Operator.LTE: Operator.GTE}

#: every spelling of a comparison: Monasca's (``lt lte gt gte`` and symbols) and Aodh's (``lt le eq ne ge gt``)
OPERATOR_NAMES: Final = {
    "<": Operator.LT, "lt": Operator.LT, "<=": Operator.LTE, "lte": Operator.LTE, "le": Operator.LTE,
    ">": Operator.GT, "gt": Operator.GT, ">=": Operator.GTE, "gte": Operator.GTE, "ge": Operator.GTE,
    "==": Operator.EQ, "=": Operator.EQ, "eq": Operator.EQ, "!=": Operator.NE, "ne": Operator.NE,
}


class LogicalOp(str, Enum):
    AND = "and"
    OR = "or"


@dataclass(frozen=True)
class MetricRef:
    """A metric name with the dimensions it must have (``disk_read_ops{device=vda}``), in the order written."""

    name: str
    dimensions: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        dims = ",".join(f"{k}={v}" for k, v in self.dimensions)
        return f"{self.name}{{{dims}}}" if self.dimensions else self.name


@dataclass(frozen=True)
class SubExpression:
    """One comparison: ``function(metric, period) operator threshold times periods``.

    ``promql`` replaces ``metric`` for an Aodh alarm on a PromQL query (``metric`` is then None); ``function``
    None means "compare every series as it is" (a PromQL query without a statistic)."""

    function: Function | None
    metric: MetricRef | None
    operator: Operator
    threshold: float
    period: int = DEFAULT_PERIOD
    periods: int = DEFAULT_PERIODS
    deterministic: bool = False
    promql: str | None = None
    column: int = field(default=1, compare=False)  # where it starts in the expression (1-based)

    def __str__(self) -> str:
        what = str(self.metric) if self.metric is not None else f"({self.promql})"
        args = [what]
        if self.deterministic:
            args.append("deterministic")
        if self.period != DEFAULT_PERIOD:
            args.append(str(self.period))
        head = f"{self.function.value}({', '.join(args)})" if self.function is not None else what
        times = f" times {self.periods}" if self.periods != DEFAULT_PERIODS else ""
        return f"{head} {self.operator.value} {format_number(self.threshold)}{times}"


@dataclass(frozen=True)
class Logical:
    op: LogicalOp
    left: Expression
    right: Expression

    def __str__(self) -> str:
        return f"{_operand(self.left, self.op)} {self.op.value} {_operand(self.right, self.op)}"


Expression = SubExpression | Logical


def _operand(expr: Expression, parent: LogicalOp) -> str:
    if isinstance(expr, Logical) and expr.op is not parent:
        return f"({expr})"
    return str(expr)


def sub_expressions(expr: Expression) -> list[SubExpression]:
    """The comparisons of ``expr``, left to right."""
    if isinstance(expr, SubExpression):
        return [expr]
    return sub_expressions(expr.left) + sub_expressions(expr.right)


def is_deterministic(expr: Expression) -> bool:
    return all(s.deterministic for s in sub_expressions(expr))


def format_number(value: float) -> str:
    """``70.0`` → ``70``; other floats as Python writes them (shortest exact form)."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


class ExpressionError(ValueError):
    """An expression that does not parse. ``column`` is 1-based; the message starts with it."""

    def __init__(self, message: str, column: int) -> None:
        self.column = column
        self.reason = message
        super().__init__(f"column {column}: {message}")


# --- the parser ----------------------------------------------------------------------------------------------

_NAME_PUNCT: Final = frozenset(".-_#!$%&'*+/:;?@[\\]^`|~")
_NUMBER: Final = re.compile(r"-?\d+(?:\.\d+)?")
_INTEGER: Final = re.compile(r"\d+")
_SYMBOL_OPS: Final = ("<=", ">=", "<", ">")
_WORD_OPS: Final = ("lte", "gte", "lt", "gt")
_RELOPS_SHOWN: Final = "<, <=, >, >=, lt, lte, gt, gte"


def _name_char(ch: str) -> bool:
    return ch.isalnum() or ch in _NAME_PUNCT or (ord(ch) >= 128 and not ch.isspace())


def parse_expression(text: str) -> Expression:
    """Parse a Monasca alarm expression. Raises ``ExpressionError`` (with the column) on the first problem."""
    parser = _Parser(text)
    parser.skip()
    if parser.at_end():
        raise ExpressionError("empty expression: give a comparison like avg(cpu.user_perc) > 85", 1)
    expr = parser.expression()
    parser.skip()
    if not parser.at_end():
        found = parser.found()
        if parser.peek() == ")":
            raise ExpressionError("')' without a matching '('", parser.column())
        raise ExpressionError(f"expected and, or or the end of the expression, found {found}", parser.column())
    return expr


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # --- scanning
    def column(self, pos: int | None = None) -> int:
        return (self.pos if pos is None else pos) + 1

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def found(self) -> str:
        if self.at_end():
            return "the end of the expression"
        end = self.pos
        while end < len(self.text) and end - self.pos < 20 and not self.text[end].isspace():
            end += 1
        return repr(self.text[self.pos:end or self.pos + 1])

    def fail(self, what: str, pos: int | None = None) -> ExpressionError:
        return ExpressionError(f"expected {what}, found {self.found()}", self.column(pos))

    def keyword(self, *words: str) -> str | None:
        """One of ``words`` (case-insensitive) here, not followed by a name character; consumed if found."""
        for word in words:
            end = self.pos + len(word)
            if self.text[self.pos:end].lower() == word and not (end < len(self.text) and _name_char(self.text[end])):
                self.pos = end
                return word
        return None

    def symbol(self, *symbols: str) -> str | None:
        for sym in symbols:
            if self.text.startswith(sym, self.pos):
                self.pos += len(sym)
                return sym
        return None

    def name(self, what: str, spaces: bool = False) -> str:
        start = self.pos
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if not (_name_char(ch) or (spaces and ch in " \t")):
                break
            self.pos += 1
        value = self.text[start:self.pos].strip()
        if not value:
            self.pos = start
            raise self.fail(what)
        if len(value) > MAX_NAME:
            raise ExpressionError(f"{what} is longer than {MAX_NAME} characters", self.column(start))
        return value

    # --- grammar
    def expression(self) -> Expression:
        left = self.and_expression()
        while True:
            self.skip()
            if self.keyword("or") is None and self.symbol("||") is None:
                return left
            left = Logical(LogicalOp.OR, left, self.and_expression())

    def and_expression(self) -> Expression:
        left = self.primary()
        while True:
            self.skip()
            if self.keyword("and") is None and self.symbol("&&") is None:
                return left
            left = Logical(LogicalOp.AND, left, self.primary())

    def primary(self) -> Expression:
        self.skip()
        if self.at_end():
            raise self.fail("a comparison like avg(cpu.user_perc) > 85, or '('")
        if self.peek() == "(":
            start = self.pos
            self.pos += 1
            expr = self.expression()
            self.skip()
            if self.symbol(")") is None:
                raise ExpressionError(f"expected ')' to close the '(' at column {self.column(start)}, found "
                                      f"{self.found()}", self.column())
            return expr
        return self.sub_expression()

    def sub_expression(self) -> SubExpression:
        start = self.pos
        number = _NUMBER.match(self.text, self.pos)
        if number is not None and (number.end() == len(self.text) or not _name_char(self.text[number.end()])):
            # the backward form: threshold first
            threshold = float(number.group())
            self.pos = number.end()
            operator = self.relop().reversed()
            self.skip()
            function, metric, deterministic, period = self.operand()
        else:
            function, metric, deterministic, period = self.operand()
            operator = self.relop()
            self.skip()
            threshold = self.number()
        periods = self.times()
        if function is None:
            if operator not in (Operator.GT, Operator.GTE, Operator.LT, Operator.LTE):  # pragma: no cover
                raise ExpressionError("internal: no function for this operator", self.column(start))
            function = Function.MAX if operator.upward else Function.MIN
        return SubExpression(function=function, metric=metric, operator=operator, threshold=threshold, period=period,
                             periods=periods, deterministic=deterministic, column=self.column(start))

    def operand(self) -> tuple[Function | None, MetricRef, bool, int]:
        """``func(metric[, deterministic][, period])`` or a bare ``metric``."""
        name_at = self.pos
        head = self.name("a metric name or a function (avg, min, max, sum, count, last)")
        after = self.pos
        self.skip()
        if self.peek() != "(":
            self.pos = after
            return None, self.dimensions(head, name_at), False, DEFAULT_PERIOD
        try:
            function = Function(head.lower())
        except ValueError:
            raise ExpressionError(f"unknown function {head!r}: use one of avg, min, max, sum, count, last",
                                  self.column(name_at)) from None
        self.pos += 1
        self.skip()
        metric_at = self.pos
        metric = self.dimensions(self.name("a metric name"), metric_at)
        deterministic, period = False, DEFAULT_PERIOD
        self.skip()
        if self.symbol(","):
            self.skip()
            if self.keyword("deterministic"):
                deterministic = True
                self.skip()
                if self.symbol(","):
                    self.skip()
                    period = self.period()
            else:
                period = self.period()
        self.skip()
        if self.symbol(")") is None:
            raise self.fail(f"')' to close {function.value}(" + (", or ',' then deterministic or a period"
                                                                  if not deterministic else ""))
        return function, metric, deterministic, period

    def dimensions(self, name: str, name_at: int) -> MetricRef:
        after_name = self.pos
        self.skip()
        if self.peek() != "{":
            self.pos = after_name
            return MetricRef(name)
        open_at = self.pos
        self.pos += 1
        dims: list[tuple[str, str]] = []
        self.skip()
        if self.symbol("}"):
            return MetricRef(name)
        while True:
            self.skip()
            key_at = self.pos
            key = self.name("a dimension name", spaces=True)
            self.skip()
            if self.symbol("=") is None:
                raise self.fail(f"'=' after the dimension name {key!r}")
            self.skip()
            value = self.name(f"a value for the dimension {key!r}", spaces=True)
            if any(k == key for k, _ in dims):
                raise ExpressionError(f"more than one value was given for the dimension {key!r}",
                                      self.column(key_at))
            dims.append((key, value))
            self.skip()
            if self.symbol("}"):
                return MetricRef(name, tuple(dims))
            if self.symbol(",") is None:
                if self.at_end():
                    raise ExpressionError(f"'{{' at column {self.column(open_at)} is never closed: expected ',' "
                                          "or '}'", self.column())
                raise self.fail("',' or '}' after a dimension")

    def relop(self) -> Operator:
        self.skip()
        sym = self.symbol(*_SYMBOL_OPS) or self.keyword(*_WORD_OPS)
        if sym is None:
            raise self.fail(f"a comparison ({_RELOPS_SHOWN})")
        return OPERATOR_NAMES[sym.lower()]

    def number(self) -> float:
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            raise self.fail("a number (the threshold, like 85 or -2.5)")
        self.pos = match.end()
        return float(match.group())

    def integer(self, what: str) -> tuple[int, int]:
        at = self.pos
        match = _INTEGER.match(self.text, self.pos)
        if match is None or (match.end() < len(self.text) and _name_char(self.text[match.end()])):
            raise self.fail(what)
        self.pos = match.end()
        return int(match.group()), at

    def period(self) -> int:
        period, at = self.integer("deterministic or a period in seconds (a multiple of 60)")
        if period == 0 or period % 60:
            raise ExpressionError(f"the period must be a non-zero multiple of 60 seconds, got {period}",
                                  self.column(at))
        return period

    def times(self) -> int:
        mark = self.pos
        self.skip()
        if self.keyword("times") is None:
            self.pos = mark
            return DEFAULT_PERIODS
        self.skip()
        periods, at = self.integer("the number of periods after times (1 or more)")
        if periods < 1:
            raise ExpressionError(f"times must be 1 or more, got {periods}", self.column(at))
        return periods


def parse_dimensions(text: str) -> tuple[tuple[str, str], ...]:
    """A Ceilometer query (``resource_id=VM_ID;project_id=P``, ``;`` or ``,`` between terms) as dimensions.
    Raises ``ExpressionError`` naming the column of a term without ``=`` or a name given twice."""
    out: list[tuple[str, str]] = []
    pos = 0
    for term in re.split(r"[;,]", text):
        at = pos + (len(term) - len(term.lstrip())) + 1
        pos += len(term) + 1
        if not term.strip():
            continue
        key, eq, value = term.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ExpressionError(f"expected name=value, found {term.strip()!r}", at)
        key, value = key.strip(), value.strip()
        if key.endswith(("!", "<", ">")):
            raise ExpressionError(f"only equality (name=value) is supported, found {term.strip()!r}", at)
        if any(k == key for k, _ in out):
            raise ExpressionError(f"more than one value was given for {key!r}", at)
        out.append((key, value))
    return tuple(out)
