"""CompiledCondition: its attributes, path resolution, short-circuiting, explain and safety."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pytest

from cascadence.conditions import (
    MISSING,
    CompiledCondition,
    EvalWarning,
    compile_condition,
    parse_condition,
    to_dict,
)


@dataclass(frozen=True)
class StageResult:
    """A stage result the way a runtime would hand it over."""

    result: Any = None
    confidence: float | None = None
    data: Any = None
    time_ms: float = 0.0
    error: str | None = None


def test_attributes() -> None:
    """A compiled condition keeps its tree, source, fields, stage references and closure."""
    source = "stages.FAST.confidence < 0.8 and amount >= 10000 and stages.SLOW.result == 'x'"
    condition = compile_condition(source)
    assert isinstance(condition, CompiledCondition)
    assert condition.source == source
    assert condition.node == parse_condition(source)
    assert condition.fields == {"stages.FAST.confidence", "amount", "stages.SLOW.result"}
    assert condition.stage_refs == {"FAST", "SLOW"}
    assert condition.fn(
        {"amount": 10000}, {"FAST": {"confidence": 0.1}, "SLOW": {"result": "x"}}, None
    )
    assert repr(condition) == f"CompiledCondition({source.replace(chr(39), chr(34))!r})"


def test_fields_leave_out_paths_relative_to_items() -> None:
    """Per-item paths are not fields; the list and absolute stage paths inside are."""
    condition = compile_condition("any(items, price > 1 and stages.A.confidence > 0.5)")
    assert condition.fields == {"items", "stages.A.confidence"}
    assert condition.stage_refs == {"A"}


def test_compiling_a_node_records_its_dict_form() -> None:
    """A condition compiled from a tree carries the tree's structured form as its source."""
    node = parse_condition("a > 1")
    condition = compile_condition(node)
    assert condition.node is node
    assert condition.source == to_dict(node)


def test_stage_results_as_objects_and_mappings() -> None:
    """Stage results may be objects with attributes or plain mappings."""
    condition = compile_condition(
        "stages.A.confidence > 0.5 and stages.B.data.score >= 3 and is_null(stages.A.error)"
    )
    stages: dict[str, Any] = {
        "A": StageResult(confidence=0.9),
        "B": {"data": {"score": 3}},
    }
    assert condition({}, stages) is True
    assert condition({}, {"A": StageResult(confidence=0.1), "B": stages["B"]}) is False
    assert condition({}, None) is False
    assert condition({}, {}) is False


@dataclass
class Profile:
    """An input object read by attribute."""

    name: str
    tags: list[str]
    _secret: str = "hidden"


@pytest.mark.parametrize(
    ("expression", "data", "expected"),
    [
        ("items.0.price == 5", {"items": [{"price": 5}, {"price": 7}]}, True),
        ("items.-1.price == 7", {"items": [{"price": 5}, {"price": 7}]}, True),
        ("items.2.price == 7", {"items": [{"price": 5}]}, False),
        ("items.x == 7", {"items": [7]}, False),
        ("pair.1 == 'b'", {"pair": ("a", "b")}, True),
        ("d.0 == 'zero'", {"d": {"0": "zero"}}, True),
        ("a.b.c.d == 1", {"a": {"b": {"c": {"d": 1}}}}, True),
        ("a.b.c.d == 1", {"a": {"b": {"c": 3}}}, False),
        ("a.b.c.0 == 1", {"a": {"b": {"c": [1]}}}, True),
        ("user.name == 'ada'", {"user": Profile("ada", [])}, True),
        ("user.tags contains 'x'", {"user": Profile("ada", ["x"])}, True),
        ("exists(user._secret)", {"user": Profile("ada", [])}, False),
        ("exists(user.__class__)", {"user": Profile("ada", [])}, False),
        ("exists(s.upper)", {"s": "text"}, False),
        ("exists(l.count)", {"l": [1]}, False),
        ("exists(n.real)", {"n": 3}, False),
        ("exists(_id)", {"_id": 3}, True),
        ("m.k == 1", {"m": MappingProxyType({"k": 1})}, True),
        ("name == 'ada'", Profile("ada", []), True),
    ],
)
def test_path_resolution(expression: str, data: Any, expected: bool) -> None:
    """Mappings by key, lists by (negative) index, objects by public attribute, else missing."""
    assert compile_condition(expression)(data) is expected


def test_the_input_may_be_a_list_or_nothing() -> None:
    """The document itself may be a list (read by index) or None (everything is missing)."""
    condition = compile_condition({"field": "0", "operator": "==", "value": "first"})
    assert condition(["first"]) is True
    assert condition(None) is False
    assert compile_condition("is_null(a)")(None) is True


