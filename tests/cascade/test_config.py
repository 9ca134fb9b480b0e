"""Cascade config models: defaults, accepted spellings, round trips and read helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from cascadence import CascadeEngine
from cascadence.cascade import (
    STAGE_COSTS,
    CascadeConfig,
    CircuitBreakerConfig,
    Condition,
    RoutingAction,
    RoutingRule,
    StageConfig,
)
from cascadence.errors import ConfigError

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart" / "cascade.yaml"


@pytest.fixture
def quickstart() -> CascadeConfig:
    return CascadeConfig.from_file(QUICKSTART)


def test_quickstart_loads_as_documented(quickstart: CascadeConfig) -> None:
    """The spec's quick-start cascade loads with its stages, rules and limits."""
    assert quickstart.name == "trust_scoring_cascade"
    assert quickstart.version == "1.0"
    assert quickstart.stage_names() == ["FAST_CHECK", "MEDIUM_CHECK", "EXPENSIVE_CHECK"]
    assert quickstart.execution_order == ["FAST_CHECK", "MEDIUM_CHECK", "EXPENSIVE_CHECK"]
    assert quickstart.global_timeout_ms == 5000
    assert quickstart.max_parallel_stages == 3
    fast = quickstart.stages["FAST_CHECK"]
    assert fast.timeout_ms == 100
    assert fast.handler == "quickstart.handlers:fast_check"
    assert [r.name for r in fast.routing_rules] == [
        "low_confidence_escalate",
        "high_confidence_terminate",
    ]
    rule = fast.routing_rules[0]
    assert rule.priority == 100
    assert rule.condition == Condition(
        field="stages.FAST_CHECK.confidence", operator="<", value=0.8
    )
    assert rule.action == RoutingAction(type="enable_stages", stages=["MEDIUM_CHECK"])
    assert not quickstart.stages["MEDIUM_CHECK"].enabled
    assert [s.cost for s in quickstart.stages.values()] == [1.0, 5.0, 25.0]


def test_quickstart_round_trips_through_yaml_files(
    quickstart: CascadeConfig, tmp_path: Path
) -> None:
    """from_file -> to_yaml -> from_file gives an equal config."""
    out = tmp_path / "again.yaml"
    out.write_text(quickstart.to_yaml(), encoding="utf-8")
    again = CascadeConfig.from_file(out)
    assert again == quickstart
    assert again.source_file == str(out)
    assert quickstart.source_file == str(QUICKSTART)


def test_quickstart_round_trips_through_json(quickstart: CascadeConfig, tmp_path: Path) -> None:
    """to_file picks JSON by extension, and the JSON reloads to an equal config."""
    out = tmp_path / "again.json"
    quickstart.to_file(out)
    assert json.loads(out.read_text())["name"] == "trust_scoring_cascade"
    assert CascadeConfig.from_file(out) == quickstart
    assert CascadeConfig.from_json(quickstart.to_json()) == quickstart


def test_to_dict_is_compact_and_lossless(quickstart: CascadeConfig) -> None:
    """to_dict keeps what was written, omits untouched defaults, and reloads equal."""
    data = quickstart.to_dict()
    assert "cache_enabled" not in data["stages"]["FAST_CHECK"]
    assert data["stages"]["MEDIUM_CHECK"]["enabled"] is False
    assert CascadeConfig.from_dict(data) == quickstart


def test_defaults_follow_the_spec() -> None:
    """A bare stage gets the spec's StageConfig defaults."""
    stage = StageConfig(name="S")
    assert stage.enabled is True
    assert stage.handler_type is None
    assert stage.handler is None
    assert stage.timeout_ms == 30000
    assert stage.max_retries == 0
    assert stage.retry_delay_ms == 1000
    assert stage.retry_backoff == "fixed"
    assert stage.retry_backoff_multiplier == 2.0
    assert stage.retry_max_delay_ms is None
    assert stage.can_run_parallel is False
    assert stage.parallel_group is None
    assert stage.depends_on == []
    assert stage.routing_rules == []
    assert stage.cache_enabled is False
    assert stage.cache_ttl_seconds == 3600
    assert stage.cache_key_fields is None
    assert stage.circuit_breaker is None
    assert stage.cost == 1.0
    assert stage.stop_on_failure is False
    assert stage.custom_properties == {}
    config = CascadeConfig(name="c", stages={"S": stage})
    assert config.version == "1.0"
    assert config.global_timeout_ms == 30000
    assert config.max_parallel_stages == 10
    assert config.execution_order is None
    assert config.termination_conditions == []
    assert config.stop_on_failure is False
    assert config.metadata == {}
    assert config.source_file is None


