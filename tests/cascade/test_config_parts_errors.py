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


# -- conditions of a part built on its own -----------------------------------------------------


def loaded_issue(condition: Any) -> Any:
    """The one issue loading a config whose one rule has `condition` reports."""
    rule = {"name": "r", "condition": condition, "action": TERMINATE}
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_dict({"name": "t", "stages": {"A": {"routing_rules": [rule]}}})
    assert len(info.value.issues) == 1, info.value.issues
    return info.value.issues[0]


def same_issue(built: Any, loaded: Any, prefix: str) -> None:
    """`built` (from a part on its own) reads as `loaded` (from a file), its path relative."""
    assert "stages.A.routing_rules[0]." + prefix + built.path == loaded.path
    assert (built.message, built.expected, built.suggestion) == (
        loaded.message,
        loaded.expected,
        loaded.suggestion,
    )
    assert (built.column, built.source_line) == (loaded.column, loaded.source_line)


def test_condition_with_an_unknown_operator_fails_when_built() -> None:
    """`Condition(operator="EQULS")` fails at once with the loader's message and did-you-mean,
    not first when it is put in a cascade."""
    raw = {"field": "amount", "operator": "EQULS", "value": 1}
    error = error_of(Condition, **raw)
    assert [i.path for i in error.issues] == ["operator"]
    issue = error.issues[0]
    assert issue.message == "unknown operator 'EQULS'"
    assert issue.suggestion == "=="
    assert "did you mean '=='?" in str(error)
    same_issue(issue, loaded_issue(raw), "condition.")
    with pytest.raises(ConfigError, match="unknown operator 'EQULS'"):
        Condition.model_validate(raw)


def test_routing_rule_conditions_fail_when_built() -> None:
    """A rule built on its own checks its condition, in either form and inside a Condition
    given as a model, as loading does."""
    bad = {"field": "amount", "operator": "GRATER_THAN", "value": 1}
    error = error_of(RoutingRule, name="r", condition=bad, action=TERMINATE)
    assert [i.path for i in error.issues] == ["condition.operator"]
    assert error.issues[0].suggestion == ">"
    same_issue(error.issues[0], loaded_issue(bad), "")

    expression = "amount >> 1"
    error = error_of(RoutingRule, name="r", condition=expression, action=TERMINATE)
    assert error.issues[0].path == "condition"
    assert error.issues[0].column is not None and error.issues[0].source_line == expression
    same_issue(error.issues[0], loaded_issue(expression), "")

    nested = {"operator": "AND", "conditions": ["amount > 1", {"field": "x", "operator": "ORR"}]}
    error = error_of(Condition, **nested)
    assert [i.path for i in error.issues] == ["conditions[1].operator"]
    assert error.issues[0].suggestion == "OR"
    with pytest.raises(ConfigError, match=r"conditions\[0\]: unexpected '='"):
        Condition(operator="OR", conditions=["amount =! 1"])


def test_stage_and_model_validate_check_rule_conditions() -> None:
    """StageConfig(...) and RoutingRule.model_validate(...) check rule conditions too, each
    problem at its path from the part."""
    rule = {
        "name": "r",
        "condition": {"field": "x", "operator": "CONTIAN", "value": 1},
        "action": TERMINATE,
    }
    error = error_of(
        StageConfig, name="A", routing_rules=[{**rule, "name": "ok", "condition": "x == 1"}, rule]
    )
    assert [i.path for i in error.issues] == ["routing_rules[1].condition.operator"]
    assert error.issues[0].suggestion == "CONTAINS"
    with pytest.raises(ConfigError, match="did you mean 'CONTAINS'"):
        RoutingRule.model_validate(rule)
    with pytest.raises(ConfigError, match="did you mean 'CONTAINS'"):
        RoutingRule.model_validate_json(
            '{"name": "r", "condition": {"field": "x", "operator": "CONTIAN", "value": 1},'
            ' "action": {"type": "terminate"}}'
        )


def test_a_config_reports_a_bad_condition_once() -> None:
    """Inside a CascadeConfig the parts leave their conditions to the config: one issue, with
    the file's place, as before."""
    issue = loaded_issue({"field": "x", "operator": "EQULS", "value": 1})
    assert issue.path == "stages.A.routing_rules[0].condition.operator"


