"""Dict subclasses in the input and the stage results: registered plain ones (the runtime's
`StageResult`) are read with `dict.get` directly; any other is read through its own methods."""

from __future__ import annotations

from typing import Any

import pytest

from cascadence.conditions import compile_condition
from cascadence.conditions.paths import PLAIN_DICTS, register_plain_dict
from cascadence.conditions.scan import compile_scan
from cascadence.runtime.result import StageResult


class Doubled(dict[str, Any]):
    """A mapping whose `get` answers for itself: twice the stored number."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        value = super().get(key, default)
        return value * 2 if isinstance(value, (int, float)) else value


def _conditions(field: str) -> list[Any]:
    return [
        compile_condition({"field": field, "operator": ">", "value": 5}),
        compile_condition({"field": field, "operator": "<", "value": 1}),
    ]


@pytest.mark.parametrize(
    ("field", "data", "stages"),
    [
        ("a.b", {"a": Doubled(b=3)}, {}),
        ("stages.S.confidence", {}, {"S": Doubled(confidence=3)}),
    ],
)
def test_a_subclass_with_its_own_get_is_read_through_it(
    field: str, data: dict[str, Any], stages: dict[str, Any]
) -> None:
    """3 stored, 6 read: `> 5` holds for the leaf and for the scan of a run of comparisons."""
    first, second = _conditions(field)
    assert first.fn(data, stages, []) is True
    assert second.fn(data, stages, []) is False
    scan = compile_scan([(c.fn, c.node) for c in (first, second)])
    assert scan(data, stages, []) == 1


def test_stage_results_are_plain_dicts_to_conditions() -> None:
    assert StageResult in PLAIN_DICTS and Doubled not in PLAIN_DICTS
    first, second = _conditions("stages.S.confidence")
    stages = {"S": StageResult(result=1, confidence=0.5, data={})}
    assert (first.fn({}, stages, []), second.fn({}, stages, [])) == (False, True)


def test_only_dict_subclasses_can_be_registered() -> None:
    with pytest.raises(TypeError, match="not a dict subclass"):
        register_plain_dict(list)