def test_rule_defaults() -> None:
    """A rule defaults to an enabled routing rule of priority 0."""
    rule = RoutingRule(name="r", condition="amount > 1", action=RoutingAction(type="terminate"))
    assert rule.type == "routing"
    assert rule.priority == 0
    assert rule.enabled is True
    assert CircuitBreakerConfig() == CircuitBreakerConfig(
        failure_threshold=5, reset_timeout_seconds=60
    )


def test_stage_name_defaults_to_its_key() -> None:
    """In a stages mapping, name may be left out, and an empty stage is all defaults."""
    config = CascadeConfig.from_yaml("name: c\nstages:\n  A:\n  B: {timeout_ms: 5}\n")
    assert config.stages["A"].name == "A"
    assert config.stages["B"].name == "B"
    assert config.stages["B"].timeout_ms == 5


def test_stages_as_a_list_are_keyed_by_name() -> None:
    """A list of stages is accepted and keyed by name, in order."""
    config = CascadeConfig.from_dict(
        {
            "name": "c",
            "stages": [{"name": "B"}, {"name": "A", "depends_on": ["B"]}],
        }
    )
    assert config.stage_names() == ["B", "A"]
    assert CascadeConfig.from_dict(config.to_dict()) == config


def test_version_number_is_kept_as_written() -> None:
    """A numeric version in YAML keeps its text; in a dict it becomes a string."""
    assert CascadeConfig.from_yaml("name: c\nversion: 1.10\nstages: {A: }\n").version == "1.10"
    assert CascadeConfig.from_yaml("name: c\nversion: 2\nstages: {A: }\n").version == "2"
    assert (
        CascadeConfig.from_dict({"name": "c", "version": 3.5, "stages": {"A": {}}}).version == "3.5"
    )


@pytest.mark.parametrize(
    ("written", "cost"),
    [
        ("RULES", 1.0),
        ("statistical_ml", 5.0),
        ("SINGLE_AI", 25.0),
        ("POD", 100.0),
        ("ADVERSARIAL", 500.0),
        (7, 7.0),
        ("2.5", 2.5),
    ],
)
def test_cost_accepts_numbers_and_tier_names(written: object, cost: float) -> None:
    """A stage cost is a number or one of the cost model's tier names."""
    assert StageConfig(name="S", cost=written).cost == cost  # type: ignore[arg-type]


async def test_a_stage_named_after_a_kind_costs_that_kind_unless_told() -> None:
    """Without `cost`, a stage named like a kind of the cost model costs that kind; a written
    cost wins; other names cost 1. Results report it, and it survives a round trip."""
    from cascadence import CascadeEngine

    config = CascadeConfig.from_dict(
        {
            "name": "tiers",
            "stages": {"RULES": {}, "single_ai": {}, "Review": {}, "POD": {"cost": 3}},
            "execution_order": ["RULES", "single_ai", "Review", "POD"],
        }
    )
    assert [s.cost for s in config.stages.values()] == [1.0, 25.0, 1.0, 3.0]
    assert CascadeConfig.from_yaml(config.to_yaml()) == config
    engine = CascadeEngine(config)

    async def handler(ctx: object) -> dict[str, object]:
        return {"result": "ok"}

    engine.register_stages(dict.fromkeys(config.stages, handler))
    result = await engine.execute({})
    assert result["cost"] == 30.0
    assert result["stage_results"]["single_ai"]["cost"] == 25.0


