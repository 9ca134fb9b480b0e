"""Config parts built in Python (`StageConfig(...)`, `RoutingRule.model_validate(...)`) raise
the same `ConfigError` as a file does: path, expectation and the closest valid name."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from cascadence import ConfigError
from cascadence.cascade import (
    CascadeConfig,
    CircuitBreakerConfig,
    Condition,
    RoutingAction,
    RoutingRule,
    StageConfig,
)

TERMINATE = {"type": "terminate"}


def error_of(model: type[BaseModel], **fields: Any) -> ConfigError:
    """Build `model(**fields)`, expecting a ConfigError that is no pydantic error."""
    with pytest.raises(ConfigError) as info:
        model(**fields)
    error = info.value
    assert isinstance(error, ValueError)
    assert not isinstance(error, ValidationError)
    assert error.__cause__ is None and error.__suppress_context__
    text = str(error)
    assert "Extra inputs are not permitted" not in text
    assert "errors.pydantic.dev" not in text
    return error


@pytest.mark.parametrize(
    ("model", "fields", "path", "suggestion"),
    [
        (StageConfig, {"name": "A", "timout_ms": 5}, "timout_ms", "timeout_ms"),
        (RoutingAction, {"type": "skip", "target": "B"}, "type", "skip_to"),
        (RoutingAction, {"type": "skip_to", "targt": "B"}, "targt", "target"),
        (
            RoutingRule,
            {"name": "r", "conditon": "x > 1", "action": TERMINATE},
            "conditon",
            "condition",
        ),
        (
            RoutingRule,
            {"name": "r", "condition": "x > 1", "action": {"type": "terminat"}},
            "action.type",
            "terminate",
        ),
        (Condition, {"operator": "==", "feild": "x", "value": 1}, "feild", "field"),
        (CircuitBreakerConfig, {"failure_treshold": 3}, "failure_treshold", "failure_threshold"),
        (CascadeConfig, {"name": "t", "stages": {"A": {}}, "stagez": {}}, "stagez", "stages"),
    ],
)
def test_misspelt_field_of_a_part_names_the_closest(
    model: type[BaseModel], fields: dict[str, Any], path: str, suggestion: str
) -> None:
    """A misspelt field or value of any config model built directly is one ConfigError issue
    with its path and a did-you-mean, and the misspelt field is not also reported missing."""
    error = error_of(model, **fields)
    assert [issue.path for issue in error.issues] == [path]
    issue = error.issues[0]
    assert issue.suggestion == suggestion
    assert issue.file is None
    assert f"did you mean {suggestion!r}?" in str(error)
    assert f"<config>: {path}: " in str(error)


def test_unknown_field_lists_the_valid_ones() -> None:
    """The expectation of an unknown field lists the fields of the model it was given to."""
    issue = error_of(StageConfig, name="A", timout_ms=5).issues[0]
    assert issue.message == "unknown field 'timout_ms' of StageConfig"
    assert issue.expected is not None and "timeout_ms" in issue.expected


def test_direct_construction_is_still_a_value_error() -> None:
    """Code that guarded construction with `except ValueError` keeps working."""
    with pytest.raises(ValueError, match="did you mean 'timeout_ms'"):
        StageConfig(name="A", timout_ms=5)  # type: ignore[call-arg]


def test_nested_problems_have_paths_relative_to_the_part() -> None:
    """Problems inside nested parts are located from the part built, through the condition
    union without its internal tags."""
    error = error_of(
        StageConfig,
        name="A",
        routing_rules=[
            {
                "name": "r",
                "condition": {"field": "x", "operator": "==", "vale": 1},
                "action": {"type": "skip"},
            }
        ],
    )
    assert {i.path for i in error.issues} == {
        "routing_rules[0].condition.vale",
        "routing_rules[0].action.type",
    }
    rule = error_of(
        RoutingRule, name="r", condition={"field": "x", "operatr": "=="}, action=TERMINATE
    )
    assert [i.path for i in rule.issues] == ["condition.operatr"]
    assert rule.issues[0].suggestion == "operator"


def test_every_problem_of_a_part_is_reported_at_once() -> None:
    """All field problems of one part come in one error."""
    error = error_of(StageConfig, name="", timeout_ms=-1, max_retries="many", retry_backof="x")
    assert {i.path for i in error.issues} == {"name", "timeout_ms", "max_retries", "retry_backof"}
    assert error_of(StageConfig).issues[0].message == "missing required field 'name'"


def test_model_validators_report_through_the_same_error() -> None:
    """A rule checked by a model validator (skip_to without a target) reads like a load error."""
    error = error_of(RoutingAction, type="skip_to")
    assert [i.path for i in error.issues] == ["target"]
    assert error.issues[0].expected == "target: STAGE_NAME"


def test_model_validate_and_model_validate_json_raise_config_error() -> None:
    """pydantic's other constructors raise the same ConfigError."""
    with pytest.raises(ConfigError, match="did you mean 'timeout_ms'"):
        StageConfig.model_validate({"name": "A", "timout_ms": 5})
    with pytest.raises(ConfigError, match="did you mean 'skip_to'") as info:
        RoutingRule.model_validate_json(
            '{"name": "r", "condition": "x > 1", "action": {"type": "skip"}}'
        )
    assert info.value.issues[0].path == "action.type"
    with pytest.raises(ConfigError) as whole:
        CascadeConfig.model_validate_json('{"name": "t", "stages": {"A": {"timout_ms": 1}}}')
    assert whole.value.issues[0].path == "stages.A.timout_ms"
    with pytest.raises(ConfigError):
        CascadeConfig.model_validate(["not", "a", "mapping"])


def test_cascade_config_reports_field_and_reference_problems_together() -> None:
    """CascadeConfig(...) still adds the cross-reference problems to its field problems."""
    with pytest.raises(ConfigError) as info:
        CascadeConfig(name="t", stages={"A": {"timout_ms": 1, "depends_on": ["B"]}})
    assert {i.path for i in info.value.issues} == {"stages.A.timout_ms", "stages.A.depends_on[0]"}


def test_valid_parts_are_built_as_before() -> None:
    """Valid parts built directly equal the parts a loaded config holds, and nest unchanged."""
    rule = {
        "name": "r",
        "condition": {"field": "amount", "operator": ">", "value": 10},
        "action": {"type": "skip_to", "target": "B"},
    }
    stage = StageConfig(name="A", timeout_ms=5, routing_rules=[RoutingRule(**rule)])
    loaded = CascadeConfig.from_dict(
        {"name": "t", "stages": {"A": {"timeout_ms": 5, "routing_rules": [rule]}, "B": {}}}
    )
    assert loaded.stages["A"] == stage
    assert StageConfig.model_validate(stage.to_dict()) == stage
    assert CascadeConfig(name="t", stages={"A": stage, "B": StageConfig(name="B")}) == loaded


def test_assignment_to_a_frozen_part_is_unchanged() -> None:
    """Only construction changed: assigning to a frozen part is still pydantic's error."""
    stage = StageConfig(name="A")
    with pytest.raises(ValidationError):
        stage.timeout_ms = 5
