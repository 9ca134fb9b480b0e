"""Load errors: every problem reported at once with file, line, path, expectation and suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest
from cascade_files import issue_at, line_of, load_error, write

from cascadence.cascade import CascadeConfig, Condition, RoutingAction, RoutingRule, StageConfig
from cascadence.errors import ConfigError, ConfigIssue


def assert_reported(
    error: ConfigError, issue: ConfigIssue, file: Path, line: int, suggestion: str | None = None
) -> None:
    """The issue carries file, line and suggestion, and the message shows all of them."""
    assert issue.file == str(file)
    assert issue.line == line
    assert issue.suggestion == suggestion
    text = str(error)
    assert f"{file}:{line}" in text
    assert issue.path in text
    if suggestion is not None:
        assert f"did you mean {suggestion!r}?" in text


# -- field validation --------------------------------------------------------------------------


def test_misspelt_stage_field_names_the_closest_field(tmp_path: Path) -> None:
    """An unknown key in a stage is reported at its line with the closest field name."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          FAST_CHECK:
            timout_ms: 100
        """,
    )
    issue = issue_at(error, "stages.FAST_CHECK.timout_ms")
    assert_reported(error, issue, path, line_of(path, "timout_ms"), "timeout_ms")
    assert issue.expected is not None
    assert "timeout_ms" in issue.expected


def test_misspelt_top_level_field(tmp_path: Path) -> None:
    """An unknown top-level key suggests the config field it resembles."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages: {A: {}}
        execution_ordr: [A]
        """,
    )
    issue = issue_at(error, "execution_ordr")
    assert_reported(error, issue, path, 3, "execution_order")


def test_misspelt_condition_key_reports_once(tmp_path: Path) -> None:
    """A misspelt required key is one issue (the unknown key), not also 'missing operator'."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                condition:
                  field: amount
                  operater: "<"
                  value: 3
                action: {type: terminate}
        """,
    )
    assert len(error.issues) == 1
    issue = issue_at(error, "stages.A.routing_rules[0].condition.operater")
    assert_reported(error, issue, path, line_of(path, "operater"), "operator")


def test_missing_required_field_points_at_parent(tmp_path: Path) -> None:
    """A missing key is located at the line of the mapping that lacks it."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - condition: "amount > 3"
                action: {type: terminate}
        """,
    )
    issue = issue_at(error, "stages.A.routing_rules[0].name")
    assert_reported(error, issue, path, line_of(path, "- condition"))
    assert "missing required field 'name'" in issue.message


def test_missing_name_of_cascade(tmp_path: Path) -> None:
    """A config without a name says so at the root."""
    error, path = load_error(
        tmp_path,
        """
        stages: {A: {}}
        """,
    )
    issue = issue_at(error, "name")
    assert issue.file == str(path)
    assert issue.line == 1


def test_wrong_type_is_reported_with_the_value(tmp_path: Path) -> None:
    """A value of the wrong type names the field, its line and what was given."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            enabled: true
            timeout_ms: fast
        """,
    )
    issue = issue_at(error, "stages.A.timeout_ms")
    assert_reported(error, issue, path, 5)
    assert "'fast'" in issue.message


def test_non_positive_timeout(tmp_path: Path) -> None:
    """Timeouts must be positive."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        global_timeout_ms: 0
        stages: {A: {}}
        """,
    )
    assert_reported(error, issue_at(error, "global_timeout_ms"), path, 2)


def test_unknown_action_type_suggests_the_closest(tmp_path: Path) -> None:
    """An unknown action type lists the valid ones and suggests the closest."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                condition: "amount > 3"
                action:
                  type: terminat
        """,
    )
    issue = issue_at(error, "stages.A.routing_rules[0].action.type")
    assert_reported(error, issue, path, line_of(path, "type: terminat"), "terminate")
    assert issue.expected is not None
    assert "skip_to" in issue.expected


def test_unknown_rule_type_suggests_the_closest(tmp_path: Path) -> None:
    """An unknown rule type suggests precondition, routing or postcondition."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                type: precondtion
                condition: "amount > 3"
                action: {type: terminate}
        """,
    )
    issue = issue_at(error, "stages.A.routing_rules[0].type")
    assert_reported(error, issue, path, line_of(path, "precondtion"), "precondition")


def test_action_without_its_parameter(tmp_path: Path) -> None:
    """skip_to without a target is reported at the action, naming the missing parameter."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                condition: "amount > 3"
                action:
                  type: skip_to
          B: {}
        """,
    )
    issue = issue_at(error, "stages.A.routing_rules[0].action.target")
    assert_reported(error, issue, path, line_of(path, "action:"))
    assert "target" in issue.message


def test_action_with_a_parameter_of_another_type(tmp_path: Path) -> None:
    """A parameter that the action type does not use is an error, not silently ignored."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                condition: "amount > 3"
                action:
                  type: terminate
                  target: A
        """,
    )
    issue = issue_at(error, "stages.A.routing_rules[0].action.target")
    assert_reported(error, issue, path, line_of(path, "target: A"))
    assert "skip_to" in issue.message


def test_empty_stage_list_for_enable(tmp_path: Path) -> None:
    """enable_stages needs at least one stage."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                condition: "amount > 3"
                action: {type: enable_stages, stages: []}
        """,
    )
    issue = issue_at(error, "stages.A.routing_rules[0].action.stages")
    assert_reported(error, issue, path, line_of(path, "enable_stages"))


def test_unknown_cost_tier(tmp_path: Path) -> None:
    """A cost given by name must be one of the cost model's tiers."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            cost: SINGLE_A
        """,
    )
    issue = issue_at(error, "stages.A.cost")
    assert_reported(error, issue, path, 4, "SINGLE_AI")


def test_handler_must_be_an_import_path(tmp_path: Path) -> None:
    """A handler is 'package.module:function'; anything else is rejected at load."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            handler: "myapp stages fast"
        """,
    )
    issue = issue_at(error, "stages.A.handler")
    assert_reported(error, issue, path, 4)
    assert issue.expected is not None
    assert "package.module:function" in issue.expected


def test_condition_of_the_wrong_kind(tmp_path: Path) -> None:
    """A condition that is neither a mapping nor a string says what a condition is."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                condition: 42
                action: {type: terminate}
        """,
    )
    issue = issue_at(error, "stages.A.routing_rules[0].condition")
    assert_reported(error, issue, path, line_of(path, "condition: 42"))
    assert "expression string" in issue.message


# -- cross references --------------------------------------------------------------------------


def test_unknown_stage_in_execution_order(tmp_path: Path) -> None:
    """execution_order names must be stages; the closest one is suggested."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          FAST_CHECK: {}
          MEDIUM_CHECK: {}
        execution_order:
          - FAST_CHECK
          - MEDIUM_CHEK
        """,
    )
    issue = issue_at(error, "execution_order[1]")
    assert_reported(error, issue, path, line_of(path, "- MEDIUM_CHEK"), "MEDIUM_CHECK")
    assert issue.expected is not None
    assert "FAST_CHECK" in issue.expected


def test_unknown_stage_in_depends_on(tmp_path: Path) -> None:
    """depends_on names must be stages."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          FAST_CHECK: {}
          MEDIUM_CHECK:
            depends_on:
              - FAST_CHEK
        """,
    )
    issue = issue_at(error, "stages.MEDIUM_CHECK.depends_on[0]")
    assert_reported(error, issue, path, line_of(path, "- FAST_CHEK"), "FAST_CHECK")


def test_unknown_skip_to_target(tmp_path: Path) -> None:
    """A skip_to target must be a stage."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          FAST_CHECK:
            routing_rules:
              - name: r
                condition: "amount > 3"
                action:
                  type: skip_to
                  target: EXPENSIVE
          EXPENSIVE_CHECK: {}
        """,
    )
    issue = issue_at(error, "stages.FAST_CHECK.routing_rules[0].action.target")
    assert_reported(error, issue, path, line_of(path, "target:"), "EXPENSIVE_CHECK")


@pytest.mark.parametrize("order", ["execution_order: [A, B]", "", "execution_order: null"])
def test_skip_to_backwards(tmp_path: Path, order: str) -> None:
    """skip_to only jumps forward in the execution order, explicit or from dependencies."""
    error, path = load_error(
        tmp_path,
        f"""
        name: t
        stages:
          A: {{}}
          B:
            depends_on: [A]
            routing_rules:
              - name: back
                condition: "amount > 3"
                action: {{type: skip_to, target: A}}
        {order}
        """,
    )
    issue = issue_at(error, "stages.B.routing_rules[0].action.target")
    assert_reported(error, issue, path, line_of(path, "skip_to"))
    assert "forward" in issue.message


def test_unknown_stages_in_enable_and_disable(tmp_path: Path) -> None:
    """Every name in enable_stages and disable_stages must be a stage."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          FAST_CHECK:
            routing_rules:
              - name: on
                condition: "amount > 3"
                action:
                  type: enable_stages
                  stages:
                    - MEDIUM_CHECK
                    - MANUAL_REVEIW
              - name: off
                condition: "amount < 3"
                action: {type: disable_stages, stages: [MEDUIM_CHECK]}
          MEDIUM_CHECK: {}
          MANUAL_REVIEW: {}
        """,
    )
    enable = issue_at(error, "stages.FAST_CHECK.routing_rules[0].action.stages[1]")
    assert_reported(error, enable, path, line_of(path, "- MANUAL_REVEIW"), "MANUAL_REVIEW")
    disable = issue_at(error, "stages.FAST_CHECK.routing_rules[1].action.stages[0]")
    assert disable.suggestion == "MEDIUM_CHECK"
    assert disable.line == line_of(path, "MEDUIM_CHECK")


def test_unknown_stage_in_structured_condition(tmp_path: Path) -> None:
    """A `stages.NAME` field must name a stage; the issue points at that field."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          FAST_CHECK:
            routing_rules:
              - name: r
                condition:
                  operator: AND
                  conditions:
                    - field: amount
                      operator: ">"
                      value: 3
                    - field: stages.FAST_CHEK.confidence
                      operator: "<"
                      value: 0.8
                action: {type: terminate}
        """,
    )
    issue = issue_at(error, "stages.FAST_CHECK.routing_rules[0].condition.conditions[1].field")
    assert_reported(error, issue, path, line_of(path, "FAST_CHEK"), "FAST_CHECK")


def test_unknown_stage_in_expression_has_a_caret(tmp_path: Path) -> None:
    """In an expression string the unknown stage gets a caret under its column."""
    expression = "amount >= 10000 and stages.FAST_CHEK.confidence < 0.8"
    error, path = load_error(
        tmp_path,
        f"""
        name: t
        stages:
          FAST_CHECK:
            routing_rules:
              - name: r
                condition: "{expression}"
                action: {{type: terminate}}
        """,
    )
    issue = issue_at(error, "stages.FAST_CHECK.routing_rules[0].condition")
    assert_reported(error, issue, path, line_of(path, "condition:"), "FAST_CHECK")
    assert issue.source_line == expression
    assert issue.column == expression.index("stages.FAST_CHEK") + 1
    assert f"{expression}\n    {' ' * expression.index('stages.')}^" in str(error)


def test_unknown_stage_in_termination_condition(tmp_path: Path) -> None:
    """Global termination conditions are checked like rule conditions."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          FAST_CHECK: {}
        termination_conditions:
          - field: stages.FAST.confidence
            operator: ">"
            value: 0.99
        """,
    )
    issue = issue_at(error, "termination_conditions[0].field")
    assert_reported(error, issue, path, line_of(path, "stages.FAST."), "FAST_CHECK")


def test_dependency_cycle_is_named(tmp_path: Path) -> None:
    """A dependency cycle is reported once, spelled out stage by stage."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          FAST:
            depends_on: [SLOW]
          MEDIUM:
            depends_on: [FAST]
          SLOW:
            depends_on: [MEDIUM]
        """,
    )
    cycles = [i for i in error.issues if "cycle" in i.message]
    assert len(cycles) == 1
    assert "FAST -> SLOW -> MEDIUM -> FAST" in cycles[0].message
    assert cycles[0].path == "stages.FAST.depends_on"
    assert_reported(error, cycles[0], path, line_of(path, "depends_on: [SLOW]"))


def test_self_dependency_is_a_cycle(tmp_path: Path) -> None:
    """A stage depending on itself is a cycle of one."""
    error, _ = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            depends_on: [A]
        """,
    )
    issue = issue_at(error, "stages.A.depends_on")
    assert "A -> A" in issue.message
    assert issue.line == 4