def test_stage_costs_table() -> None:
    """STAGE_COSTS is the spec's relative cost model."""
    assert STAGE_COSTS == {
        "RULES": 1,
        "STATISTICAL_ML": 5,
        "SINGLE_AI": 25,
        "POD": 100,
        "ADVERSARIAL": 500,
    }


def test_conditions_keep_their_written_form() -> None:
    """An expression string stays a string and a structured condition stays structured."""
    config = CascadeConfig.from_yaml("""
name: c
stages:
  A:
    routing_rules:
      - name: e
        condition: "stages.A.confidence < 0.8 and amount >= 10000"
        action: {type: terminate}
      - name: s
        condition: {field: amount, operator: EXISTS}
        action: {type: set_field, field: user.risk, value: high, reason: big}
termination_conditions:
  - "stages.A.confidence > 0.99"
  - {field: blocked, operator: "==", value: true}
""")
    rules = config.stages["A"].routing_rules
    assert rules[0].condition == "stages.A.confidence < 0.8 and amount >= 10000"
    assert isinstance(rules[1].condition, Condition)
    assert rules[1].condition.to_dict() == {"field": "amount", "operator": "EXISTS"}
    assert rules[1].action.reason == "big"
    assert config.termination_conditions[0] == "stages.A.confidence > 0.99"
    again = CascadeConfig.from_yaml(config.to_yaml())
    assert again == config
    assert again.to_dict() == config.to_dict()


def test_nested_structured_condition() -> None:
    """AND/OR nest, and per-item conditions and compare parse into the model."""
    condition = Condition.model_validate(
        {
            "operator": "AND",
            "conditions": [
                {"field": "amounts", "operator": "AVG", "compare": ">", "value": 5000},
                {
                    "field": "items",
                    "operator": "ANY",
                    "condition": {"field": "price", "operator": ">", "value": 10},
                },
            ],
        }
    )
    assert condition.conditions is not None
    assert condition.conditions[0].compare == ">"
    inner = condition.conditions[1].condition
    assert inner is not None
    assert inner.field == "price"


async def test_expression_strings_inside_structured_conditions() -> None:
    """As docs/conditions.md shows: an operand of AND/OR/NOT and the per-item condition of
    ANY may be an expression string; it loads, runs and round-trips as written."""
    config = CascadeConfig.from_yaml(r"""
name: mixed
stages:
  A:
    routing_rules:
      - name: risky
        condition:
          operator: OR
          conditions:
            - "user.risk_score > 0.9"
            - {field: user.email, operator: MATCHES, value: "@(mailinator|guerrillamail)\\.com$"}
        action: {type: terminate}
      - name: small
        condition: {operator: NOT, condition: "amount > 1"}
        action: {type: terminate}
      - name: pricey
        condition: {field: items, operator: ANY, condition: "price > 5"}
        action: {type: terminate}
  B: {}
""")
    rule = config.stages["A"].routing_rules[0]
    assert isinstance(rule.condition, Condition)
    assert rule.condition.conditions is not None
    assert rule.condition.conditions[0] == "user.risk_score > 0.9"
    assert CascadeConfig.from_yaml(config.to_yaml()) == config

    engine = CascadeEngine(config)
    engine.register_stage("A", lambda context: {"result": "a"})
    engine.register_stage("B", lambda context: {"result": "b"})
    cases = [
        ({"user": {"risk_score": 0.95}, "amount": 5}, "A"),
        ({"user": {"email": "x@mailinator.com"}, "amount": 5}, "A"),
        ({"amount": 0.5}, "A"),
        ({"amount": 5, "items": [{"price": 1}, {"price": 6}]}, "A"),
        ({"amount": 5, "items": [{"price": 1}], "user": {"risk_score": 0.1}}, "B"),
    ]
    for data, final in cases:
        result = await engine.execute(data)
        assert result["final_stage"] == final, data


