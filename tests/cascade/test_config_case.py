"""Rule types, action types and `retry_backoff` load in any case (and with whitespace around
them), are kept and written in lower case, and a misspelling still gets a did-you-mean."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from cascade_files import issue_at, load_error
from hypothesis import given
from hypothesis import strategies as st
from test_config_schema import conforms

from cascadence.cascade import CascadeConfig, RoutingAction, RoutingRule, StageConfig
from cascadence.errors import ConfigError

ACTIONS: dict[str, dict[str, Any]] = {
    "terminate": {},
    "skip_to": {"target": "B"},
    "enable_stages": {"stages": ["B"]},
    "disable_stages": {"stages": ["B"]},
    "set_field": {"field": "x", "value": 1},
}
RULE_TYPES = ["precondition", "routing", "postcondition"]
BACKOFFS = ["fixed", "exponential"]


def spellings(word: str) -> st.SearchStrategy[str]:
    """`word` with each letter in either case and whitespace around it."""
    letters = st.tuples(*(st.sampled_from(sorted({c.lower(), c.upper()})) for c in word))
    space = st.sampled_from(["", " ", "  ", "\t"])
    return st.tuples(space, letters.map("".join), space).map("".join)


def config_data(rule_type: str, action_type: str, backoff: str) -> dict[str, Any]:
    """A two-stage config whose one rule and stage A use these spellings."""
    action = {"type": action_type, **ACTIONS[action_type.strip().lower()]}
    rule = {"name": "r", "type": rule_type, "condition": "x > 1", "action": action}
    return {
        "name": "t",
        "stages": {
            "A": {"retry_backoff": backoff, "routing_rules": [rule]},
            "B": {},
        },
    }


@given(
    st.sampled_from(RULE_TYPES).flatmap(lambda r: spellings(r).map(lambda s: (r, s))),
    st.sampled_from(sorted(ACTIONS)).flatmap(lambda a: spellings(a).map(lambda s: (a, s))),
    st.sampled_from(BACKOFFS).flatmap(lambda b: spellings(b).map(lambda s: (b, s))),
)
def test_any_case_loads_as_the_lower_case_word(
    rule: tuple[str, str], action: tuple[str, str], backoff: tuple[str, str]
) -> None:
    """Every spelling in any case, built in Python, from a dict, from YAML or from JSON, loads
    as the config written in lower case, and is written back in lower case."""
    canonical = CascadeConfig.from_dict(config_data(rule[0], action[0], backoff[0]))
    data = config_data(rule[1], action[1], backoff[1])
    assert CascadeConfig.from_dict(data) == canonical
    assert CascadeConfig(**data) == canonical
    assert CascadeConfig.from_yaml(yaml.safe_dump(data)) == canonical
    assert CascadeConfig.from_json(json.dumps(data)) == canonical
    written = CascadeConfig.from_dict(data).to_dict()
    stage = written["stages"]["A"]
    assert stage["retry_backoff"] == backoff[0]
    assert stage["routing_rules"][0]["type"] == rule[0]
    assert stage["routing_rules"][0]["action"]["type"] == action[0]


@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_an_action_built_in_python_keeps_the_lower_case_type(kind: str) -> None:
    """`RoutingAction(type="TERMINATE")` is the action `RoutingAction(type="terminate")`."""
    action = RoutingAction(type=f" {kind.upper()} ", **ACTIONS[kind])  # type: ignore[arg-type]
    assert action.type == kind
    assert action == RoutingAction(type=kind, **ACTIONS[kind])
    assert action.to_dict()["type"] == kind


@pytest.mark.parametrize("kind", RULE_TYPES)
def test_a_rule_built_in_python_keeps_the_lower_case_type(kind: str) -> None:
    """`RoutingRule(type="ROUTING", ...)` is the rule written with `routing`."""
    rule = RoutingRule(
        name="r",
        type=kind.upper(),  # type: ignore[arg-type]
        condition="x > 1",
        action=RoutingAction(type="Terminate"),  # type: ignore[arg-type]
    )
    assert (rule.type, rule.action.type) == (kind, "terminate")
    assert (
        yaml.safe_load(
            CascadeConfig(
                name="t", stages={"A": StageConfig(name="A", routing_rules=[rule])}
            ).to_yaml()
        )["stages"]["A"]["routing_rules"][0]["type"]
        == kind
    )


def test_stage_backoff_in_any_case() -> None:
    """`retry_backoff: Exponential` is `exponential`."""
    assert StageConfig(name="A", retry_backoff="Exponential").retry_backoff == "exponential"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "data", "given", "suggestion"),
    [
        (RoutingAction, {"type": "TERMINTE"}, "TERMINTE", "terminate"),
        (RoutingAction, {"type": "Skip-To", "target": "B"}, "Skip-To", "skip_to"),
        (StageConfig, {"name": "A", "retry_backoff": "EXPONENTAL"}, "EXPONENTAL", "exponential"),
        (
            RoutingRule,
            {"name": "r", "type": "ROUTNG", "condition": "x", "action": {"type": "terminate"}},
            "ROUTNG",
            "routing",
        ),
    ],
)
def test_a_misspelling_in_any_case_gets_the_closest_word(
    model: type[Any], data: dict[str, Any], given: str, suggestion: str
) -> None:
    """A word that is not one of the types in any case is refused, showing it as written and
    suggesting the closest type."""
    with pytest.raises(ConfigError) as info:
        model(**data)
    issue = info.value.issues[0]
    assert issue.message == f"invalid value {given!r}"
    assert issue.suggestion == suggestion


def test_upper_case_types_get_the_cross_reference_checks(tmp_path: Path) -> None:
    """The checks between stages read upper-case types as the lower-case ones: a `SKIP_TO` to
    an unknown stage and a `PRECONDITION` reading its own stage's result are both reported at
    their lines."""
    error, _ = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: jump
                type: ROUTING
                condition: "x > 1"
                action: {type: SKIP_TO, target: C}
              - name: early
                type: PRECONDITION
                condition: "stages.A.confidence > 0.5"
                action: {type: Terminate}
          B: {}
        """,
    )
    jump = issue_at(error, "stages.A.routing_rules[0].action.target")
    assert jump.message == "unknown stage 'C' in skip_to target"
    assert jump.line == 8
    early = issue_at(error, "stages.A.routing_rules[1].condition")
    assert early.message.startswith("a precondition runs before stage 'A'")
    assert early.line == 11


