"""A bare field path as a truthiness test, and ALL / ANY / NONE written with `conditions`."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from cascadence.conditions import (
    Aggregate,
    Compare,
    ConditionEvaluator,
    ConditionSyntaxError,
    EvalWarning,
    Exists,
    Logical,
    Truthy,
    compile_condition,
    parse_condition,
    to_dict,
    to_expression,
)
from cascadence.conditions.structured import MAX_DEPTH, TOO_DEEP

# -- bare paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ("flag", Truthy("flag")),
        ("not flag", Logical("NOT", (Truthy("flag"),))),
        ("!flag", Logical("NOT", (Truthy("flag"),))),
        ("(flag)", Truthy("flag")),
        (
            "is_premium and amount > 100",
            Logical("AND", (Truthy("is_premium"), Compare("amount", ">", 100))),
        ),
        ("a || b && c", Logical("OR", (Truthy("a"), Logical("AND", (Truthy("b"), Truthy("c")))))),
        ("not stages.FAST.data.flagged", Logical("NOT", (Truthy("stages.FAST.data.flagged"),))),
        ("user.roles.0", Truthy("user.roles.0")),
        ("`and`", Truthy("and")),
        ("`user-agent` or x", Logical("OR", (Truthy("user-agent"), Truthy("x")))),
        ("count", Truthy("count")),
        ("exists and sum", Logical("AND", (Truthy("exists"), Truthy("sum")))),
        ("any(items, .)", Aggregate("items", "ANY", condition=Truthy(""))),
        (
            "all(items, in_stock and not (backordered))",
            Aggregate(
                "items",
                "ALL",
                condition=Logical(
                    "AND", (Truthy("in_stock"), Logical("NOT", (Truthy("backordered"),)))
                ),
            ),
        ),
    ],
)
def test_a_bare_path_parses_as_a_truthiness_test(source: str, tree: Any) -> None:
    """A path with no operator, alone or inside and/or/not/parentheses, is `Truthy`."""
    assert parse_condition(source) == tree


@pytest.mark.parametrize(
    ("source", "expression", "structured"),
    [
        ("flag", "flag", {"field": "flag", "operator": "TRUTHY"}),
        (
            "!flag",
            "not flag",
            {"operator": "NOT", "conditions": [{"field": "flag", "operator": "TRUTHY"}]},
        ),
        ("`and`", "`and`", {"field": "and", "operator": "TRUTHY"}),
        (
            "any(tags, .)",
            "any(tags, .)",
            {"field": "tags", "operator": "ANY", "condition": {"field": ".", "operator": "TRUTHY"}},
        ),
    ],
)
def test_a_truthiness_test_renders_as_its_path(
    source: str, expression: str, structured: dict[str, Any]
) -> None:
    """In an expression a truthiness test is its bare path; structured, it is `TRUTHY`."""
    node = parse_condition(source)
    assert to_expression(node) == expression
    assert to_dict(node) == structured
    assert parse_condition(structured) == node


@pytest.mark.parametrize("source", ["5", "-1.5", "true", "false", "null", "'text'", "not 0"])
def test_a_bare_literal_is_still_not_a_condition(source: str) -> None:
    """Only a path stands alone: a literal on its own is a syntax error."""
    with pytest.raises(ConditionSyntaxError, match="expected a condition, got"):
        parse_condition(source)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (None, False),
        (0, False),
        (0.0, False),
        (-0.0, False),
        (7, True),
        (float("nan"), True),
        ("", False),
        ("false", True),
        ([], False),
        ((), False),
        ({}, False),
        (set(), False),
        ([0], True),
        ({"a": 0}, True),
    ],
)
def test_truthiness_is_pythons(value: Any, expected: bool) -> None:
    """Present, not null and truthy as Python sees it; a missing field is false."""
    for condition in ("flag", {"field": "flag", "operator": "TRUTHY"}):
        compiled = compile_condition(condition)
        warnings: list[EvalWarning] = []
        assert compiled({"flag": value}, None, warnings) is expected
        assert compiled({"other": value}) is False
        assert warnings == []
    assert compile_condition("not flag")({"flag": value}) is not expected


class Ambiguous:
    """A value whose truth cannot be told (as with a numpy array of several items)."""

    def __bool__(self) -> bool:
        raise ValueError("the truth value is ambiguous")


def test_a_value_without_a_truth_is_false_with_a_warning() -> None:
    """A value whose `__bool__` raises makes the test false and records why."""
    warnings: list[EvalWarning] = []
    assert compile_condition("flag")({"flag": Ambiguous()}, None, warnings) is False
    assert warnings == [
        EvalWarning("flag", "could not evaluate: ValueError: the truth value is ambiguous")
    ]
    inside: list[EvalWarning] = []
    assert compile_condition("any(xs, .)")({"xs": [Ambiguous()]}, None, inside) is False
    assert [w.path for w in inside] == ["xs[]"]


def test_a_bare_path_reads_objects_and_stage_results() -> None:
    """The path is read like any other: attributes of objects, and `stages.` results."""

    class Customer:
        is_premium = True

    condition = compile_condition("customer.is_premium and not stages.FAST.data.flagged")
    assert condition({"customer": Customer()}, {"FAST": {"data": {"flagged": 0}}}) is True
    assert condition({"customer": Customer()}, {"FAST": {"data": {"flagged": 1}}}) is False
    assert condition.fields == {"customer.is_premium", "stages.FAST.data.flagged"}
    assert condition.stage_refs == {"FAST"}


def test_explain_a_bare_path() -> None:
    """explain() reports a truthiness test as operator TRUTHY with the value it read."""
    report = compile_condition("flag and not other").explain({"flag": [1]})
    flag, negated = report["children"]
    assert flag == {
        "matched": True,
        "operator": "TRUTHY",
        "field": "flag",
        "value": [1],
        "missing": False,
        "expected": None,
        "children": [],
    }
    assert negated["matched"] is True
    assert negated["children"][0]["missing"] is True


def test_both_spellings_share_one_compiled_closure() -> None:
    """The evaluator compiles `flag` and its structured form once."""
    evaluator = ConditionEvaluator()
    text = evaluator.compile("flag")
    structured = evaluator.compile({"field": "flag", "operator": "TRUTHY"})
    assert structured.fn is text.fn
    assert len(evaluator) == 1
    assert evaluator.evaluate("flag", {"flag": "yes"}) is True


def test_a_truthiness_test_pickles() -> None:
    """A compiled condition with a truthiness test survives pickling and copying."""
    condition = compile_condition("flag and any(xs, .)")
    for clone in (pickle.loads(pickle.dumps(condition)), copy.deepcopy(condition)):
        assert clone.node == condition.node
        assert clone({"flag": 1, "xs": [0, 2]}) is True


def test_truthy_nodes_are_frozen_and_canonical() -> None:
    """`Truthy` reads like the other leaves (`op`), compares by field and is immutable."""
    node = Truthy("flag")
    assert node.op == "TRUTHY"
    assert (
        node == parse_condition("flag") == parse_condition({"field": "flag", "operator": "truthy"})
    )
    assert hash(node) == hash(Truthy("flag"))
    with pytest.raises(AttributeError):
        node.field = "other"  # type: ignore[misc]


def test_structured_value_false_negates_truthy() -> None:
    """As with EXISTS, `value: false` negates and `value: true` is the same."""
    assert parse_condition({"field": "f", "operator": "TRUTHY", "value": False}) == parse_condition(
        "not f"
    )
    assert parse_condition({"field": "f", "operator": "TRUTHY", "value": True}) == Truthy("f")


# -- ALL / ANY / NONE with `conditions` ------------------------------------------------------------

PRICE = {"field": "price", "operator": ">", "value": 0}
QTY = {"field": "qty", "operator": ">=", "value": 1}


def test_per_item_conditions_are_anded() -> None:
    """With a `field`, `conditions` is the per-item condition: the AND of the listed ones."""
    written = {"field": "items", "operator": "ALL", "conditions": [PRICE, QTY]}
    assert parse_condition(written) == Aggregate(
        "items",
        "ALL",
        condition=Logical("AND", (Compare("price", ">", 0), Compare("qty", ">=", 1))),
    )
    assert parse_condition(written) == parse_condition("all(items, price > 0 and qty >= 1)")
    one = {"field": "items", "operator": "ALL", "conditions": [PRICE]}
    assert parse_condition(one) == Aggregate("items", "ALL", condition=Compare("price", ">", 0))


@pytest.mark.parametrize(
    ("operator", "items", "expected"),
    [
        ("ALL", [{"price": 1, "qty": 1}, {"price": 2, "qty": 5}], True),
        ("ALL", [{"price": 1, "qty": 1}, {"price": 2, "qty": 0}], False),
        ("ALL", [], True),
        ("ANY", [{"price": 0, "qty": 1}, {"price": 2, "qty": 5}], True),
        ("ANY", [{"price": 1, "qty": 0}, {"price": 0, "qty": 5}], False),
        ("ANY", [], False),
        ("NONE", [{"price": 1, "qty": 0}, {"price": 0, "qty": 5}], True),
        ("NONE", [{"price": 1, "qty": 1}], False),
        ("NONE", [], True),
    ],
)
def test_per_item_conditions_read_each_item(
    operator: str, items: list[dict[str, Any]], expected: bool
) -> None:
    """Each item's fields are read relative to the item, as with `condition`."""
    condition = compile_condition(
        {"field": "items", "operator": operator, "conditions": [PRICE, QTY]}
    )
    assert condition({"items": items}) is expected
    assert condition.fields == {"items"}