def test_execution_order_contradicting_depends_on(tmp_path: Path) -> None:
    """A stage listed before a stage it depends on is an error."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          FAST_CHECK:
            timeout_ms: 100
          MEDIUM_CHECK:
            depends_on: [FAST_CHECK]
        execution_order:
          - MEDIUM_CHECK
          - FAST_CHECK
        """,
    )
    issue = issue_at(error, "execution_order[0]")
    assert_reported(error, issue, path, line_of(path, "- MEDIUM_CHECK"))
    assert "depends on" in issue.message
    assert issue.expected == "'FAST_CHECK' listed before 'MEDIUM_CHECK'"


def test_stage_listed_twice_in_execution_order(tmp_path: Path) -> None:
    """Each stage appears in execution_order once."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages: {A: {}, B: {}}
        execution_order: [A, B, A]
        """,
    )
    issue = issue_at(error, "execution_order[2]")
    assert_reported(error, issue, path, 3)
    assert "twice" in issue.message


def test_stage_missing_from_execution_order(tmp_path: Path) -> None:
    """When execution_order is given, every stage must be in it."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages: {A: {}, B: {}}
        execution_order: [A]
        """,
    )
    issue = issue_at(error, "execution_order")
    assert_reported(error, issue, path, 3)
    assert "'B'" in issue.message