def test_the_schema_lists_the_lower_case_words_and_accepts_what_to_yaml_writes() -> None:
    """The JSON Schema keeps the lower-case words (editors suggest what `to_yaml` writes), and a
    config loaded from upper-case words and written back conforms to it."""
    schema = CascadeConfig.json_schema()
    defs = schema["$defs"]
    assert defs["RoutingAction"]["properties"]["type"]["enum"] == list(ACTIONS)
    assert defs["RoutingRule"]["properties"]["type"]["enum"] == RULE_TYPES
    assert defs["StageConfig"]["properties"]["retry_backoff"]["enum"] == BACKOFFS
    data = config_data("POSTCONDITION", "ENABLE_STAGES", "FIXED")
    written = yaml.safe_load(CascadeConfig.from_dict(data).to_yaml())
    assert conforms(written, schema, schema)
    assert not conforms(data, schema, schema)


def test_a_file_with_upper_case_types_loads_equal_to_lower_case(tmp_path: Path) -> None:
    """A file written with upper-case types loads equal to the one in lower case."""
    lower = textwrap.dedent(
        """
        name: t
        stages:
          A:
            routing_rules:
              - {name: r, type: routing, condition: "x > 1", action: {type: terminate}}
          B: {}
        """
    )
    upper = lower.replace("type: routing", "type: ROUTING").replace(
        "type: terminate", "type: TERMINATE"
    )
    (tmp_path / "lower.yaml").write_text(lower, encoding="utf-8")
    (tmp_path / "upper.yaml").write_text(upper, encoding="utf-8")
    assert CascadeConfig.from_file(tmp_path / "upper.yaml") == CascadeConfig.from_file(
        tmp_path / "lower.yaml"
    )