def test_per_item_conditions_warn_with_the_item_path() -> None:
    """A mismatch inside a per-item `conditions` list names `list[].field`, and stage paths
    inside still read the stage results."""
    condition = compile_condition(
        {
            "field": "order.items",
            "operator": "ANY",
            "conditions": [PRICE, "stages.FAST.confidence < 0.5"],
        }
    )
    warnings: list[EvalWarning] = []
    stages = {"FAST": {"confidence": 0.2}}
    assert condition({"order": {"items": [{"price": "1"}]}}, stages, warnings) is False
    assert warnings == [EvalWarning("order.items[].price", "'>' compares int 0 with a str")]
    assert condition({"order": {"items": [{"price": 1}]}}, stages) is True
    assert condition.fields == {"order.items", "stages.FAST.confidence"}
    report = condition.explain({"order": {"items": [{"price": 1}, {"price": 0}]}}, stages)
    assert [child["matched"] for child in report["children"]] == [True, False]


@pytest.mark.parametrize(
    ("operator", "tree"),
    [
        ("ALL", Logical("AND", (Compare("a", ">", 1), Truthy("b")))),
        ("any", Logical("OR", (Compare("a", ">", 1), Truthy("b")))),
        ("NONE", Logical("NOT", (Logical("OR", (Compare("a", ">", 1), Truthy("b"))),))),
    ],
)
def test_without_a_field_conditions_are_combined(operator: str, tree: Any) -> None:
    """With no `field`, ALL is AND, ANY is OR and NONE is NOR of the listed conditions."""
    written = {
        "operator": operator,
        "conditions": [{"field": "a", "operator": ">", "value": 1}, "b"],
    }
    assert parse_condition(written) == tree
    assert parse_condition(to_dict(parse_condition(written))) == tree