LEAF = {"field": "amount", "operator": ">", "value": 1}
VALID = [
    {"field": "amount", "operator": "==", "value": 1},
    {"field": "amount", "operator": "!=", "value": 1},
    {"field": "amount", "operator": ">", "value": 1},
    {"field": "amount", "operator": ">=", "value": 1},
    {"field": "amount", "operator": "<", "value": 1},
    {"field": "amount", "operator": "<=", "value": 1},
    {"operator": "AND", "conditions": [LEAF, "country == 'US'"]},
    {"operator": "OR", "conditions": [LEAF, "country == 'US'"]},
    {"operator": "NOT", "conditions": [LEAF]},
    {"operator": "NOT", "condition": "amount > 1"},
    {"field": "country", "operator": "IN", "value": ["US", "CA"]},
    {"field": "country", "operator": "NOT_IN", "value": ["US", "CA"]},
    {"field": "roles", "operator": "CONTAINS", "value": "admin"},
    {"field": "email", "operator": "MATCHES", "value": ".*@trusted\\.com$"},
    {"field": "email", "operator": "EXISTS"},
    {"field": "email", "operator": "IS_NULL"},
    {"field": "checks", "operator": "ALL", "value": "pass"},
    {"field": "scores", "operator": "ANY", "compare": ">=", "value": 0.9},
    {
        "field": "items",
        "operator": "NONE",
        "condition": {"field": "price", "operator": "<", "value": 0},
    },
    {"field": "amounts", "operator": "SUM", "compare": ">", "value": 100},
    {"field": "amounts", "operator": "AVG", "value": 5000},
    {"field": "amounts", "operator": "MIN", "compare": "<", "value": 1},
    {"field": "amounts", "operator": "MAX", "compare": ">=", "value": 10},
    {"field": "amounts", "operator": "COUNT", "value": 3},
]


def lower(condition: dict[str, Any]) -> dict[str, Any]:
    """The condition with its word operator written in lower case (accepted by the loader)."""
    return {**condition, "operator": condition["operator"].lower()}


@pytest.mark.parametrize(
    "raw",
    VALID + [lower(c) for c in VALID if c["operator"].isalpha() or "_" in c["operator"]],
    ids=lambda raw: str(raw["operator"]),
)
def test_every_documented_operator_spelling_still_builds(raw: dict[str, Any]) -> None:
    """Every operator of the reference, upper-case names, lower-case names and symbols, in
    the structured form and with expression operands, builds directly as it loads."""
    config = CascadeConfig.from_dict(
        {
            "name": "t",
            "stages": {
                "A": {"routing_rules": [{"name": "r", "condition": raw, "action": TERMINATE}]}
            },
        }
    )
    built = Condition(**raw)
    assert config.stages["A"].routing_rules[0].condition == built
    rule = RoutingRule(name="r", condition=built, action=RoutingAction(type="terminate"))
    assert StageConfig(name="A", routing_rules=[rule]) == config.stages["A"]


@pytest.mark.parametrize(
    "expression",
    ["amount > 1", "country in ['US', 'CA'] and not (vip == true)", "email matches '.*@x\\.com$'"],
)
def test_expression_conditions_still_build(expression: str) -> None:
    """The expression form builds directly, in a rule and as an operand."""
    RoutingRule(name="r", condition=expression, action=RoutingAction(type="terminate"))
    Condition(operator="AND", conditions=[expression, LEAF])


@pytest.mark.parametrize(
    "operator", ["EQULS", "eq", "=", "GREATER_THAN", "IS_NOT_NULL", "NOT_EQULS", "contians", "=<"]
)
def test_a_misspelt_operator_fails_built_as_it_fails_loaded(operator: str) -> None:
    """Each spelling the loader refuses, the constructor refuses with the same issue."""
    raw = {"field": "amount", "operator": operator, "value": 1}
    error = error_of(Condition, **raw)
    assert len(error.issues) == 1
    same_issue(error.issues[0], loaded_issue(raw), "condition.")
    assert error.issues[0].suggestion is not None


def test_model_dump_output_builds_the_same_parts_again() -> None:
    """`model_dump()` writes every action parameter, unused ones as None: that reads back as
    not given, so pydantic's own round trip works for rules, stages and whole configs."""
    from cascadence import CascadeConfig, Condition, RoutingAction, RoutingRule, StageConfig

    rule = RoutingRule(
        name="r",
        condition=Condition(field="x", operator="<", value=1),
        action=RoutingAction(type="enable_stages", stages=["B"]),
    )
    assert RoutingRule(**rule.model_dump()) == rule
    assert RoutingRule.model_validate(rule.model_dump(mode="json")) == rule
    stage = StageConfig(name="A", routing_rules=[rule])
    assert StageConfig.model_validate_json(stage.model_dump_json()) == stage
    config = CascadeConfig(name="c", stages=[stage, StageConfig(name="B", enabled=False)])
    assert CascadeConfig.from_dict(config.model_dump()) == config
    with pytest.raises(ConfigError, match="'target' is not used by a enable_stages action"):
        RoutingAction(type="enable_stages", stages=["B"], target="B")
