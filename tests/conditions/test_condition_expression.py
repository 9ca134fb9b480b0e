"""The expression form: grammar, literals, paths, and rendering both forms back."""

from __future__ import annotations

from typing import Any

import pytest

from cascadence.conditions import (
    Aggregate,
    Compare,
    Exists,
    Logical,
    Membership,
    Node,
    Pattern,
    Statistic,
    parse_condition,
    to_dict,
    to_expression,
)

A = Compare("a", "==", 1)
B = Compare("b", "==", 2)
C = Compare("c", "==", 3)


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ("a == 1 or b == 2 and c == 3", Logical("OR", (A, Logical("AND", (B, C))))),
        ("a == 1 and b == 2 or c == 3", Logical("OR", (Logical("AND", (A, B)), C))),
        ("a == 1 and b == 2 and c == 3", Logical("AND", (A, B, C))),
        ("(a == 1 and b == 2) and c == 3", Logical("AND", (Logical("AND", (A, B)), C))),
        ("a == 1 && (b == 2 || c == 3)", Logical("AND", (A, Logical("OR", (B, C))))),
        ("not a == 1 and b == 2", Logical("AND", (Logical("NOT", (A,)), B))),
        ("!(a == 1 or b == 2)", Logical("NOT", (Logical("OR", (A, B)),))),
        ("not not a == 1", Logical("NOT", (Logical("NOT", (A,)),))),
        ("A == 1 AND b == 2 Or NOT c == 3", None),
        ("((a == 1))", A),
    ],
)
def test_precedence_and_grouping(source: str, tree: Node | None) -> None:
    """`not` binds tighter than `and`, which binds tighter than `or`; parentheses group."""
    node = parse_condition(source)
    if tree is not None:
        assert node == tree
    else:
        assert isinstance(node, Logical)
        assert node.op == "OR"


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("42", 42),
        ("-7", -7),
        ("1.5", 1.5),
        (".5", 0.5),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        ("-1.5E-3", -0.0015),
        ('"double"', "double"),
        ("'single'", "single"),
        (r'"quote \" and \\ backslash"', 'quote " and \\ backslash'),
        (r"'it\'s'", "it's"),
        (r'"tab\tnew\nline\r"', "tab\tnew\nline\r"),
        (r'"\u00e9\U0001F600"', "\u00e9\U0001f600"),
        (r'"\d+\.\w"', r"\d+\.\w"),
        ('"ünïcödé"', "ünïcödé"),
        ("true", True),
        ("FALSE", False),
        ("null", None),
        ("Null", None),
    ],
)
def test_literals(literal: str, value: Any) -> None:
    """Numbers, strings with escapes, booleans and null are read as the right Python values."""
    node = parse_condition(f"x == {literal}")
    assert isinstance(node, Compare)
    assert node.value == value
    assert type(node.value) is type(value)


def test_lists() -> None:
    """Lists hold scalars, may be empty and may end with a comma."""
    assert parse_condition("x in []") == Membership("x", "IN", ())
    assert parse_condition("x in [1, 'a', null, true,]") == Membership(
        "x", "IN", (1, "a", None, True)
    )
    assert parse_condition("x NOT IN [2]") == Membership("x", "NOT_IN", (2,))


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ("items.0.price > 1", "items.0.price"),
        ("items.-1.price > 1", "items.-1.price"),
        ("stages.FAST_CHECK.confidence > 1", "stages.FAST_CHECK.confidence"),
        ("`user-agent` > 1", "user-agent"),
        ("`and` > 1", "and"),
        ("`a b.c d` > 1", "a b.c d"),
        ("count > 1", "count"),
        ("exists > 1", "exists"),
        ("user.and.or > 1", "user.and.or"),
        ("_private > 1", "_private"),
    ],
)
def test_paths(source: str, field: str) -> None:
    """Dot paths, list indices, backtick-quoted names and function names used as fields."""
    node = parse_condition(source)
    assert isinstance(node, Compare)
    assert node.field == field


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ("roles contains 'admin'", Membership("roles", "CONTAINS", "admin")),
        ('email matches "@x\\.com$"', Pattern("email", "@x\\.com$")),
        ("exists(a.b)", Exists("a.b", "EXISTS")),
        ("is_null(a)", Exists("a", "IS_NULL")),
        ("a is null", Exists("a", "IS_NULL")),
        ("a is not null", Exists("a", "EXISTS")),
        ("sum(v) > 3", Statistic("v", "SUM", ">", 3)),
        ("avg(v) == 5000", Statistic("v", "AVG", "==", 5000)),
        ("MIN(v) <= -1.5", Statistic("v", "MIN", "<=", -1.5)),
        ("max(v) != 0", Statistic("v", "MAX", "!=", 0)),
        ("count(v) >= 2", Statistic("v", "COUNT", ">=", 2)),
        ("any(v > 3)", Aggregate("v", "ANY", ">", 3)),
        ('all(v == "x")', Aggregate("v", "ALL", "==", "x")),
        ("none(v == null)", Aggregate("v", "NONE", "==", None)),
        (
            "any(items, price > 1 and exists(sku))",
            Aggregate(
                "items",
                "ANY",
                condition=Logical("AND", (Compare("price", ">", 1), Exists("sku", "EXISTS"))),
            ),
        ),
        (
            "all(orders, any(lines, . == 3))",
            Aggregate(
                "orders",
                "ALL",
                condition=Aggregate("lines", "ANY", condition=Compare("", "==", 3)),
            ),
        ),
    ],
)
def test_operators_and_functions(source: str, tree: Node) -> None:
    """Each operator and function of the expression form builds its node."""
    assert parse_condition(source) == tree