@pytest.mark.parametrize(
    ("operator", "tree"),
    [
        ("ALL", Exists("x", "EXISTS")),
        ("ANY", Exists("x", "EXISTS")),
        ("NONE", Logical("NOT", (Exists("x", "EXISTS"),))),
    ],
)
def test_one_combined_condition_is_that_condition(operator: str, tree: Any) -> None:
    """ALL and ANY of one condition are that condition; NONE of it is its negation."""
    assert parse_condition({"operator": operator, "conditions": ["exists(x)"]}) == tree


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"a": 0, "b": ""}, (False, False, True)),
        ({"a": 2, "b": ""}, (False, True, False)),
        ({"a": 2, "b": "x"}, (True, True, False)),
        ({}, (False, False, True)),
    ],
)
def test_combined_conditions_evaluate(data: dict[str, Any], expected: tuple[bool, ...]) -> None:
    """ALL, ANY and NONE of the listed conditions evaluate as all, some and none."""
    listed = [{"field": "a", "operator": ">", "value": 1}, "b"]
    got = tuple(
        compile_condition({"operator": op, "conditions": listed})(data)
        for op in ("ALL", "ANY", "NONE")
    )
    assert got == expected


def test_combined_conditions_nest_and_mix_forms() -> None:
    """The two `conditions` forms nest inside each other and inside AND/OR/NOT."""
    raw = {
        "operator": "NOT",
        "condition": {
            "operator": "ANY",
            "conditions": [
                {"field": "items", "operator": "ALL", "conditions": [PRICE, "in_stock"]},
                "is_premium",
            ],
        },
    }
    condition = compile_condition(raw)
    assert to_expression(condition.node) == "not (all(items, price > 0 and in_stock) or is_premium)"
    assert condition({"items": [{"price": 1, "in_stock": True}]}) is False
    assert condition({"items": [{"price": 1}]}) is True


def test_combined_conditions_count_as_levels() -> None:
    """Nested ALL/ANY/NONE `conditions` count towards the depth limit like AND does."""
    raw: dict[str, Any] = {"field": "x", "operator": "EXISTS"}
    for index in range(MAX_DEPTH + 5):
        raw = (
            {"operator": "NONE", "conditions": [raw]}
            if index % 2
            else {"field": "items", "operator": "ALL", "conditions": [raw]}
        )
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(raw)
    assert [i.message for i in info.value.issues] == [TOO_DEEP]
    assert info.value.issues[0].path == ".".join(["conditions[0]"] * (MAX_DEPTH + 1))
