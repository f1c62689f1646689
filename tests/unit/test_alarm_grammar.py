"""Monasca alarm-expression grammar (``model.alarm_grammar``): every function, operator (both spellings and the
backward form), dimensions, period, deterministic, ``times``, and/or precedence and associativity, parentheses,
and an error naming the column for each way an expression can be wrong."""

from __future__ import annotations

import pytest

from alertscaler.model.alarm_grammar import (
    ExpressionError,
    Function,
    Logical,
    LogicalOp,
    MetricRef,
    Operator,
    SubExpression,
    is_deterministic,
    parse_dimensions,
    parse_expression,
    sub_expressions,
)


def sub(function: Function, name: str, op: Operator, threshold: float, *, dims: tuple[tuple[str, str], ...] = (),
        period: int = 60, periods: int = 1, deterministic: bool = False) -> SubExpression:
    return SubExpression(function=function, metric=MetricRef(name, dims), operator=op, threshold=threshold,
                         period=period, periods=periods, deterministic=deterministic)


@pytest.mark.parametrize(("text", "expected"), [
    ("avg(cpu.user_perc) > 85", sub(Function.AVG, "cpu.user_perc", Operator.GT, 85)),
    ("min(m) > 1", sub(Function.MIN, "m", Operator.GT, 1)),
    ("max(m) > 1", sub(Function.MAX, "m", Operator.GT, 1)),
    ("sum(m) > 1", sub(Function.SUM, "m", Operator.GT, 1)),
    ("count(m) > 1", sub(Function.COUNT, "m", Operator.GT, 1)),
    ("last(m) > 1", sub(Function.LAST, "m", Operator.GT, 1)),
    ("AVG(m) > 1", sub(Function.AVG, "m", Operator.GT, 1)),
    ("avg(m) < 1", sub(Function.AVG, "m", Operator.LT, 1)),
    ("avg(m) <= 1", sub(Function.AVG, "m", Operator.LTE, 1)),
    ("avg(m) >= 1", sub(Function.AVG, "m", Operator.GTE, 1)),
    ("avg(m) lt 1", sub(Function.AVG, "m", Operator.LT, 1)),
    ("avg(m) LTE 1", sub(Function.AVG, "m", Operator.LTE, 1)),
    ("avg(m) gt 1", sub(Function.AVG, "m", Operator.GT, 1)),
    ("avg(m) gte 1", sub(Function.AVG, "m", Operator.GTE, 1)),
    ("avg(m)>=-2.5", sub(Function.AVG, "m", Operator.GTE, -2.5)),
    ("m > 5", sub(Function.MAX, "m", Operator.GT, 5)),
    ("m >= 5", sub(Function.MAX, "m", Operator.GTE, 5)),
    ("m < 5", sub(Function.MIN, "m", Operator.LT, 5)),
    ("m lte 5", sub(Function.MIN, "m", Operator.LTE, 5)),
    ("5 < avg(m)", sub(Function.AVG, "m", Operator.GT, 5)),
    ("5 gte m", sub(Function.MIN, "m", Operator.LTE, 5)),
    ("avg(disk_read_ops{device=vda}, 120) > 1000",
     sub(Function.AVG, "disk_read_ops", Operator.GT, 1000, dims=(("device", "vda"),), period=120)),
    ("avg(cpu.user_perc{}) > 85", sub(Function.AVG, "cpu.user_perc", Operator.GT, 85)),
    ("max(foo{hostname=mini-mon, service = my svc}) > 1",
     sub(Function.MAX, "foo", Operator.GT, 1, dims=(("hostname", "mini-mon"), ("service", "my svc")))),
    ("avg(cpu.user_perc{hostname=a}, 60) > 80 times 3",
     sub(Function.AVG, "cpu.user_perc", Operator.GT, 80, dims=(("hostname", "a"),), periods=3)),
    ("m > 5 TIMES 2", sub(Function.MAX, "m", Operator.GT, 5, periods=2)),
    ("count(log.error{test=1}, deterministic) > 1.0",
     sub(Function.COUNT, "log.error", Operator.GT, 1, dims=(("test", "1"),), deterministic=True)),
    ("count(log.error{test=1}, deterministic, 120) > 1.0",
     sub(Function.COUNT, "log.error", Operator.GT, 1, dims=(("test", "1"),), period=120, deterministic=True)),
    ("max  (  3test_metric5  {  this  =  that  })  lt  5 times    3",
     sub(Function.MAX, "3test_metric5", Operator.LT, 5, dims=(("this", "that"),), periods=3)),
    ("max(千幸福{घोड़ा=馬}) > 1", sub(Function.MAX, "千幸福", Operator.GT, 1, dims=(("घोड़ा", "馬"),))),
    ("avg(a-b_c.d:e/f) > 0", sub(Function.AVG, "a-b_c.d:e/f", Operator.GT, 0)),
], ids=["avg", "min", "max", "sum", "count", "last", "function-caseless", "lt-symbol", "lte-symbol", "gte-symbol",
        "lt-word", "lte-word-caseless", "gt-word", "gte-word", "no-spaces-negative", "bare-gt-is-max",
        "bare-gte-is-max", "bare-lt-is-min", "bare-lte-is-min", "backward-function", "backward-bare",
        "dimensions-and-period", "empty-dimensions", "dimension-spaces", "times", "times-caseless",
        "deterministic", "deterministic-and-period", "spaces-everywhere", "unicode", "punctuation-in-name"])