def test_a_defaultdict_is_never_written_to() -> None:
    """Reading an absent key of a defaultdict does not create it."""
    data: defaultdict[str, Any] = defaultdict(list)
    assert compile_condition("exists(a.b)")(data) is False
    assert dict(data) == {}


def test_and_or_short_circuit() -> None:
    """AND stops at the first false child and OR at the first true one."""
    warnings: list[EvalWarning] = []
    assert compile_condition("a == 1 and b > 1")({"a": 2, "b": "x"}, None, warnings) is False
    assert compile_condition("a == 1 or b > 1")({"a": 1, "b": "x"}, None, warnings) is True
    assert warnings == []


@pytest.mark.parametrize("count", [2, 3, 4, 7])
def test_wide_and_or(count: int) -> None:
    """AND and OR of many children agree with all() and any()."""
    names = [f"f{i}" for i in range(count)]
    conjunction = compile_condition(" and ".join(f"{n} == 1" for n in names))
    disjunction = compile_condition(" or ".join(f"{n} == 1" for n in names))
    for ones in range(count + 1):
        data = {n: 1 if i < ones else 0 for i, n in enumerate(names)}
        assert conjunction(data) is (ones == count)
        assert disjunction(data) is (ones > 0)


def test_missing_is_a_falsy_singleton() -> None:
    """MISSING is falsy, unique and prints as its name."""
    assert not MISSING
    assert repr(MISSING) == "MISSING"
    assert type(MISSING)() is MISSING


class Raising:
    """An object whose every attribute and comparison raises."""

    @property
    def value(self) -> Any:
        raise RuntimeError("property failed")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq failed")

    def __lt__(self, other: object) -> bool:
        raise RuntimeError("lt failed")

    __hash__ = None  # type: ignore[assignment]


@pytest.mark.parametrize(
    "expression",
    [
        "x.value == 1",
        "x == 1",
        "x != 'a'",
        "x < 3",
        "x in [1]",
        "x not in [1]",
        "x contains 1",
        "any(xs > 1)",
        "sum(xs) > 1",
    ],
)
def test_errors_inside_values_become_warnings(expression: str) -> None:
    """A value that raises makes the leaf False with a warning; evaluation never raises."""
    warnings: list[EvalWarning] = []
    data = {"x": Raising(), "xs": [Raising()]}
    assert compile_condition(expression)(data, None, warnings) is False
    assert warnings
    assert all(isinstance(w, EvalWarning) for w in warnings)


def test_huge_ints_do_not_raise() -> None:
    """An average too large for a float is False with a warning, not an OverflowError."""
    warnings: list[EvalWarning] = []
    assert compile_condition("avg(v) > 1")({"v": [10**400, 1]}, None, warnings) is False
    assert "OverflowError" in warnings[0].message


def test_explain_reports_every_node() -> None:
    """explain() shows, per node, what was read, what was expected and what it decided."""
    condition = compile_condition(
        "stages.FAST.confidence < 0.8 and (amount >= 10000 or avg(history) > 10)"
        " and any(items, price > 5)"
    )
    report = condition.explain(
        {"amount": "lots", "history": [5, 20], "items": [{"price": 1}, {"price": 9}]},
        {"FAST": StageResult(confidence=0.5)},
    )
    assert report["matched"] is True
    assert report["operator"] == "AND"
    first, either, items = report["children"]
    assert first == {
        "matched": True,
        "operator": "<",
        "field": "stages.FAST.confidence",
        "value": 0.5,
        "missing": False,
        "expected": 0.8,
        "children": [],
    }
    amount, average = either["children"]
    assert amount["matched"] is False
    assert amount["warnings"] == ["'>=' compares int 10000 with a str"]
    assert average["statistic"] == 12.5
    assert average["compare"] == ">"
    assert [child["matched"] for child in items["children"]] == [False, True]
    assert items["children"][1]["field"] == "items[].price"


def test_explain_marks_missing_fields() -> None:
    """A missing field has no `value` key and `missing` set; NOT of it is True."""
    report = compile_condition("not exists(a.b)").explain({})
    assert report["matched"] is True
    leaf = report["children"][0]
    assert leaf["missing"] is True
    assert "value" not in leaf
    assert leaf["matched"] is False


def test_compiled_conditions_pickle_and_copy() -> None:
    """A compiled condition survives pickling and deep copies (it is rebuilt from its tree)."""
    import copy
    import pickle

    condition = compile_condition("any(items, price > 5) and user.email matches '@x$'")
    data = {"items": [{"price": 9}], "user": {"email": "a@x"}}
    for clone in (pickle.loads(pickle.dumps(condition)), copy.deepcopy(condition)):
        assert clone.node == condition.node
        assert clone.source == condition.source
        assert clone(data) is True