def test_duplicate_stage_names_in_a_list(tmp_path: Path) -> None:
    """Stages given as a list must have distinct names."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          - name: A
          - name: B
          - name: A
            timeout_ms: 5
        """,
    )
    issue = issue_at(error, "stages[2].name")
    assert_reported(error, issue, path, line_of(path, "- name: A", 2))
    assert "duplicate stage name 'A'" in issue.message


def test_duplicate_stage_keys_in_a_mapping(tmp_path: Path) -> None:
    """A stage key written twice in a mapping is reported, not silently overwritten."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A: {}
          A:
            timeout_ms: 5
        """,
    )
    issue = issue_at(error, "stages.A")
    assert_reported(error, issue, path, 4)
    assert "first on line 3" in issue.message


def test_duplicate_rule_names(tmp_path: Path) -> None:
    """Rule names are unique within a stage."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                condition: "amount > 3"
                action: {type: terminate}
              - name: r
                condition: "amount > 4"
                action: {type: terminate}
        """,
    )
    issue = issue_at(error, "stages.A.routing_rules[1].name")
    assert_reported(error, issue, path, line_of(path, "- name: r", 2))


def test_stage_name_differing_from_its_key(tmp_path: Path) -> None:
    """In a mapping, a stage's name (when given) equals its key."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          FAST_CHECK:
            name: FAST
        """,
    )
    issue = issue_at(error, "stages.FAST_CHECK.name")
    assert_reported(error, issue, path, 4)