def test_a_comparison_parses(text: str, expected: SubExpression) -> None:
    assert parse_expression(text) == expected


A, B, C, D = (sub(Function.MAX, n, Operator.GT, 1) for n in "abcd")


@pytest.mark.parametrize(("text", "expected"), [
    ("a > 1 and b > 1", Logical(LogicalOp.AND, A, B)),
    ("a > 1 && b > 1", Logical(LogicalOp.AND, A, B)),
    ("a > 1 or b > 1", Logical(LogicalOp.OR, A, B)),
    ("a > 1 || b > 1", Logical(LogicalOp.OR, A, B)),
    ("a > 1 AND b > 1", Logical(LogicalOp.AND, A, B)),
    ("a > 1 or b > 1 and c > 1", Logical(LogicalOp.OR, A, Logical(LogicalOp.AND, B, C))),
    ("a > 1 and b > 1 or c > 1", Logical(LogicalOp.OR, Logical(LogicalOp.AND, A, B), C)),
    ("(a > 1 or b > 1) and c > 1", Logical(LogicalOp.AND, Logical(LogicalOp.OR, A, B), C)),
    ("a > 1 or b > 1 or c > 1", Logical(LogicalOp.OR, Logical(LogicalOp.OR, A, B), C)),
    ("a > 1 and b > 1 and c > 1", Logical(LogicalOp.AND, Logical(LogicalOp.AND, A, B), C)),
    ("a > 1 and (b > 1 or c > 1) and d > 1",
     Logical(LogicalOp.AND, Logical(LogicalOp.AND, A, Logical(LogicalOp.OR, B, C)), D)),
    ("((a > 1))", A),
    ("a>1or b>1", Logical(LogicalOp.OR, A, B)),
    ("a > 1 or(b > 1)", Logical(LogicalOp.OR, A, B)),
], ids=["and", "and-symbol", "or", "or-symbol", "caseless", "and-binds-tighter-right",
        "and-binds-tighter-left", "parentheses-override", "or-left-associative", "and-left-associative",
        "nested-parentheses", "redundant-parentheses", "no-space-before-or", "parenthesis-after-or"])
def test_and_or_precedence_and_parentheses(text: str, expected: Logical | SubExpression) -> None:
    assert parse_expression(text) == expected


def test_the_seed_expression() -> None:
    expr = parse_expression("avg(cpu.user_perc{}) > 85 or avg(disk_read_ops{device=vda}, 120) > 1000")

    assert [str(s) for s in sub_expressions(expr)] == ["avg(cpu.user_perc) > 85",
                                                       "avg(disk_read_ops{device=vda}, 120) > 1000"]
    assert str(expr) == "avg(cpu.user_perc) > 85 or avg(disk_read_ops{device=vda}, 120) > 1000"
    assert not is_deterministic(expr)


@pytest.mark.parametrize(("text", "deterministic"), [
    ("count(a, deterministic) > 1", True),
    ("count(a, deterministic) > 1 and count(b, deterministic) > 1", True),
    ("count(a, deterministic) > 1 or b > 1", False),
], ids=["one", "all", "one-of-two"])
def test_deterministic_only_if_every_comparison_is(text: str, deterministic: bool) -> None:
    assert is_deterministic(parse_expression(text)) is deterministic