def test_structured_canonical_forms() -> None:
    """Operator names are upper-cased, `.` is the item, and a lone AND child stands alone."""
    assert parse_condition({"operator": "and", "conditions": ["a == 1"]}) == A
    assert parse_condition({"field": "x", "operator": "not_in", "value": [1]}) == Membership(
        "x", "NOT_IN", (1,)
    )
    node = parse_condition(
        {"field": "t", "operator": "any", "condition": {"field": ".", "operator": "exists"}}
    )
    assert node == Aggregate("t", "ANY", condition=Exists("", "EXISTS"))
    assert parse_condition({"operator": "NOT", "condition": "a == 1"}) == Logical("NOT", (A,))


def test_parse_condition_returns_a_node_unchanged() -> None:
    """A tree passed to parse_condition comes back as it is."""
    assert parse_condition(A) is A


SPEC_EXAMPLES: list[tuple[dict[str, Any], str]] = [
    (
        {"field": "stages.FAST_CHECK.confidence", "operator": "<", "value": 0.8},
        "stages.FAST_CHECK.confidence < 0.8",
    ),
    (
        {
            "operator": "AND",
            "conditions": [
                {"field": "user.risk_score", "operator": ">", "value": 0.7},
                {"field": "transaction.amount", "operator": ">=", "value": 10000},
            ],
        },
        "user.risk_score > 0.7 and transaction.amount >= 10000",
    ),
    (
        {"field": "user.email", "operator": "MATCHES", "value": ".*@trusted-domain\\.com$"},
        'user.email matches ".*@trusted-domain\\\\.com$"',
    ),
    (
        {"field": "user.roles", "operator": "CONTAINS", "value": "admin"},
        'user.roles contains "admin"',
    ),
    (
        {"field": "previous_transactions.amounts", "operator": "AVG", "value": 5000},
        "avg(previous_transactions.amounts) == 5000",
    ),
]


@pytest.mark.parametrize(("structured", "expression"), SPEC_EXAMPLES)
def test_spec_examples_render_both_ways(structured: dict[str, Any], expression: str) -> None:
    """The configuration reference's examples render to the expected text and back."""
    node = parse_condition(structured)
    assert to_expression(node) == expression
    assert to_dict(node) == structured
    assert parse_condition(expression) == node


ROUND_TRIP = [
    "a == 1 or (b == 2 and c == 3)",
    "(a == 1 and b == 2) and c == 3",
    "not (a == 1 or b == 2)",
    "not not a == 1",
    '`user-agent` contains "bot" and `and` == 1',
    'x == "line\\nbreak \\"quoted\\" back\\\\slash \\u0007 \\ud800"',
    'x in [1, 2.5, "a", null, true]',
    "x not in []",
    "any(items, price > 1 and not is_null(sku))",
    'all(tags, . matches "^[a-z]+$")',
    "none(v < -1e+16)",
    "count(v) != 0",
    "stages.A.data.0.x >= 0.5",
]


@pytest.mark.parametrize("source", ROUND_TRIP)
def test_round_trip(source: str) -> None:
    """Rendering a tree in either form parses back to an identical tree."""
    node = parse_condition(source)
    again = parse_condition(to_expression(node))
    assert again == node
    assert repr(again) == repr(node)
    assert repr(parse_condition(to_dict(node))) == repr(node)


def test_to_dict_shapes() -> None:
    """to_dict writes the structured form a YAML file would hold."""
    assert to_dict(parse_condition("x in [1, 2]")) == {
        "field": "x",
        "operator": "IN",
        "value": [1, 2],
    }
    assert to_dict(parse_condition("any(s >= 0.9)")) == {
        "field": "s",
        "operator": "ANY",
        "compare": ">=",
        "value": 0.9,
    }
    assert to_dict(parse_condition("all(t, . == 1)")) == {
        "field": "t",
        "operator": "ALL",
        "condition": {"field": ".", "operator": "==", "value": 1},
    }
    assert to_dict(parse_condition("not exists(a)")) == {
        "operator": "NOT",
        "conditions": [{"field": "a", "operator": "EXISTS"}],
    }


def test_rendering_rejects_foreign_objects() -> None:
    """Only condition nodes can be rendered."""
    with pytest.raises(TypeError):
        to_dict(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_expression(Node())