def test_stage_list_items_are_located_by_index(tmp_path: Path) -> None:
    """In a list of stages, an issue in a named stage is shown by name and found by index."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          - name: A
          - name: B
            timeout_ms: -1
          - timeout_ms: 5
        """,
    )
    named = issue_at(error, "stages.B.timeout_ms")
    assert_reported(error, named, path, line_of(path, "timeout_ms: -1"))
    nameless = issue_at(error, "stages[2].name")
    assert_reported(error, nameless, path, line_of(path, "timeout_ms: 5"))


# -- the condition language --------------------------------------------------------------------


def test_unknown_operator_suggests_the_closest(tmp_path: Path) -> None:
    """An unknown operator is reported at its line with the closest operator."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                condition:
                  field: user.roles
                  operator: CONTAIN
                  value: admin
                action: {type: terminate}
        """,
    )
    issue = issue_at(error, "stages.A.routing_rules[0].condition.operator")
    assert_reported(error, issue, path, line_of(path, "CONTAIN"), "CONTAINS")


def test_nested_condition_problem_has_its_own_line(tmp_path: Path) -> None:
    """A problem deep inside AND/OR is located at the nested key's line."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                condition:
                  operator: OR
                  conditions:
                    - field: a
                      operator: ">"
                      value: 1
                    - field: b
                      operator: "=>"
                      value: 2
                action: {type: terminate}
        """,
    )
    issue = issue_at(error, "stages.A.routing_rules[0].condition.conditions[1].operator")
    assert issue.file == str(path)
    assert issue.line == line_of(path, '"=>"')
    assert issue.suggestion is not None