@pytest.mark.parametrize("text", [
    "avg(m) > 85 or max(n{a=b}, 120) > 1 times 3",
    "(a > 1 or b > 1) and c > 1",
    "count(log.error{test=1}, deterministic, 120) > 1",
], ids=["or", "parenthesised-or-under-and", "deterministic"])
def test_str_parses_back_to_the_same_expression(text: str) -> None:
    expr = parse_expression(text)
    assert parse_expression(str(expr)) == expr


@pytest.mark.parametrize(("text", "column", "says"), [
    ("", 1, "empty expression"),
    ("   ", 1, "empty expression"),
    ("avg(m) 85", 8, "expected a comparison"),
    ("avg(m) > ", 10, "expected a number"),
    ("avg(m) > x", 10, "expected a number"),
    ("median(m) > 1", 1, "unknown function 'median'"),
    ("avg(m > 1", 7, "expected ')' to close avg("),
    ("avg() > 1", 5, "expected a metric name"),
    ("avg(m, 90) > 1", 8, "non-zero multiple of 60"),
    ("avg(m, 0) > 1", 8, "non-zero multiple of 60"),
    ("avg(m, soon) > 1", 8, "expected deterministic or a period"),
    ("avg(m, deterministic, x) > 1", 23, "expected deterministic or a period"),
    ("avg(m) > 1 times 0", 18, "times must be 1 or more"),
    ("avg(m) > 1 times", 17, "expected the number of periods"),
    ("avg(m) > 1 times x", 18, "expected the number of periods"),
    ("avg(m{a}) > 1", 8, "expected '=' after the dimension name 'a'"),
    ("avg(m{a=}) > 1", 9, "expected a value for the dimension 'a'"),
    ("avg(m{=b}) > 1", 7, "expected a dimension name"),
    ("avg(m{a=b,a=c}) > 1", 11, "more than one value was given for the dimension 'a'"),
    ("avg(m{a=b c=d}) > 1", 12, "expected ',' or '}' after a dimension"),
    ("avg(m{a=b", 10, "'{' at column 6 is never closed"),
    ("avg(m) > 1 and", 15, "expected a comparison"),
    ("avg(m) > 1 or or b > 1", 18, "expected a comparison"),  # a keyword may name a metric (Monasca)
    ("avg(m) > 1 xor b > 1", 12, "expected and, or or the end"),
    ("avg(m) > 1 orange > 1", 12, "expected and, or or the end"),
    ("(avg(m) > 1", 12, "expected ')' to close the '(' at column 1"),
    ("avg(m) > 1)", 11, "')' without a matching '('"),
    ("avg(m) ltx 1", 8, "expected a comparison"),
    ("avg(m) = 1", 8, "expected a comparison"),
    ("> 1", 1, "expected a metric name or a function"),
], ids=["empty", "blank", "no-operator", "no-threshold", "threshold-not-a-number", "unknown-function",
        "unclosed-call", "no-metric", "period-not-multiple-of-60", "period-zero", "bad-second-argument",
        "bad-period-after-deterministic", "times-zero", "times-without-number", "times-not-a-number",
        "dimension-without-value", "dimension-empty-value", "dimension-empty-name", "dimension-twice",
        "dimension-value-with-space-then-equals", "unclosed-dimensions", "dangling-and", "keyword-as-metric-name",
        "unknown-logical",
        "or-needs-a-word-boundary", "unclosed-parenthesis", "extra-parenthesis", "unknown-word-operator",
        "single-equals", "nothing-before-operator"])
def test_an_error_names_the_column(text: str, column: int, says: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)

    assert caught.value.column == column, str(caught.value)
    assert says in str(caught.value)
    assert str(caught.value).startswith(f"column {column}: ")


@pytest.mark.parametrize(("text", "expected"), [
    ("resource_id=VM_ID", (("resource_id", "VM_ID"),)),
    ("resource_id=VM_ID;project_id = p1", (("resource_id", "VM_ID"), ("project_id", "p1"))),
    ("a=1,b=2", (("a", "1"), ("b", "2"))),
    ("", ()),
], ids=["one", "semicolon", "comma", "empty"])
def test_ceilometer_queries_become_dimensions(text: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_dimensions(text) == expected


@pytest.mark.parametrize(("text", "column", "says"), [
    ("resource_id", 1, "expected name=value"),
    ("a=1;b", 5, "expected name=value"),
    ("a=1; a=2", 6, "more than one value"),
    ("cpu>=5", 1, "only equality"),
], ids=["no-equals", "second-term", "twice", "not-equality"])
def test_ceilometer_query_errors_name_the_column(text: str, column: int, says: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_dimensions(text)

    assert caught.value.column == column and says in str(caught.value)
