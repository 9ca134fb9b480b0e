"""A condition nested too deeply is one `ConfigError` naming where, at any depth and from any
source (dict, YAML, JSON, Python models), never a `RecursionError`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cascadence import ConfigError
from cascadence.cascade import CascadeConfig, Condition, RoutingRule
from cascadence.conditions.structured import MAX_DEPTH, TOO_DEEP
from cascadence.errors import ConfigIssue

DEPTHS = [MAX_DEPTH + 1, 150, 300, 1000, 10000]
LEAF = {"field": "x", "operator": "==", "value": 1}
RULE = "stages.A.routing_rules[0].condition"
TERMINATE = {"type": "terminate"}


def nots(depth: int, *, single: bool = False) -> dict[str, Any]:
    """`NOT` wrapped `depth` times around a comparison, through `conditions: [...]` or, with
    `single`, through `condition:`."""
    condition: dict[str, Any] = dict(LEAF)
    for _ in range(depth):
        condition = (
            {"operator": "NOT", "condition": condition}
            if single
            else {"operator": "NOT", "conditions": [condition]}
        )
    return condition


def nots_json(depth: int, *, single: bool = False) -> str:
    """`nots(depth)` as JSON text, built without recursion (json.dumps would recurse)."""
    leaf = json.dumps(LEAF)
    if single:
        return '{"operator": "NOT", "condition": ' * depth + leaf + "}" * depth
    return '{"operator": "NOT", "conditions": [' * depth + leaf + "]}" * depth


def cascade(condition: Any) -> dict[str, Any]:
    """A one-stage cascade whose one rule has `condition`."""
    rule = {"name": "r", "condition": condition, "action": TERMINATE}
    return {"name": "deep", "stages": {"A": {"routing_rules": [rule]}}}


def cascade_json(condition_text: str) -> str:
    """`cascade(...)` as JSON text around a condition already written as JSON."""
    return (
        '{"name": "deep", "stages": {"A": {"routing_rules": [{"name": "r", '
        '"action": {"type": "terminate"}, "condition": ' + condition_text + "}]}}}"
    )


def too_deep_at(root: str, step: str = "conditions[0]") -> str:
    """The path of the first condition past the limit below `root`."""
    return ".".join([root] + [step] * (MAX_DEPTH + 1)) if root else ".".join([step] * 101)


def only_issue(error: ConfigError) -> ConfigIssue:
    assert len(error.issues) == 1, error.issues
    issue = error.issues[0]
    assert issue.message == TOO_DEEP
    assert issue.expected is not None and str(MAX_DEPTH) in issue.expected
    assert isinstance(error, ValueError)
    return issue


@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_condition_in_a_dict_is_one_issue_at_the_limit(depth: int) -> None:
    """From 101 levels to 10,000, from_dict reports the same issue at the 101st level."""
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_dict(cascade(nots(depth)))
    assert only_issue(info.value).path == too_deep_at(RULE)


@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_single_condition_chain_in_termination_conditions(depth: int) -> None:
    """`condition:` chains (NOT, ALL/ANY/NONE) in termination conditions stop at the limit too."""
    data = {
        "name": "deep",
        "stages": {"A": {}},
        "termination_conditions": [nots(depth, single=True)],
    }
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_dict(data)
    assert only_issue(info.value).path == too_deep_at("termination_conditions[0]", "condition")


def test_the_limit_itself_is_accepted() -> None:
    """A condition exactly MAX_DEPTH levels deep loads, from a dict and from JSON text."""
    config = CascadeConfig.from_dict(cascade(nots(MAX_DEPTH)))
    assert CascadeConfig.from_json(cascade_json(nots_json(MAX_DEPTH))) == config


@pytest.mark.parametrize("depth", [300, 1000, 10000])
def test_deep_condition_in_json_and_flow_yaml(depth: int) -> None:
    """JSON (and the same text read as YAML) too deep for the parsers is one issue at the same
    path; YAML names its file and line."""
    text = cascade_json(nots_json(depth))
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_json(text)
    assert only_issue(info.value).path == too_deep_at(RULE)
    with pytest.raises(ConfigError) as as_yaml:
        CascadeConfig.from_yaml(text, source="deep.yaml")
    issue = only_issue(as_yaml.value)
    assert issue.path == too_deep_at(RULE)
    assert (issue.file, issue.line) == ("deep.yaml", 1)
    assert f"deep.yaml:1:{issue.column}: {issue.path}" in str(as_yaml.value)


@pytest.mark.parametrize("depth", [150, 300, 1000])  # 10,000 block levels is a 200 MB file
def test_deep_condition_in_a_yaml_file_has_its_line(tmp_path: Path, depth: int) -> None:
    """A block-style YAML file nested past the limit names the line of the 101st level."""
    lines = ["name: deep", "stages:", "  A:", "    routing_rules:", "      - name: r"]
    lines += ["        action: {type: terminate}", "        condition:"]
    indent = " " * 10
    for _ in range(depth):
        lines += [f"{indent}operator: NOT", f"{indent}condition:"]
        indent += "  "
    lines += [f"{indent}field: x", f"{indent}operator: EXISTS"]
    path = tmp_path / "deep.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_file(path)
    issue = only_issue(info.value)
    assert issue.path == too_deep_at(RULE, "condition")
    assert issue.file == str(path)
    assert issue.line == 7 + 2 * (MAX_DEPTH + 1)  # the `condition:` key of the 101st level
    assert lines[issue.line - 1].strip() == "condition:"


@pytest.mark.parametrize("depth", [300, 1000, 10000])
def test_deep_condition_given_to_python_constructors(depth: int) -> None:
    """Condition(...), RoutingRule(...) and CascadeConfig(...) built from a deep dict raise the
    ConfigError too, with paths relative to what was built."""
    with pytest.raises(ConfigError) as condition:
        Condition(**nots(depth))
    assert only_issue(condition.value).path == too_deep_at("")
    with pytest.raises(ConfigError) as rule:
        RoutingRule(name="r", condition=nots(depth), action=TERMINATE)  # type: ignore[arg-type]
    assert only_issue(rule.value).path == too_deep_at("condition")
    with pytest.raises(ConfigError) as whole:
        CascadeConfig(**cascade(nots(depth)))
    assert only_issue(whole.value).path == too_deep_at(RULE)


def test_deep_chain_of_condition_models() -> None:
    """Condition models chained one inside the next past any recursion limit (built without
    validation: `Condition(...)` refuses the level past the limit) are reported when they are
    put in a cascade."""
    condition = Condition(field="x", operator="==", value=1)
    for _ in range(1000):
        condition = Condition.model_construct(operator="NOT", conditions=[condition])
    with pytest.raises(ConfigError) as built:
        RoutingRule(name="r", condition=condition, action=TERMINATE)  # type: ignore[arg-type]
    assert only_issue(built.value).path == too_deep_at("condition")
    rule = {"name": "r", "condition": condition, "action": TERMINATE}
    with pytest.raises(ConfigError) as info:
        CascadeConfig(name="deep", stages={"A": {"routing_rules": [rule]}})
    assert only_issue(info.value).path == too_deep_at(RULE)
    with pytest.raises(ConfigError) as termination:
        CascadeConfig(name="deep", stages={"A": {}}, termination_conditions=[condition])
    assert only_issue(termination.value).path == too_deep_at("termination_conditions[0]")


def test_condition_model_past_the_limit_fails_when_built() -> None:
    """`Condition(...)` nested past the limit fails as it is built, with the issue loading
    the same condition gives, located from the condition built."""
    condition = Condition(field="x", operator="==", value=1)
    for _ in range(MAX_DEPTH):
        condition = Condition(operator="NOT", conditions=[condition])
    with pytest.raises(ConfigError) as info:
        Condition(operator="NOT", conditions=[condition])
    with pytest.raises(ConfigError) as loaded:
        CascadeConfig.from_dict(cascade(nots(MAX_DEPTH + 1)))
    issue = only_issue(info.value)
    assert RULE + "." + issue.path == only_issue(loaded.value).path
    assert issue.path == too_deep_at("")


def test_condition_containing_itself() -> None:
    """A condition dict that contains itself is a ConfigError about the cycle."""
    condition: dict[str, Any] = {"operator": "NOT"}
    condition["conditions"] = [condition]
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_dict(cascade(condition))
    assert [i.path for i in info.value.issues] == [f"{RULE}.conditions[0]"]
    assert "contains itself" in info.value.issues[0].message
    with pytest.raises(ConfigError, match="contains itself"):
        Condition(**condition)


def test_yaml_alias_containing_itself(tmp_path: Path) -> None:
    """A YAML alias inside the node it names is a ConfigError at its line, whether it makes a
    condition or a stage contain itself."""
    path = tmp_path / "cycle.yaml"
    path.write_text(
        "name: cycle\n"
        "stages:\n"
        "  A:\n"
        "    routing_rules:\n"
        "      - name: r\n"
        "        action: {type: terminate}\n"
        "        condition: &c {operator: NOT, conditions: [*c]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_file(path)
    issue = info.value.issues[0]
    assert "contains itself" in issue.message
    assert (issue.path, issue.line) == (f"{RULE}.conditions[0]", 7)
    with pytest.raises(ConfigError, match="unknown field 'A' of StageConfig"):
        CascadeConfig.from_yaml("name: cycle\nstages: &s\n  A: *s\n")