def test_in_without_a_list(tmp_path: Path) -> None:
    """IN needs a list value; the issue is placed inside the condition."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                condition:
                  field: country
                  operator: IN
                  value: US
                action: {type: terminate}
        """,
    )
    prefix = "stages.A.routing_rules[0].condition"
    issues = [i for i in error.issues if i.path.startswith(prefix)]
    assert issues
    assert issues[0].file == str(path)
    assert issues[0].line in (line_of(path, "condition:"), line_of(path, "value: US"))


def test_invalid_regex(tmp_path: Path) -> None:
    """A MATCHES pattern that does not compile fails the load."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                condition:
                  field: user.email
                  operator: MATCHES
                  value: "([a-z]+"
                action: {type: terminate}
        """,
    )
    prefix = "stages.A.routing_rules[0].condition"
    issues = [i for i in error.issues if i.path.startswith(prefix)]
    assert issues
    assert issues[0].line in (line_of(path, "condition:"), line_of(path, "value:"))


def test_malformed_expression_has_column_and_caret(tmp_path: Path) -> None:
    """A malformed expression string gets the column inside it and a caret in the message."""
    expression = "amount >= and stages.A.confidence < 0.8"
    error, path = load_error(
        tmp_path,
        f"""
        name: t
        stages:
          A:
            routing_rules:
              - name: r
                condition: "{expression}"
                action: {{type: terminate}}
        """,
    )
    issue = error.issues[0]
    assert issue.path.startswith("stages.A.routing_rules[0].condition")
    assert issue.file == str(path)
    assert issue.line == line_of(path, "condition:")
    assert issue.source_line == expression
    assert issue.column is not None
    assert 1 <= issue.column <= len(expression)
    assert f"    {expression}\n    {' ' * (issue.column - 1)}^" in str(error)


