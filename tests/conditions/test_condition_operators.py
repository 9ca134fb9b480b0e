"""Every operator on present, missing and wrongly typed fields, in both condition forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from cascadence.conditions import (
    OPERATORS,
    EvalWarning,
    compile_condition,
    parse_condition,
)


@dataclass(frozen=True)
class Scenario:
    label: str
    data: Any
    expected: bool
    warns: bool = False


@dataclass(frozen=True)
class Case:
    name: str
    structured: dict[str, Any]
    expression: str
    scenarios: tuple[Scenario, ...]


def S(label: str, data: Any, expected: bool, warns: bool = False) -> Scenario:
    return Scenario(label, data, expected, warns)


def _user(**fields: Any) -> dict[str, Any]:
    return {"user": fields}


CASES = [
    Case(
        "eq-number",
        {"field": "user.age", "operator": "==", "value": 30},
        "user.age == 30",
        (
            S("equal", _user(age=30), True),
            S("equal-float", _user(age=30.0), True),
            S("different", _user(age=31), False),
            S("missing", {}, False),
            S("null", _user(age=None), False),
            S("string", _user(age="30"), False, warns=True),
            S("bool-is-not-number", _user(age=True), False),
        ),
    ),
    Case(
        "eq-string",
        {"field": "status", "operator": "==", "value": "ok"},
        'status == "ok"',
        (
            S("equal", {"status": "ok"}, True),
            S("different", {"status": "no"}, False),
            S("missing", {}, False),
            S("number", {"status": 1}, False, warns=True),
        ),
    ),
    Case(
        "eq-bool",
        {"field": "flag", "operator": "==", "value": True},
        "flag == true",
        (
            S("equal", {"flag": True}, True),
            S("one-is-not-true", {"flag": 1}, False),
            S("missing", {}, False),
        ),
    ),
    Case(
        "eq-null",
        {"field": "x", "operator": "==", "value": None},
        "x == null",
        (
            S("null", {"x": None}, True),
            S("present", {"x": 0}, False),
            S("missing-is-not-null-for-equality", {}, False),
        ),
    ),
    Case(
        "ne-number",
        {"field": "user.age", "operator": "!=", "value": 30},
        "user.age != 30",
        (
            S("different", _user(age=31), True),
            S("equal", _user(age=30), False),
            S("missing", {}, False),
            S("null", _user(age=None), True),
            S("string", _user(age="31"), False, warns=True),
        ),
    ),
    Case(
        "ne-string",
        {"field": "status", "operator": "!=", "value": "ok"},
        "status != 'ok'",
        (
            S("different", {"status": "no"}, True),
            S("equal", {"status": "ok"}, False),
            S("missing", {}, False),
            S("number", {"status": 2}, False, warns=True),
        ),
    ),
    Case(
        "ne-null",
        {"field": "x", "operator": "!=", "value": None},
        "x != null",
        (
            S("present", {"x": 1}, True),
            S("null", {"x": None}, False),
            S("missing", {}, False),
        ),
    ),
    Case(
        "gt",
        {"field": "stages.FAST.confidence", "operator": ">", "value": 0.8},
        "stages.FAST.confidence > 0.8",
        (
            S("above", {"__stages__": {"FAST": {"confidence": 0.9}}}, True),
            S("equal", {"__stages__": {"FAST": {"confidence": 0.8}}}, False),
            S("missing-stage", {"__stages__": {}}, False),
            S("no-stages", {}, False),
            S("string", {"__stages__": {"FAST": {"confidence": "high"}}}, False, warns=True),
            S("bool", {"__stages__": {"FAST": {"confidence": True}}}, False, warns=True),
        ),
    ),
    Case(
        "ge",
        {"field": "amount", "operator": ">=", "value": 10000},
        "amount >= 10000",
        (
            S("equal", {"amount": 10000}, True),
            S("below", {"amount": 9999.5}, False),
            S("missing", {}, False),
            S("null", {"amount": None}, False),
            S("string", {"amount": "10001"}, False, warns=True),
            S("list", {"amount": [10001]}, False, warns=True),
        ),
    ),
    Case(
        "lt",
        {"field": "account_age_days", "operator": "<", "value": 30},
        "account_age_days < 30",
        (
            S("below", {"account_age_days": 3}, True),
            S("above", {"account_age_days": 300}, False),
            S("missing", {}, False),
            S("string", {"account_age_days": "3"}, False, warns=True),
        ),
    ),
    Case(
        "le-string",
        {"field": "name", "operator": "<=", "value": "m"},
        'name <= "m"',
        (
            S("before", {"name": "alice"}, True),
            S("after", {"name": "zoe"}, False),
            S("missing", {}, False),
            S("number", {"name": 3}, False, warns=True),
        ),
    ),
    Case(
        "in",
        {"field": "user.country", "operator": "IN", "value": ["FR", "DE", 7]},
        'user.country in ["FR", "DE", 7]',
        (
            S("listed", _user(country="FR"), True),
            S("listed-number", _user(country=7.0), True),
            S("not-listed", _user(country="US"), False),
            S("missing", {}, False),
            S("unhashable", _user(country=["FR"]), False, warns=True),
        ),
    ),
    Case(
        "in-bools",
        {"field": "x", "operator": "in", "value": [True, 0]},
        "x in [true, 0]",
        (
            S("true", {"x": True}, True),
            S("zero", {"x": 0}, True),
            S("false-is-not-zero", {"x": False}, False),
            S("one-is-not-true", {"x": 1}, False),
        ),
    ),
    Case(
        "not-in",
        {"field": "user.country", "operator": "NOT_IN", "value": ["FR", "DE"]},
        'user.country not in ["FR", "DE"]',
        (
            S("not-listed", _user(country="US"), True),
            S("listed", _user(country="DE"), False),
            S("missing", {}, False),
            S("null", _user(country=None), True),
            S("unhashable", _user(country={"code": "US"}), False, warns=True),
        ),
    ),
    Case(
        "contains",
        {"field": "user.roles", "operator": "CONTAINS", "value": "admin"},
        'user.roles contains "admin"',
        (
            S("in-list", _user(roles=["user", "admin"]), True),
            S("substring", _user(roles="superadmin"), True),
            S("mapping-key", _user(roles={"admin": 1}), True),
            S("absent", _user(roles=["user"]), False),
            S("missing", {}, False),
            S("number", _user(roles=42), False, warns=True),
        ),
    ),
    Case(
        "contains-number",
        {"field": "codes", "operator": "contains", "value": 1},
        "codes contains 1",
        (
            S("present", {"codes": [3, 1.0]}, True),
            S("true-is-not-one", {"codes": [True]}, False),
            S("in-string", {"codes": "1"}, False, warns=True),
        ),
    ),
    Case(
        "matches",
        {"field": "user.email", "operator": "MATCHES", "value": r".*@trusted-domain\.com$"},
        r'user.email matches ".*@trusted-domain\.com$"',
        (
            S("match", _user(email="a@trusted-domain.com"), True),
            S("no-match", _user(email="a@trusted-domain.org"), False),
            S("missing", {}, False),
            S("null", _user(email=None), False),
            S("number", _user(email=42), False, warns=True),
        ),
    ),
    Case(
        "exists",
        {"field": "user.verified_at", "operator": "EXISTS"},
        "exists(user.verified_at)",
        (
            S("present", _user(verified_at="2024"), True),
            S("falsy-but-present", _user(verified_at=0), True),
            S("null", _user(verified_at=None), False),
            S("missing", {}, False),
            S("parent-not-a-mapping", {"user": 3}, False),
        ),
    ),
    Case(
        "exists-is-not-null",
        {"field": "user.verified_at", "operator": "EXISTS"},
        "user.verified_at is not null",
        (S("present", _user(verified_at="x"), True), S("missing", {}, False)),
    ),
    Case(
        "exists-value-true",
        {"field": "user.verified_at", "operator": "EXISTS", "value": True},
        "exists(user.verified_at)",
        (S("present", _user(verified_at="x"), True), S("missing", {}, False)),
    ),
    Case(
        "exists-value-false-negates",
        {"field": "user.verified_at", "operator": "EXISTS", "value": False},
        "not exists(user.verified_at)",
        (S("present", _user(verified_at="x"), False), S("missing", {}, True)),
    ),
    Case(
        "is-null-value-false-negates",
        {"field": "x", "operator": "IS_NULL", "value": False},
        "not is_null(x)",
        (S("null", {"x": None}, False), S("present", {"x": 0}, True)),
    ),
    Case(
        "is-null",
        {"field": "user.deleted_at", "operator": "IS_NULL"},
        "is_null(user.deleted_at)",
        (
            S("null", _user(deleted_at=None), True),
            S("missing", {}, True),
            S("present", _user(deleted_at="2024"), False),
        ),
    ),
    Case(
        "is-null-keyword",
        {"field": "x", "operator": "is_null"},
        "x is null",
        (S("null", {"x": None}, True), S("present", {"x": 0}, False)),
    ),
    Case(
        "truthy-bare-path",
        {"field": "is_premium", "operator": "TRUTHY"},
        "is_premium",
        (
            S("true", {"is_premium": True}, True),
            S("false", {"is_premium": False}, False),
            S("missing", {}, False),
            S("null", {"is_premium": None}, False),
            S("zero", {"is_premium": 0}, False),
            S("zero-float", {"is_premium": 0.0}, False),
            S("number", {"is_premium": 3}, True),
            S("empty-string", {"is_premium": ""}, False),
            S("text", {"is_premium": "no"}, True),
            S("empty-list", {"is_premium": []}, False),
            S("list", {"is_premium": [0]}, True),
            S("empty-mapping", {"is_premium": {}}, False),
            S("mapping", {"is_premium": {"a": 1}}, True),
            S("parent-not-a-mapping", 3, False),
        ),
    ),
    Case(
        "truthy-keyword-lower-case",
        {"field": "user.active", "operator": "truthy", "value": True},
        "user.active",
        (S("true", _user(active=1), True), S("missing", {}, False)),
    ),
    Case(
        "truthy-value-false-negates",
        {"field": "flag", "operator": "TRUTHY", "value": False},
        "not flag",
        (
            S("true", {"flag": True}, False),
            S("false", {"flag": False}, True),
            S("missing", {}, True),
        ),
    ),
    Case(
        "truthy-stage-path",
        {"field": "stages.FAST.data.flagged", "operator": "TRUTHY"},
        "stages.FAST.data.flagged",
        (
            S("flagged", {"__stages__": {"FAST": {"data": {"flagged": True}}}}, True),
            S("not-flagged", {"__stages__": {"FAST": {"data": {"flagged": False}}}}, False),
            S("no-stage", {"__stages__": {}}, False),
            S("no-stages", {}, False),
        ),
    ),
    Case(
        "truthy-with-comparison",
        {
            "operator": "AND",
            "conditions": [
                {"field": "is_premium", "operator": "TRUTHY"},
                {"field": "amount", "operator": ">", "value": 100},
            ],
        },
        "is_premium and amount > 100",
        (
            S("both", {"is_premium": True, "amount": 200}, True),
            S("not-premium", {"is_premium": False, "amount": 200}, False),
            S("small", {"is_premium": True, "amount": 5}, False),
            S("missing", {"amount": 200}, False),
        ),
    ),
    Case(
        "and",
        {
            "operator": "AND",
            "conditions": [
                {"field": "user.risk_score", "operator": ">", "value": 0.7},
                {"field": "transaction.amount", "operator": ">=", "value": 10000},
            ],
        },
        "user.risk_score > 0.7 and transaction.amount >= 10000",
        (
            S("both", {"user": {"risk_score": 0.9}, "transaction": {"amount": 10000}}, True),
            S("one", {"user": {"risk_score": 0.9}, "transaction": {"amount": 5}}, False),
            S("missing", {"user": {"risk_score": 0.9}}, False),
            S("mistyped", {"user": {"risk_score": "x"}, "transaction": {"amount": 1}}, False, True),
        ),
    ),
    Case(
        "or",
        {
            "operator": "or",
            "conditions": [
                {"field": "a", "operator": "==", "value": 1},
                {"field": "b", "operator": "==", "value": 2},
            ],
        },
        "a == 1 || b == 2",
        (
            S("first", {"a": 1}, True),
            S("second", {"b": 2}, True),
            S("neither", {"a": 2, "b": 1}, False),
            S("missing", {}, False),
            S("mistyped", {"a": "1", "b": 2}, True, warns=True),
        ),
    ),
    Case(
        "not",
        {"operator": "NOT", "conditions": [{"field": "x", "operator": ">", "value": 5}]},
        "not x > 5",
        (
            S("false-child", {"x": 3}, True),
            S("true-child", {"x": 7}, False),
            S("missing-makes-not-true", {}, True),
            S("mistyped-makes-not-true", {"x": "7"}, True, warns=True),
        ),
    ),
    Case(
        "all-value",
        {"field": "checks", "operator": "ALL", "value": "pass"},
        'all(checks == "pass")',
        (
            S("all", {"checks": ["pass", "pass"]}, True),
            S("one-fails", {"checks": ["pass", "fail"]}, False),
            S("empty", {"checks": []}, True),
            S("missing", {}, False),
            S("not-a-list", {"checks": "pass"}, False, warns=True),
        ),
    ),
    Case(
        "any-compare",
        {"field": "scores", "operator": "ANY", "compare": ">=", "value": 0.9},
        "any(scores >= 0.9)",
        (
            S("one", {"scores": [0.1, 0.95]}, True),
            S("none", {"scores": [0.1, 0.5]}, False),
            S("empty", {"scores": []}, False),
            S("missing", {}, False),
            S("mistyped-item", {"scores": ["high", 0.1]}, False, warns=True),
        ),
    ),
    Case(
        "none-value",
        {"field": "flags", "operator": "NONE", "value": "fraud"},
        'none(flags == "fraud")',
        (
            S("none", {"flags": ["ok"]}, True),
            S("one", {"flags": ["ok", "fraud"]}, False),
            S("empty", {"flags": []}, True),
            S("missing", {}, False),
            S("not-a-list", {"flags": 3}, False, warns=True),
        ),
    ),
    Case(
        "any-condition",
        {
            "field": "items",
            "operator": "ANY",
            "condition": {
                "operator": "AND",
                "conditions": [
                    {"field": "price", "operator": ">", "value": 100},
                    {"field": "category", "operator": "IN", "value": ["gift_card"]},
                ],
            },
        },
        'any(items, price > 100 and category in ["gift_card"])',
        (
            S("one", {"items": [{"price": 5}, {"price": 150, "category": "gift_card"}]}, True),
            S("none", {"items": [{"price": 150, "category": "book"}]}, False),
            S("item-missing-fields", {"items": [{}, 3]}, False),
            S("missing", {}, False),
        ),
    ),
    Case(
        "all-item-itself",
        {
            "field": "tags",
            "operator": "ALL",
            "condition": {"field": ".", "operator": "MATCHES", "value": "^[a-z]+$"},
        },
        'all(tags, . matches "^[a-z]+$")',
        (
            S("all", {"tags": ["abc", "x"]}, True),
            S("one-fails", {"tags": ["abc", "X1"]}, False),
            S("mistyped-item", {"tags": ["abc", 3]}, False, warns=True),
        ),
    ),
    Case(
        "all-item-truthy",
        {"field": "answers", "operator": "ALL", "condition": {"field": ".", "operator": "TRUTHY"}},
        "all(answers, .)",
        (
            S("all", {"answers": [1, "yes", [0]]}, True),
            S("one-falsy", {"answers": [1, ""]}, False),
            S("null-item", {"answers": [1, None]}, False),
            S("empty", {"answers": []}, True),
        ),
    ),
    Case(
        "all-field-conditions",
        {
            "field": "items",
            "operator": "ALL",
            "conditions": [
                {"field": "price", "operator": ">", "value": 0},
                "in_stock",
            ],
        },
        "all(items, price > 0 and in_stock)",
        (
            S(
                "all",
                {"items": [{"price": 1, "in_stock": True}, {"price": 2, "in_stock": 1}]},
                True,
            ),
            S("one-fails", {"items": [{"price": 1, "in_stock": True}, {"price": 0}]}, False),
            S("empty", {"items": []}, True),
            S("missing", {}, False),
            S("mistyped-item", {"items": [{"price": "1", "in_stock": True}]}, False, warns=True),
        ),
    ),
    Case(
        "none-field-one-condition",
        {
            "field": "items",
            "operator": "NONE",
            "conditions": [{"field": "price", "operator": ">", "value": 500}],
        },
        "none(items, price > 500)",
        (
            S("none", {"items": [{"price": 5}]}, True),
            S("one", {"items": [{"price": 5}, {"price": 501}]}, False),
        ),
    ),
    Case(
        "all-of-conditions",
        {
            "operator": "ALL",
            "conditions": [
                {"field": "a", "operator": ">", "value": 1},
                {"field": "b", "operator": "==", "value": "x"},
            ],
        },
        'a > 1 and b == "x"',
        (
            S("both", {"a": 2, "b": "x"}, True),
            S("one", {"a": 2, "b": "y"}, False),
            S("missing", {}, False),
        ),
    ),
    Case(
        "any-of-conditions",
        {
            "operator": "any",
            "conditions": [
                {"field": "a", "operator": ">", "value": 1},
                "b == 'x'",
            ],
        },
        'a > 1 or b == "x"',
        (
            S("first", {"a": 2}, True),
            S("second", {"b": "x"}, True),
            S("neither", {"a": 0, "b": "y"}, False),
            S("missing", {}, False),
        ),
    ),
    Case(
        "none-of-conditions",
        {
            "operator": "NONE",
            "conditions": [
                {"field": "a", "operator": ">", "value": 1},
                {"field": "b", "operator": "EXISTS"},
            ],
        },
        "not (a > 1 or exists(b))",
        (
            S("neither", {"a": 0}, True),
            S("first", {"a": 2}, False),
            S("second", {"a": 0, "b": 1}, False),
            S("missing", {}, True),
        ),
    ),
    Case(
        "any-of-one-condition",
        {"operator": "ANY", "conditions": ["flag"]},
        "flag",
        (S("true", {"flag": True}, True), S("false", {"flag": False}, False)),
    ),
    Case(
        "sum",
        {"field": "amounts", "operator": "SUM", "compare": ">", "value": 100},
        "sum(amounts) > 100",
        (
            S("above", {"amounts": [60, 50.5]}, True),
            S("below", {"amounts": [1, 2]}, False),
            S("empty-is-zero", {"amounts": []}, False),
            S("missing", {}, False),
            S("string-item", {"amounts": [200, "3"]}, False, warns=True),
            S("bool-item", {"amounts": [200, True]}, False, warns=True),
            S("not-a-list", {"amounts": 500}, False, warns=True),
        ),
    ),
    Case(
        "avg-spec-equality",
        {"field": "previous_transactions.amounts", "operator": "AVG", "value": 5000},
        "avg(previous_transactions.amounts) == 5000",
        (
            S("equal", {"previous_transactions": {"amounts": [4000, 6000]}}, True),
            S("different", {"previous_transactions": {"amounts": [4000, 4000]}}, False),
            S("empty", {"previous_transactions": {"amounts": []}}, False),
            S("missing", {}, False),
            S("null-item", {"previous_transactions": {"amounts": [None]}}, False, warns=True),
        ),
    ),
    Case(
        "min",
        {"field": "v", "operator": "MIN", "compare": ">=", "value": 0},
        "min(v) >= 0",
        (
            S("above", {"v": [3, 0]}, True),
            S("below", {"v": [3, -1]}, False),
            S("empty", {"v": []}, False),
            S("missing", {}, False),
            S("mistyped", {"v": ["a"]}, False, warns=True),
        ),
    ),
    Case(
        "max",
        {"field": "v", "operator": "MAX", "compare": "<", "value": 10},
        "max(v) < 10",
        (
            S("below", {"v": [3, 9.5]}, True),
            S("above", {"v": [3, 10]}, False),
            S("empty", {"v": []}, False),
            S("missing", {}, False),
            S("mistyped", {"v": {"a": 1}}, False, warns=True),
        ),
    ),
    Case(
        "count",
        {"field": "logins", "operator": "COUNT", "compare": ">=", "value": 2},
        "count(logins) >= 2",
        (
            S("enough", {"logins": ["a", None]}, True),
            S("too-few", {"logins": [1]}, False),
            S("missing", {}, False),
            S("not-a-list", {"logins": "ab"}, False, warns=True),
        ),
    ),
    Case(
        "count-default-equality",
        {"field": "logins", "operator": "count", "value": 0},
        "count(logins) == 0",
        (S("empty", {"logins": []}, True), S("one", {"logins": [1]}, False)),
    ),
]


def _params() -> list[Any]:
    out = []
    for case in CASES:
        for scenario in case.scenarios:
            for form in ("structured", "expression"):
                out.append(
                    pytest.param(case, scenario, form, id=f"{case.name}-{scenario.label}-{form}")
                )
    return out


@pytest.mark.parametrize(("case", "scenario", "form"), _params())
def test_operator(case: Case, scenario: Scenario, form: str) -> None:
    """The operator gives the expected answer, warning exactly on type mismatches."""
    source = case.structured if form == "structured" else case.expression
    condition = compile_condition(source)
    data = dict(scenario.data) if isinstance(scenario.data, dict) else scenario.data
    stages = data.pop("__stages__", None) if isinstance(data, dict) else None
    warnings: list[EvalWarning] = []
    assert condition(data, stages, warnings) is scenario.expected
    assert bool(warnings) is scenario.warns, warnings
    assert condition(data, stages) is scenario.expected


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_both_forms_parse_to_the_same_tree(case: Case) -> None:
    """The structured form and the expression form of a case are the same tree."""
    assert parse_condition(case.structured) == parse_condition(case.expression)


def test_every_operator_is_covered() -> None:
    """The cases above exercise all 24 operator names."""
    seen: set[str] = set()

    def visit(raw: dict[str, Any] | str) -> None:
        if isinstance(raw, str):
            return
        seen.add(str(raw["operator"]).upper())
        for child in raw.get("conditions", []):
            visit(child)
        if "condition" in raw:
            visit(raw["condition"])
        if "compare" in raw:
            seen.add(raw["compare"])

    for case in CASES:
        visit(case.structured)
    assert set(OPERATORS) <= seen
    assert len(OPERATORS) == 24


def test_warning_names_the_path() -> None:
    """A mismatch warning carries the field path and says what did not fit."""
    warnings: list[EvalWarning] = []
    compile_condition("amount > 5")({"amount": "many"}, None, warnings)
    assert warnings == [EvalWarning("amount", "'>' compares int 5 with a str")]


def test_per_item_warning_path_points_into_the_list() -> None:
    """Warnings inside a per-item condition name `list[].field`."""
    warnings: list[EvalWarning] = []
    compile_condition("any(items, price > 5)")({"items": [{"price": "x"}]}, None, warnings)
    assert [w.path for w in warnings] == ["items[].price"]