def test_a_bad_expression_inside_a_structured_condition_is_placed_exactly() -> None:
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_dict(
            {
                "name": "c",
                "stages": {
                    "A": {
                        "routing_rules": [
                            {
                                "name": "r",
                                "condition": {
                                    "operator": "OR",
                                    "conditions": [
                                        "amount >> 3",
                                        {"field": "x", "operator": "GTE", "value": 1},
                                    ],
                                },
                                "action": {"type": "terminate"},
                            }
                        ]
                    }
                },
            }
        )
    paths = sorted(issue.path for issue in info.value.issues)
    assert paths == [
        "stages.A.routing_rules[0].condition.conditions[0]",
        "stages.A.routing_rules[0].condition.conditions[1].operator",
    ]
    assert info.value.issues[0].suggestion == ">=" or info.value.issues[1].suggestion == ">="


def test_models_are_frozen() -> None:
    """Configs are immutable once validated, so a running version never changes under it."""
    stage = StageConfig(name="S")
    with pytest.raises(ValidationError):
        stage.timeout_ms = 5


def test_nested_models_reject_unknown_fields() -> None:
    """Every model forbids unknown keys, with a ConfigError naming the closest field."""
    with pytest.raises(ConfigError, match="did you mean 'timeout_ms'"):
        StageConfig(name="S", timout_ms=5)  # type: ignore[call-arg]


def test_equality_ignores_where_a_config_came_from(quickstart: CascadeConfig) -> None:
    """Two configs with equal fields are equal whatever file they were read from."""
    assert CascadeConfig.from_yaml(QUICKSTART.read_text()) == quickstart
    assert quickstart != CascadeConfig.from_dict({**quickstart.to_dict(), "name": "other"})
    assert quickstart != "not a config"


def test_stage_lookup_by_name(quickstart: CascadeConfig) -> None:
    """stage(name) returns the stage, and an unknown name suggests the closest."""
    assert quickstart.stage("MEDIUM_CHECK").timeout_ms == 500
    with pytest.raises(KeyError, match="did you mean 'MEDIUM_CHECK'"):
        quickstart.stage("MEDIUM_CHEK")


def test_ordered_stage_names() -> None:
    """Without execution_order, stages follow declaration order moved after their deps."""
    config = CascadeConfig.from_yaml("""
name: c
stages:
  C: {depends_on: [B]}
  A: {}
  B: {depends_on: [A]}
""")
    assert config.ordered_stage_names() == ["A", "B", "C"]
    explicit = CascadeConfig.from_dict({**config.to_dict(), "execution_order": ["A", "B", "C"]})
    assert explicit.ordered_stage_names() == ["A", "B", "C"]


def test_full_stage_options_round_trip() -> None:
    """Every stage option survives a YAML round trip."""
    config = CascadeConfig(
        name="c",
        description="d",
        metadata={"owner": "risk"},
        stop_on_failure=True,
        stages={
            "S": StageConfig(
                name="S",
                enabled=False,
                handler_type="ml",
                handler="pkg.mod:Cls.method",
                timeout_ms=None,
                max_retries=3,
                retry_delay_ms=100,
                retry_backoff="fixed",
                retry_backoff_multiplier=1.5,
                retry_max_delay_ms=1000,
                can_run_parallel=True,
                parallel_group="g",
                cache_enabled=True,
                cache_ttl_seconds=60,
                cache_key_fields=["user.id"],
                circuit_breaker=CircuitBreakerConfig(failure_threshold=2),
                cost="POD",  # type: ignore[arg-type]
                stop_on_failure=True,
                custom_properties={"k": [1, {"x": None}]},
                description="stage",
            )
        },
    )
    assert CascadeConfig.from_yaml(config.to_yaml()) == config
    assert yaml.safe_load(config.to_yaml())["stages"]["S"]["cost"] == 100.0


def test_to_file_rejects_unknown_extensions(quickstart: CascadeConfig, tmp_path: Path) -> None:
    """to_file writes only .yaml, .yml and .json."""
    with pytest.raises(ConfigError, match="unsupported file extension"):
        quickstart.to_file(tmp_path / "c.toml")