# -- files, syntax and many problems at once ---------------------------------------------------


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """One ConfigError lists every problem, in file order."""
    error, _ = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            timout_ms: 5
            depends_on: [Z]
          B:
            routing_rules:
              - name: r
                condition: "amount > 3"
                action: {type: explode}
        execution_order: [A, B, C]
        """,
    )
    paths = [i.path for i in error.issues]
    assert paths == [
        "stages.A.timout_ms",
        "stages.A.depends_on[0]",
        "stages.B.routing_rules[0].action.type",
        "execution_order[2]",
    ]
    assert str(error).startswith("4 problems in the cascade configuration")


def test_no_pydantic_traceback(tmp_path: Path) -> None:
    """The ConfigError is raised from None, with no chained validation error."""
    error, _ = load_error(tmp_path, "name: t\nstages: {A: {timeout_ms: x}}\n")
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_yaml_syntax_error(tmp_path: Path) -> None:
    """Malformed YAML is reported at the line and column of the problem."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A: {timeout_ms: 5
        """,
    )
    issue = error.issues[0]
    assert issue.file == str(path)
    assert issue.line is not None
    assert issue.line >= 3
    assert "invalid YAML" in issue.message


def test_empty_file(tmp_path: Path) -> None:
    """An empty file says a mapping was expected."""
    error, path = load_error(tmp_path, "# nothing here\n")
    assert error.issues[0].file == str(path)
    assert "empty" in error.issues[0].message


def test_json_file_issues_have_lines(tmp_path: Path) -> None:
    """JSON configs are located line by line too."""
    error, path = load_error(
        tmp_path,
        """
        {
          "name": "t",
          "stages": {
            "FAST_CHECK": {"timeout_ms": 5},
            "MEDIUM_CHECK": {"depends_on": ["FAST_CHEK"]}
          }
        }
        """,
        name="cascade.json",
    )
    issue = issue_at(error, "stages.MEDIUM_CHECK.depends_on[0]")
    assert_reported(error, issue, path, line_of(path, "FAST_CHEK"), "FAST_CHECK")


def test_json_syntax_error(tmp_path: Path) -> None:
    """Malformed JSON is reported at its line."""
    error, path = load_error(
        tmp_path, '{\n  "name": "t",\n  "stages": {,}\n}\n', name="cascade.json"
    )
    issue = error.issues[0]
    assert issue.file == str(path)
    assert issue.line == 3
    assert "invalid JSON" in issue.message


def test_unsupported_extension(tmp_path: Path) -> None:
    """Only .yaml, .yml and .json files load; the error names the allowed extensions."""
    path = write(tmp_path, "name: t\n", name="cascade.yamll")
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_file(path)
    issue = info.value.issues[0]
    assert ".yamll" in issue.message
    assert issue.expected == "one of .yaml, .yml, .json"
    assert issue.suggestion == ".yaml"


def test_missing_file(tmp_path: Path) -> None:
    """A file that cannot be read is a ConfigError naming it."""
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_file(tmp_path / "absent.yaml")
    assert info.value.issues[0].file == str(tmp_path / "absent.yaml")


# -- dicts and Python construction -------------------------------------------------------------


def test_from_dict_reports_paths_without_lines() -> None:
    """from_dict validates the same way, with paths and suggestions but no file."""
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_dict(
            {
                "name": "t",
                "stages": {"FAST_CHECK": {}, "MEDIUM_CHECK": {"depends_on": ["FAST_CHEK"]}},
            }
        )
    issue = issue_at(info.value, "stages.MEDIUM_CHECK.depends_on[0]")
    assert issue.file is None
    assert issue.line is None
    assert issue.suggestion == "FAST_CHECK"
    assert "<config>: stages.MEDIUM_CHECK.depends_on[0]" in str(info.value)


def test_from_dict_with_source_names_it() -> None:
    """A source given to from_dict appears in each issue."""
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_dict({"name": "t", "stages": {"A": {"cost": -1}}}, source="api")
    assert info.value.issues[0].file == "api"


def test_python_construction_checks_cross_references() -> None:
    """CascadeConfig(...) runs the same checks and raises ConfigError."""
    rule = RoutingRule(
        name="r",
        condition=Condition(field="stages.MEDIUM.confidence", operator="<", value=0.8),
        action=RoutingAction(type="enable_stages", stages=["MEDIUM"]),
    )
    with pytest.raises(ConfigError) as info:
        CascadeConfig(name="t", stages={"FAST": StageConfig(name="FAST", routing_rules=[rule])})
    paths = {i.path for i in info.value.issues}
    assert paths == {
        "stages.FAST.routing_rules[0].condition.field",
        "stages.FAST.routing_rules[0].action.stages[0]",
    }


def test_python_construction_field_errors_are_config_errors() -> None:
    """A wrong field value passed to CascadeConfig(...) is a ConfigError, not a pydantic one."""
    with pytest.raises(ConfigError) as info:
        CascadeConfig(name="t", stages={"A": {"timeout_ms": -5}}, max_parallel_stages=0)
    assert {i.path for i in info.value.issues} == {"stages.A.timeout_ms", "max_parallel_stages"}


def test_model_validate_raises_config_error() -> None:
    """CascadeConfig.model_validate raises the same ConfigError as from_dict."""
    with pytest.raises(ConfigError) as info:
        CascadeConfig.model_validate({"name": "t", "stages": {"A": {"depends_on": ["B"]}}})
    assert info.value.issues[0].path == "stages.A.depends_on[0]"


@pytest.mark.parametrize(
    ("stage", "where", "message"),
    [
        ("timeout_ms: true", "timeout_ms", "expected a number, got the boolean true"),
        ("max_retries: false", "max_retries", "expected a number, got the boolean false"),
        ("cost: .inf", "cost", "finite number"),
        (
            "routing_rules: [{name: r, condition: 'x > 1', action: {type: set_field, field: y}}]",
            "routing_rules[0].action.value",
            "set_field needs the value to write",
        ),
    ],
)
def test_values_that_would_be_silently_misread_are_refused(
    tmp_path: Path, stage: str, where: str, message: str
) -> None:
    """A boolean where a number goes, an infinite cost and a set_field without a value are
    load errors at their line, not a 1 ms timeout, a cost that swallows every other, or null."""
    error, _ = load_error(tmp_path, f"name: t\nstages:\n  A: {{{stage}}}\n")
    issue = issue_at(error, f"stages.A.{where}")
    assert message in issue.message
    assert issue.line == 3


def test_configs_that_could_never_work_as_written(tmp_path: Path) -> None:
    """A dotted stage name, a zero cache TTL, a precondition reading its own stage and a
    set_field into a stage result are load errors, not silent no-ops."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A.B:
            cache_enabled: true
          C:
            cache_enabled: true
            cache_ttl_seconds: 0
            routing_rules:
              - name: pre
                type: precondition
                condition: "stages.C.confidence > 0.5"
                action: {type: terminate}
              - name: write
                condition: "amount > 1"
                action: {type: set_field, field: stages.C.result, value: 1}
        """,
    )
    assert len(error.issues) == 4
    dotted = issue_at(error, "stages['A.B']")
    assert "contains '.'" in dotted.message and "'A_B'" in str(dotted.expected)
    ttl = issue_at(error, "stages.C.cache_ttl_seconds")
    assert ttl.line == line_of(path, "cache_ttl") and "never returns one" in ttl.message
    precondition = issue_at(error, "stages.C.routing_rules[0].condition")
    assert "a precondition runs before stage 'C'" in precondition.message
    assert precondition.line == line_of(path, "stages.C.confidence")
    written = issue_at(error, "stages.C.routing_rules[1].action.field")
    assert "names a stage result" in written.message


def test_a_zero_ttl_is_fine_while_the_cache_is_off() -> None:
    """`cache_ttl_seconds: 0` is only an error on a stage whose cache is on."""
    config = CascadeConfig.from_dict({"name": "t", "stages": {"A": {"cache_ttl_seconds": 0}}})
    assert config.stages["A"].cache_ttl_seconds == 0


def test_rules_that_could_never_act_are_load_errors(tmp_path: Path) -> None:
    """A rule that reads a stage running after its own (the result is never there yet), or
    enables or disables a stage the run has already passed, is refused where it is written."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: early
                condition: "stages.C.confidence > 0.5"
                action: {type: terminate}
          B:
            routing_rules:
              - name: back
                condition: "amount > 3"
                action: {type: enable_stages, stages: [A]}
              - name: itself
                condition: "amount > 3"
                action: {type: disable_stages, stages: [B, C]}
          C: {}
        execution_order: [A, B, C]
        """,
    )
    reads = issue_at(error, "stages.A.routing_rules[0].condition")
    assert_reported(error, reads, path, line_of(path, "stages.C.confidence"))
    assert "stages.C is never there" in reads.message and "'C' runs after 'A'" in reads.message
    enables = issue_at(error, "stages.B.routing_rules[0].action.stages[0]")
    assert "enable_stages of 'A' does nothing: 'A' runs before 'B'" in enables.message
    own = issue_at(error, "stages.B.routing_rules[1].action.stages[0]")
    assert "rule's own stage 'B' does nothing" in own.message
    assert len(error.issues) == 3  # disabling C, which runs later, is fine


def test_rules_on_stages_of_one_parallel_group_may_read_each_other() -> None:
    """Members' rules apply once the whole group finished, so they may read any member; a
    precondition may disable its own stage."""
    member = {"can_run_parallel": True, "parallel_group": "g"}
    CascadeConfig.from_dict(
        {
            "name": "t",
            "stages": {
                "A": {
                    **member,
                    "routing_rules": [
                        {
                            "name": "peer",
                            "condition": "stages.B.confidence > 0.5",
                            "action": {"type": "terminate"},
                        },
                        {
                            "name": "off",
                            "type": "precondition",
                            "condition": "amount > 3",
                            "action": {"type": "disable_stages", "stages": ["A"]},
                        },
                    ],
                },
                "B": member,
            },
        }
    )


def test_a_condition_that_may_hold_without_a_later_stage_is_accepted() -> None:
    """Only a condition that needs a later stage's result to hold is refused: one shared by
    several stages through OR, or a guard on its absence, may still act; a parallel flag
    written as a string counts as the model reads it."""
    shared = "stages.FAST.confidence < 0.3 or stages.MEDIUM.confidence < 0.3"
    guard = {"operator": "NOT", "conditions": [{"field": "stages.B", "operator": "EXISTS"}]}
    stop = {"type": "terminate"}
    CascadeConfig.from_dict(
        {
            "name": "t",
            "stages": {
                "FAST": {"routing_rules": [{"name": "low", "condition": shared, "action": stop}]},
                "MEDIUM": {"routing_rules": [{"name": "low", "condition": shared, "action": stop}]},
                "A": {
                    "can_run_parallel": "true",
                    "routing_rules": [
                        {"name": "g", "condition": guard, "action": stop},
                        {"name": "peer", "condition": "stages.B.result == 'x'", "action": stop},
                    ],
                },
                "B": {"can_run_parallel": "yes"},
            },
        }
    )
    with pytest.raises(ConfigError, match=r"stages\.MEDIUM is never there"):
        CascadeConfig.from_dict(
            {
                "name": "t",
                "stages": {
                    "FAST": {
                        "routing_rules": [
                            {
                                "name": "low",
                                "condition": "amount > 1 and stages.MEDIUM.confidence < 0.3",
                                "action": stop,
                            }
                        ]
                    },
                    "MEDIUM": {"depends_on": ["FAST"]},
                },
            }
        )


def test_a_stage_result_key_one_letter_off_is_a_warning() -> None:
    """`stages.A.confidense` loads (a handler may return any key) but warns, with the key
    every result has; keys a handler returns, and `data.*`, do not warn."""
    import warnings

    from cascadence.errors import ConfigWarning

    def load(condition: str) -> list[str]:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            CascadeConfig.from_dict(
                {
                    "name": "c",
                    "stages": {
                        "FAST_CHECK": {
                            "routing_rules": [
                                {
                                    "name": "r",
                                    "condition": condition,
                                    "action": {"type": "terminate"},
                                }
                            ]
                        }
                    },
                }
            )
        return [str(w.message) for w in seen if w.category is ConfigWarning]

    (message,) = load("stages.FAST_CHECK.confidense < 0.8")
    assert message.startswith("stages.FAST_CHECK.routing_rules[0].condition: ")
    assert "'stages.FAST_CHECK.confidense'" in message and "did you mean 'confidence'?" in message
    assert load("stages.FAST_CHECK.confidence < 0.8 and stages.FAST_CHECK.data.x > 1") == []
    assert load("stages.FAST_CHECK.risk_points > 3 or stages.FAST_CHECK.escalated == true") == []

    # a stage's confidence against a quoted number: never true as written
    (message,) = load('stages.FAST_CHECK.confidence < "0.8"')
    assert "is a number, compared here with the string '0.8'" in message
    assert "always false (also with '!='); write 0.8 unquoted" in message
    (message,) = load('stages.FAST_CHECK.cost != "1"')  # a type mismatch: false, like `==`
    assert "always false (also with '!='); write 1 unquoted" in message
    assert load('stages.FAST_CHECK.result == "0.8"') == []  # a result may be a string


def test_a_config_warning_is_shown_at_its_file_and_line_once(tmp_path: Path) -> None:
    """Loaded from a file, the warning is placed at the condition's line, and loading the
    same file again does not repeat it."""
    import warnings

    from cascadence.errors import ConfigWarning

    path = tmp_path / "c.yaml"
    path.write_text(
        "name: c\nstages:\n  A:\n    routing_rules:\n      - name: r\n"
        '        condition: "stages.A.confidense < 0.8"\n        action: {type: terminate}\n'
    )
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        CascadeConfig.from_file(path)
        CascadeConfig.from_file(path)
    (warned,) = [w for w in seen if w.category is ConfigWarning]
    assert warned.filename == str(path) and warned.lineno == 6
    assert isinstance(warned.message, ConfigWarning)
    issue = warned.message.issue
    assert issue is not None and issue.suggestion == "confidence" and issue.line == 6
